"""Locks a Debian package manifest to exact .deb files: `python3 -m tools.debian.lock --manifest M --lock L`.

Reads a YAML manifest (sources, archs, packages, exclude), downloads each suite's InRelease and checks its
OpenPGP signature with gpgv before trusting any byte of it, downloads the Packages indices it lists and checks
them against its SHA256 sums, resolves the Pre-Depends/Depends closure of the requested packages per arch, and
writes a JSON lockfile atomically. Mirrors come only from the environment (archives.py).

The parts, each readable alone: manifest.py (the manifest), mirror.py (fetching from a mirror or snapshot
service, the index cache), indexes.py (InRelease verification, Packages parsing), resolver.py (the
closure), lock_file.py (the lock format: writing and reading locks). This file puts them together and is
the command.

With DEBIAN_SNAPSHOT_MIRROR set, every archive is read from that snapshot service at one timestamp
(`<base>/archive/<archive>/<timestamp>/`, Debian's snapshot layout) instead of the live mirror, and the lock
records that timestamp: its files are then certain to be in the snapshot at that time, so builds can fall
back to it when the live mirror drops them. A lock resolved from the live mirror records each suite's
Release `Date` and, since a snapshot service imports an archive some hours after the Release it publishes
(and resolves a timestamp to its last import at or before it), the few timestamps after that Date that a
build tries in turn (lock_file.SNAPSHOT_DELAYS_H): the first import after the Release is the one that surely holds it.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tools import cli
from tools.debian.archives import SNAPSHOT_ENV_VAR
from tools.debian.errors import LockError, log
from tools.debian.indexes import snapshot_timestamp
from tools.debian.lock_file import LOCK_FORMAT_VERSION, lock_entries, source_entry, write_lock
from tools.debian.manifest import Manifest, load_manifest
from tools.debian.mirror import ArchiveReader, IndexCache, default_cache_dir, snapshot_service
from tools.debian.resolver import ArchIndex, Resolver, check_no_library_dropped

DEFAULT_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


def build_lock(manifest: Manifest, reader: ArchiveReader) -> dict[str, Any]:
    """The lockfile content for `manifest`: a pure function of the manifest and the verified indices."""
    labels = ", ".join(source.label() for source in manifest.sources)
    packages: list[dict[str, Any]] = []
    for arch in manifest.archs:
        index = ArchIndex.build(arch, (c for source in manifest.sources for c in reader.candidates(source, arch)))
        log(f"resolving {arch}")
        resolver = Resolver(index, manifest.excludes, f"{manifest.path} [{arch}]", labels)
        resolver.resolve(manifest.packages)
        check_no_library_dropped(manifest, arch, resolver)
        for note in sorted(resolver.notes):
            log(f"  {arch}: {note}")
        log(f"  {arch}: {len(resolver.selected)} packages")
        packages.extend(lock_entries(arch, resolver))
    return {
        "version": LOCK_FORMAT_VERSION,
        "manifest_sha256": manifest.sha256,
        "archs": list(manifest.archs),
        "merged_usr": manifest.merged_usr,
        "groups": {name: sorted(members) for name, members in manifest.groups.items()},
        "sources": [source_entry(source, reader.release(source)) for source in manifest.sources],
        "packages": sorted(packages, key=lambda p: (p["arch"], p["name"])),
    }


# ---------------------------------------------------------------------------------------------- CLI


def workspace_path(path: str) -> Path:
    """Resolves `path` against the workspace under `bazel run` (which runs us from the runfiles tree)."""
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    return Path(workspace, path) if workspace and not os.path.isabs(path) else Path(path)


def manifest_lock_pairs(args: argparse.Namespace) -> list[tuple[Path, Path]]:
    if args.all is not None:
        if args.manifest or args.lock:
            raise LockError("use either --all DIR or --manifest/--lock pairs, not both")
        directory = workspace_path(args.all)
        manifests = sorted(directory.glob("*/manifest.yaml"))
        if not manifests:
            raise LockError(f"{directory}: no */manifest.yaml found to lock")
        return [(manifest, manifest.with_name("lock.json")) for manifest in manifests]
    if not args.manifest or len(args.manifest) != len(args.lock or []):
        raise LockError("give one --lock for each --manifest (or --all DIR)")
    return [(workspace_path(m), workspace_path(lock)) for m, lock in zip(args.manifest, args.lock)]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", action="append", help="manifest YAML (repeatable, paired with --lock)")
    parser.add_argument("--lock", action="append", help="lockfile JSON to write for the matching --manifest")
    parser.add_argument("--all", metavar="DIR", help="lock every DIR/*/manifest.yaml into DIR/*/lock.json")
    add_reader_arguments(parser)
    return parser.parse_args(argv)


def add_reader_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say where indices come from; shared with the update command."""
    parser.add_argument(
        "--cache-dir",
        help="where verified indices are kept (default: distroless-python/debian-indices in the user cache)",
    )
    parser.add_argument("--keyring", default=str(DEFAULT_KEYRING), help="OpenPGP keyring that signs the archives")
    parser.add_argument(
        "--snapshot-time", metavar="YYYYMMDDTHHMMSSZ",
        help=f"with {SNAPSHOT_ENV_VAR} set: resolve against the snapshot at this time (default: now)",
    )


def archive_reader(args: argparse.Namespace) -> ArchiveReader:
    cache_dir = workspace_path(args.cache_dir) if args.cache_dir else default_cache_dir()
    snapshot = None
    if snapshot_service():
        snapshot = args.snapshot_time or snapshot_timestamp(datetime.now(timezone.utc))
        if not re.fullmatch(r"\d{8}T\d{6}Z", snapshot):
            raise LockError(f"--snapshot-time {snapshot!r} is not a snapshot timestamp; write it as 20261127T000000Z")
        log(f"resolving against the snapshot service in {SNAPSHOT_ENV_VAR} at {snapshot}")
    elif args.snapshot_time:
        raise LockError(f"--snapshot-time needs {SNAPSHOT_ENV_VAR}, the base URL of a Debian snapshot service")
    return ArchiveReader(workspace_path(args.keyring), IndexCache(cache_dir), snapshot)


@cli.tool("lock", LockError, note="no lock was written")
def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    args = parse_args(argv)
    pairs = manifest_lock_pairs(args)
    reader = archive_reader(args)
    # Every lock is computed before any is written, so an error leaves all lockfiles as they were.
    locks = [(path, build_lock(load_manifest(manifest), reader)) for manifest, path in pairs]
    for path, lock in locks:
        write_lock(path, lock)
    total = sum(len(lock["packages"]) for _, lock in locks)
    log(f"locked {total} packages in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
