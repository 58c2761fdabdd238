"""Updates every pin: `tools/bazel run //debian_packages:update [-- --check]`.

Re-locks each release's manifest (debian_packages/*/manifest.yaml into lock.json beside it) and the build
root's pins (tools/build_root.packages) against the mirror, or against the snapshot service when
DEBIAN_SNAPSHOT_MIRROR is set, then prints what moved: release, package, architectures, old -> new version,
and the CVE ids that the new package's Debian changelog names in the entries newer than the old version.
Everything is computed before anything is written, and each file is replaced atomically, so a failure or
an interruption leaves every pin as it was. A lock whose packages did not move is left untouched.

`--check` writes nothing and exits OUTDATED (1) when any pin is outdated or no longer in its suite, 0 when
all are current; a check that could not run (mirror unreachable, a bad signature, a broken manifest) exits
FAILED (2), so a scheduled job tells "pins moved" from "the check could not run". `--report FILE` also writes
the changes as JSON, for tools/release.py's release notes.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from debian.debian_support import Version

from tools import build_root_packages
from tools import cli
from tools.atomic_file import write_atomically
from tools.debian import lock, lock_file
from tools.debian.archives import MIRROR_ENV_VARS, SNAPSHOT_ENV_VAR
from tools.debian.errors import LockError, NotFound, log
from tools.debian.indexes import Candidate
from tools.debian.manifest import Source, load_manifest
from tools.debian.mirror import ArchiveReader, fetch

CVE_PATTERN = re.compile(r"\bCVE-\d{4}-\d{4,}\b")
# "python3.13 (3.13.5-2+deb13u1) trixie-security; urgency=medium"
CHANGELOG_HEADER = re.compile(r"^(\S+) \(([^()\s]+)\) ")
BUILD_ROOT_SCOPE = "build root"
# The build root runs on the machines the project builds on.
BUILD_ROOT_ARCH = "amd64"


@dataclass(frozen=True)
class Change:
    """One package whose pin moves; `old` or `new` is None when it enters or leaves the closure."""

    scope: str  # the release, or "build root"
    name: str
    archs: tuple[str, ...]
    old: str | None
    new: str | None
    cves: tuple[str, ...] = ()


@dataclass(frozen=True)
class DebRef:
    """Where the new version's .deb is, to read its changelog."""

    archive: str
    filename: str
    sha256: str


@dataclass
class Update:
    """What one run found: the changes and the files to write."""

    changes: list[Change]
    writes: dict[Path, bytes]
    refs: dict[tuple[str, str], DebRef]  # (scope, name) -> the new version's .deb, for changelogs


# ---------------------------------------------------------------------------------------------- image locks


def read_lock(path: Path) -> dict[str, Any]:
    """The lock at `path`, or an empty one when it is missing or unreadable (then every pin is new)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def lock_versions(doc: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(p["arch"], p["name"]): p["version"] for p in doc.get("packages", []) if isinstance(p, dict)}


def lock_is_current(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether `old` already pins what `new` does, so rewriting it would only move its dates.

    A lock resolved live is replaced by one resolved through a snapshot even when its packages did not
    move, since only the latter lets builds fall back to the snapshot.
    """
    def pins(doc: dict[str, Any]) -> tuple[Any, ...]:
        sources = [(s.get("archive"), s.get("suite"), s.get("components")) for s in doc.get("sources", [])]
        return doc.get("version"), doc.get("manifest_sha256"), sources, doc.get("packages")

    gains_snapshot = any(s["snapshot"] for s in new["sources"]) and not all(
        s.get("snapshot") for s in old.get("sources", []))
    return pins(old) == pins(new) and not gains_snapshot


