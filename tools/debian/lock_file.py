"""The lock format's one Python owner (its declaration is lock_format.json beside this file, which
tools/debian/extensions.bzl reads too): the entries a lock holds, writing it, and reading it back checked."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypedDict

from tools.atomic_file import write_atomically
from tools.debian.errors import LockError, log
from tools.debian.indexes import TIMESTAMP_FORMAT, Candidate, ReleaseInfo, snapshot_timestamp
from tools.debian.manifest import Source
from tools.debian.resolver import Resolver

# The lock format's version, fields and update command, declared once beside this file for the extension too.
LOCK_FORMAT = json.loads((Path(__file__).resolve().parent / "lock_format.json").read_text())
LOCK_FORMAT_VERSION: int = LOCK_FORMAT["version"]
UPDATE_COMMAND: str = LOCK_FORMAT["update_command"]
# For a suite resolved from a live mirror: how long after its Release's Date the snapshot timestamps the
# build tries lie, in order. Debian's snapshot service imports the archive four times a day and an import
# lands hours after the Release it holds, so the first import after the Date is at most about six hours
# away; the later ones cover a delayed import. A timestamp resolving to an import from before the Release
# lacks its new files (a 404), and the build then tries the next.
SNAPSHOT_DELAYS_H = (6, 12, 24, 48)


class LockedPackage(TypedDict, total=False):
    """One package entry; every key but source_version is required (lock_format.json's package_fields)."""

    name: str
    version: str
    arch: str
    archive: str
    filename: str
    sha256: str
    size: int
    depends: list[str]
    source: str
    source_version: str


class LockedSource(TypedDict):
    archive: str
    suite: str
    components: list[str]
    date: str  # the Release's Date, as a snapshot timestamp
    snapshot: str | None  # the snapshot it was read at, when read through a snapshot service
    snapshots: list[str]  # the snapshot times a build tries, in order


class Lock(TypedDict):
    version: int
    manifest_sha256: str
    archs: list[str]
    merged_usr: bool
    groups: dict[str, list[str]]
    sources: list[LockedSource]
    packages: list[LockedPackage]


def read_lock(path: Path) -> Lock:
    """The lock at `path`, checked as the debian extension checks it; a LockError names the file and the fix."""
    fix = f"restore it with `git checkout -- {path}`, or re-lock it with `{UPDATE_COMMAND}`"
    try:
        doc = json.loads(path.read_text())
    except OSError as error:
        raise LockError(f"cannot read {path} ({error.strerror}); {fix}") from None
    except ValueError:
        raise LockError(f"{path} is not a complete lock (not JSON, or truncated); {fix}") from None
    if not isinstance(doc, dict):
        raise LockError(f"{path} is not a complete lock (not a JSON object); {fix}")
    if doc.get("version") != LOCK_FORMAT_VERSION:
        raise LockError(f"{path} has lock format version {doc.get('version')}, but this checkout reads version "
                        f"{LOCK_FORMAT_VERSION}; re-lock it with `{UPDATE_COMMAND}`")
    missing = [key for key in LOCK_FORMAT["fields"] if key not in doc]
    missing += [f"sources[].{key}" for source in doc.get("sources", []) for key in LOCK_FORMAT["source_fields"]
                if key not in source]
    missing += [f"{package.get('name')}.{key}" for package in doc.get("packages", [])
                for key in LOCK_FORMAT["package_fields"] if key not in package]
    if missing:
        raise LockError(f"{path} is not a complete lock: it lacks {', '.join(sorted(set(missing)))}; {fix}")
    return doc  # type: ignore[return-value]


def archive_state(lock: Lock) -> str:
    """The archive state the lock was resolved at: its snapshot, or its suites' newest Release date."""
    return max(source["snapshot"] or source["date"] for source in lock["sources"])


def lock_entries(arch: str, resolver: Resolver) -> list[dict[str, Any]]:
    return [package_entry(arch, candidate, sorted(resolver.depends[candidate.name]))
            for candidate in resolver.selected.values()]


def package_entry(arch: str, candidate: Candidate, depends: list[str]) -> dict[str, Any]:
    """One package of the lock, with the fields lock_format.json declares (source_version only when set)."""
    entry: dict[str, Any] = {
        "name": candidate.name,
        "version": candidate.version,
        "arch": arch,
        "archive": candidate.archive,
        "filename": candidate.filename,
        "sha256": candidate.sha256,
        "size": candidate.size,
        "depends": depends,
        "source": candidate.source or candidate.name,
    }
    if candidate.source_version:
        entry["source_version"] = candidate.source_version
    return entry


def source_entry(source: Source, release: ReleaseInfo) -> dict[str, Any]:
    return {
        "archive": source.archive,
        "suite": source.suite,
        "components": list(source.components),
        "date": release.date,
        "snapshot": release.snapshot,
        "snapshots": snapshot_times(release.date, release.snapshot),
    }


def snapshot_times(date: str, snapshot: str | None) -> list[str]:
    """The snapshot timestamps a build tries, in order, for files of a suite the mirror no longer serves: the
    one it was read at, or a few after its Release `date` when it was read from a live mirror."""
    if snapshot:
        return [snapshot]
    published = datetime.strptime(date, TIMESTAMP_FORMAT).replace(tzinfo=timezone.utc)
    return [snapshot_timestamp(published + timedelta(hours=hours)) for hours in SNAPSHOT_DELAYS_H]


def lock_text(lock: dict[str, Any]) -> str:
    return json.dumps(lock, indent=2, sort_keys=True) + "\n"


def write_lock(path: Path, lock: dict[str, Any]) -> None:
    try:
        write_atomically(path, lock_text(lock).encode())
    except OSError as error:
        raise LockError(f"cannot write {path} ({error.strerror}); check that its directory is writable") from None
    log(f"wrote {path}")
