"""The README's image table shows each release's archive state as its lock records it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

WORKSPACE = Path(__file__).resolve().parents[3]


def archive_state(lock: dict) -> str:
    """As tools/debian/extensions.bzl computes it: the snapshot, else the newest Release date, of the sources."""
    return max(source["snapshot"] or source["date"] for source in lock["sources"])


def test_readme_dates_match_the_locks() -> None:
    readme = (WORKSPACE / "README.md").read_text()
    rows = re.findall(r"^\| [\d.]+ \| [\w ()]*?(\w+)(?: \(testing\))? \| (\d{4}-\d{2}-\d{2}) \|", readme, re.MULTILINE)
    releases = sorted(path.parent.name for path in WORKSPACE.glob("debian_packages/*/lock.json"))
    assert sorted(release for release, _ in rows) == releases, rows
    for release, shown in rows:
        state = archive_state(json.loads((WORKSPACE / "debian_packages" / release / "lock.json").read_text()))
        assert shown == f"{state[0:4]}-{state[4:6]}-{state[6:8]}", f"README shows {shown} for {release}, lock has {state}"


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