def keep_archive_dates(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`new` with the Release dates of `old`'s suites, for a lock rewritten with the same packages.

    The packages were resolved at those dates, so the archive state (and every image's digest, which records
    it) stays what it was, and the snapshot times derived from the dates still name imports holding the files.
    """
    dates = {(s.get("archive"), s.get("suite")): (s.get("date"), s.get("snapshot")) for s in old.get("sources", [])}
    sources = []
    for source in new["sources"]:
        date, snapshot = dates.get((source["archive"], source["suite"]), (None, None))
        if date:
            source = {**source, "date": date, "snapshot": snapshot, "snapshots": lock_file.snapshot_times(date, snapshot)}
        sources.append(source)
    return {**new, "sources": sources}


def diff_versions(scope: str, old: dict[tuple[str, str], str], new: dict[tuple[str, str], str]) -> list[Change]:
    """Changes per package, with the architectures that share the same old -> new grouped in one row."""
    grouped: dict[tuple[str, str | None, str | None], list[str]] = {}
    for arch, name in sorted(set(old) | set(new)):
        before, after = old.get((arch, name)), new.get((arch, name))
        if before != after:
            grouped.setdefault((name, before, after), []).append(arch)
    return [Change(scope, name, tuple(archs), before, after) for (name, before, after), archs in sorted(
        grouped.items(), key=lambda item: (item[0][0], item[1]))]


def update_locks(directory: Path, reader: ArchiveReader, update: Update) -> None:
    manifests = sorted(directory.glob("*/manifest.yaml"))
    if not manifests:
        raise LockError(f"{directory}: no */manifest.yaml found to lock")
    for manifest_path in manifests:
        release = manifest_path.parent.name
        lock_path = manifest_path.with_name("lock.json")
        new = lock.build_lock(load_manifest(manifest_path), reader)
        old = read_lock(lock_path)
        if lock_is_current(old, new):
            log(f"{release}: unchanged")
            continue
        changes = diff_versions(release, lock_versions(old), lock_versions(new))
        if not changes:
            new = keep_archive_dates(old, new)
        update.writes[lock_path] = lock_file.lock_text(new).encode()
        update.changes.extend(changes)
        for package in new["packages"]:
            update.refs.setdefault((release, package["name"]), DebRef(
                package["archive"], package["filename"], package["sha256"]))
        if not changes:
            log(f"{release}: same packages, lock rewritten (format, manifest or snapshot changed)")


# ---------------------------------------------------------------------------------------------- build root


@dataclass(frozen=True)
class BuildRootPins:
    path: Path
    lines: tuple[str, ...]
    suite: str
    pins: dict[str, str]  # name -> version


def read_build_root_pins(path: Path) -> BuildRootPins:
    """The pin file as tools/bazel reads it, with its lines, which the update rewrites in place."""
    try:
        packages = build_root_packages.read_package_list(path)
        lines = tuple(path.read_text().splitlines())
    except OSError as error:
        raise LockError(f"cannot read {path} ({error.strerror})") from None
    except build_root_packages.BuildRootError as error:
        raise LockError(str(error)) from None
    return BuildRootPins(path, lines, packages.suite, packages.pins())


def build_root_text(pins: BuildRootPins, versions: dict[str, str], snapshot: str | None) -> str:
    """The pin file with new versions; a `snapshot` line follows `suite` when resolved through a snapshot."""
    out: list[str] = []
    for line in pins.lines:
        words = line.split("#", 1)[0].split()
        if words[:1] == ["snapshot"]:
            continue
        match = build_root_packages.PIN.fullmatch(line.split("#", 1)[0].strip())
        if match and match["name"] in versions:
            line = line.replace(match[0], f"{match['name']}={versions[match['name']]}", 1)
        out.append(line)
        if words[:1] == ["suite"] and snapshot:
            out.append(f"snapshot {snapshot}")
    return "\n".join(out) + "\n"


def update_build_root(path: Path, reader: ArchiveReader, update: Update) -> None:
    pins = read_build_root_pins(path)
    source = Source("debian", pins.suite, ("main",))
    offered: dict[str, Candidate] = {}
    for candidate in reader.candidates(source, BUILD_ROOT_ARCH):
        best = offered.get(candidate.name)
        if best is None or Version(candidate.version) > Version(best.version):
            offered[candidate.name] = candidate
    gone = sorted(name for name in pins.pins if name not in offered)
    if gone:
        raise LockError(
            f"{path}: {', '.join(gone)} no longer in Debian {pins.suite}; remove or replace "
            f"{'that pin' if len(gone) == 1 else 'those pins'} by hand, then run the update again")
    versions = {name: offered[name].version for name in pins.pins}
    changes = diff_versions(BUILD_ROOT_SCOPE, {(BUILD_ROOT_ARCH, n): v for n, v in pins.pins.items()},
                            {(BUILD_ROOT_ARCH, n): v for n, v in versions.items()})
    if not changes and not (reader.snapshot and f"snapshot {reader.snapshot}" not in pins.lines):
        # Unchanged pins keep their snapshot line, which still holds them.
        log(f"{BUILD_ROOT_SCOPE}: unchanged")
        return
    # Moved pins resolved live lose the snapshot line: the old snapshot does not hold the new versions.
    update.writes[path] = build_root_text(pins, versions, reader.snapshot).encode()
    update.changes.extend(changes)
    for name, candidate in offered.items():
        if name in pins.pins:
            update.refs[(BUILD_ROOT_SCOPE, name)] = DebRef("debian", candidate.filename, candidate.sha256)


# ---------------------------------------------------------------------------------------------- changelogs


def changelog_cves(texts: Iterable[str], old: str) -> tuple[str, ...]:
    """CVE ids named in the changelog entries newer than `old`, in order of first mention."""
    found: dict[str, None] = {}
    newer = False
    for text in texts:
        for line in text.splitlines():
            header = CHANGELOG_HEADER.match(line)
            if header:
                try:
                    newer = Version(header.group(2)) > Version(old)
                except ValueError:
                    newer = False
            elif newer:
                found.update(dict.fromkeys(CVE_PATTERN.findall(line)))
    return tuple(found)


def deb_changelogs(deb: bytes, package: str) -> tuple[list[str], str | None]:
    """The Debian changelogs in a .deb (binNMU ones included), or the package its doc directory links to."""
    doc = f"./usr/share/doc/{package}"
    texts: list[str] = []
    link: str | None = None
    with tempfile.NamedTemporaryFile(suffix=".deb") as file:
        file.write(deb)
        file.flush()
        with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", file.name], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) as process:
            assert process.stdout is not None
            try:
                with tarfile.open(fileobj=process.stdout, mode="r|*") as tar:
                    for member in tar:
                        if member.name == doc and member.issym():
                            link = member.linkname.rstrip("/").rsplit("/", 1)[-1]
                        elif member.name.startswith(doc + "/changelog") and member.isfile():
                            extracted = tar.extractfile(member)
                            data = extracted.read() if extracted else b""
                            texts.append((gzip.decompress(data) if member.name.endswith(".gz") else data)
                                         .decode("utf-8", "replace"))
            except tarfile.TarError:
                pass  # dpkg-deb's exit status and message say what is wrong
            process.stdout.read()
            if process.wait() != 0:
                raise LockError(f"dpkg-deb cannot read the .deb of {package}: "
                                f"{process.stderr.read().decode(errors='replace').strip()}")
    return texts, link


def download_deb(reader: ArchiveReader, ref: DebRef) -> bytes:
    env_var = SNAPSHOT_ENV_VAR if reader.snapshot else MIRROR_ENV_VARS[ref.archive]
    url = f"{reader.archive_base(ref.archive)}/{ref.filename}"
    try:
        data = fetch(url, env_var)
    except NotFound as error:
        raise LockError(f"{error}; the mirror's index lists it, so the mirror is mid-update: retry later") from None
    if hashlib.sha256(data).hexdigest() != ref.sha256:
        raise LockError(f"{url}: the download does not match the sha256 its index lists (truncated or "
                        f"tampered with); retry, or check the mirror in {env_var}")
    return data


def add_cves(update: Update, reader: ArchiveReader) -> None:
    """Fills in each upgraded package's CVE ids from its new .deb's changelog."""
    upgrades = [c for c in update.changes if c.old and c.new]
    for number, change in enumerate(upgrades, start=1):
        ref = update.refs.get((change.scope, change.name))
        if ref is None:
            continue
        log(f"reading the changelog of {change.name} {change.new} ({number}/{len(upgrades)})")
        texts, link = deb_changelogs(download_deb(reader, ref), change.name)
        if not texts and link and (change.scope, link) in update.refs:
            # Packages built from one source often share the doc directory of one of them.
            texts, _ = deb_changelogs(download_deb(reader, update.refs[(change.scope, link)]), link)
        cves = changelog_cves(texts, change.old or "")
        update.changes[update.changes.index(change)] = Change(
            change.scope, change.name, change.archs, change.old, change.new, cves)


# ---------------------------------------------------------------------------------------------- report and CLI


def report(changes: list[Change]) -> str:
    """The diff as an aligned table, one row per package and version change."""
    rows = [("release", "package", "arch", "old", "->", "new", "CVEs")]
    rows += [(c.scope, c.name, ", ".join(c.archs), c.old or "(new)", "->", c.new or "(removed)",
              " ".join(c.cves) or "-") for c in changes]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1]
                     for row in rows)


# --check's exit statuses beside 0 (up to date).
OUTDATED = 1
FAILED = 2


def write_report(path: Path, changes: list[Change]) -> None:
    """The changes as JSON: [{scope, name, archs, old, new, cves}], for the release notes."""
    rows = [{"scope": c.scope, "name": c.name, "archs": list(c.archs), "old": c.old, "new": c.new, "cves": list(c.cves)}
            for c in changes]
    write_atomically(path, (json.dumps(rows, indent=1) + "\n").encode())


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help=f"write nothing; exit {OUTDATED} when any pin is outdated or no longer served, {FAILED} "
                             "when the check cannot run")
    parser.add_argument("--report", type=Path, help="also write the changes to this file as JSON")
    parser.add_argument("--releases", default="debian_packages", help="the directory of */manifest.yaml")
    parser.add_argument("--build-root-packages", default="tools/build_root.packages", help="the build root's pins")
    parser.add_argument("--no-changelogs", action="store_true", help="do not download new .debs for their CVE ids")
    lock.add_reader_arguments(parser)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    reader = lock.archive_reader(args)
    update = Update([], {}, {})
    update_locks(lock.workspace_path(args.releases), reader, update)
    update_build_root(lock.workspace_path(args.build_root_packages), reader, update)
    if not args.no_changelogs:
        add_cves(update, reader)
    if update.changes:
        print(report(update.changes))
    if args.report:
        write_report(args.report, update.changes)
    if args.check:
        if update.changes or update.writes:
            what = (f"{len(update.changes)} pins moved" if update.changes
                    else "no pin moved, but locks must be rewritten (format, manifest or snapshot changed)")
            print(f"outdated: {what}; run `{lock_file.UPDATE_COMMAND}`")
            return OUTDATED
        print("up to date")
        return 0
    for path, data in update.writes.items():
        write_atomically(path, data)
        log(f"wrote {path}")
    if not update.writes:
        print("up to date")
    return 0


@cli.tool("update", LockError, note="nothing was written", status=FAILED)
def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    code = run(parse_args(sys.argv[1:] if argv is None else argv))
    log(f"done in {time.monotonic() - started:.1f} s")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
