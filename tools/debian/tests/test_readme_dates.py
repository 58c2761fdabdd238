"""The README's image table shows each release's archive state, and the tags to pin, as its lock records them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools.debian.lock_file import archive_state, read_lock

WORKSPACE = Path(__file__).resolve().parents[3]


def test_readme_dates_match_the_locks() -> None:
    readme = (WORKSPACE / "README.md").read_text()
    rows = re.findall(r"^\| [\d.]+ \| [\w ()]*?(\w+)(?: \(testing\))? \| (\d{4}-\d{2}-\d{2}) \|", readme, re.MULTILINE)
    releases = sorted(path.parent.name for path in WORKSPACE.glob("debian_packages/*/lock.json"))
    assert sorted(release for release, _ in rows) == releases, rows
    for release, shown in rows:
        state = archive_state(read_lock(WORKSPACE / "debian_packages" / release / "lock.json"))
        assert shown == f"{state[0:4]}-{state[4:6]}-{state[6:8]}", f"README shows {shown} for {release}, lock has {state}"


def test_readme_pinned_tags_match_the_locks() -> None:
    """Each row's patch and dated tags: the locked pythonX.Y-minimal's upstream version and the state's day."""
    readme = (WORKSPACE / "README.md").read_text()
    rows = re.findall(r"^\| ([\d.]+) \| [\w ()]*?(\w+)(?: \(testing\))? \| [\d-]+ \|.*$", readme, re.MULTILINE)
    assert rows
    for version, release in rows:
        lock = read_lock(WORKSPACE / "debian_packages" / release / "lock.json")
        locked = {entry["version"] for entry in lock["packages"] if entry["name"] == f"python{version}-minimal"}
        assert len(locked) == 1, f"{release} locks python{version}-minimal at {locked}"
        patch = locked.pop().split(":")[-1].split("-")[0].split("+")[0]
        row = next(line for line in readme.splitlines() if line.startswith(f"| {version} |"))
        suffix = "-experimental" if "(testing)" in row else ""
        day = archive_state(lock)[:8]
        assert f"`{patch}{suffix}`" in row and f"`{patch}{suffix}-{day}`" in row, (
            f"README's {version} row should show `{patch}{suffix}` and `{patch}{suffix}-{day}`: {row}")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
