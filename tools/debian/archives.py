"""The archive table (archives.json beside this file), for the Python tools: which environment variable
holds each archive's mirror base URL, which one a snapshot service's, and the snapshot service's layout.
tools/build_root.py and tools/debian/private/deb_repository.bzl read the same file."""

from __future__ import annotations

import json
from pathlib import Path

ARCHIVES = json.loads((Path(__file__).resolve().parent / "archives.json").read_text())
MIRROR_ENV_VARS: dict[str, str] = ARCHIVES["mirror_variables"]
SNAPSHOT_ENV_VAR: str = ARCHIVES["snapshot_variable"]
