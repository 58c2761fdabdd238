"""The peer root: what apt installs for the measured Python in its Debian release, built once with
mmdebstrap and cached beside the build root."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from tools.bench.console import BenchError, progress
from tools.bench.pythons import MeasuredPython
from tools.build_root import CacheLayout, exclusive_lock


def peer_command(measured: MeasuredPython, target: Path, mirror: str) -> list[str]:
    # Snapshot mirrors serve an old release's Release past its Valid-Until date (as tools/build_root.py allows).
    return ["mmdebstrap", "--variant=minbase", "--aptopt=Acquire::Check-Valid-Until \"false\"",
            f"--include={measured.python}", measured.distribution, str(target), mirror]


def peer_cache_key(command: Sequence[str], target: str) -> str:
    """Names the cached peer root by its mmdebstrap command, with the target directory left out."""
    normalized = ["DIR" if word == target else word for word in command]
    return hashlib.sha256(json.dumps(normalized).encode()).hexdigest()[:16]


def ensure_peer(measured: MeasuredPython, layout: CacheLayout, mirror: str) -> Path:
    """The peer root, built once per command and cached beside the build root."""
    placeholder = Path("/nonexistent")
    key = peer_cache_key(peer_command(measured, placeholder, mirror), str(placeholder))
    root = layout.home / f"bench-peer-{key}"
    with exclusive_lock(root.with_name(root.name + ".lock")):
        if root.is_dir():
            progress(f"peer root: cached in {root}")
            return root
        partial = root.with_name(root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        progress(f"peer root: running mmdebstrap into {root} (once; about a minute)")
        result = subprocess.run(peer_command(measured, partial, mirror), capture_output=True, text=True)
        if result.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            raise BenchError(f"mmdebstrap failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
        os.replace(partial, root)
    return root
