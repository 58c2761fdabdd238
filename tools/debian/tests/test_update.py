"""Tests for tools/debian/update.py: diffs, changelog CVEs, pin files and what is (not) rewritten."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pytest

from tools.debian import lock, lock_file, update
from tools.debian.errors import LockError
from tools.debian.indexes import Candidate, ReleaseInfo
from tools.debian.manifest import Source, load_manifest
from tools.debian.update import Change

CHANGELOG = """\
python3.13 (3.13.5-2+deb13u2) trixie-security; urgency=medium

  * Fix CVE-2026-1111 (tarfile) and CVE-2026-2222.
  * Mention CVE-2026-1111 again.

 -- Maintainer <m@example.invalid>  Mon, 02 Nov 2026 10:00:00 +0000

python3.13 (3.13.5-2+deb13u1) trixie-security; urgency=medium

  * Fix CVE-2026-0001.

 -- Maintainer <m@example.invalid>  Mon, 01 Jun 2026 10:00:00 +0000

python3.13 (3.13.5-2) unstable; urgency=medium

  * Fix CVE-2025-9999, which the old version already had.

 -- Maintainer <m@example.invalid>  Mon, 01 Jan 2026 10:00:00 +0000
"""


def test_changelog_cves_lists_only_entries_newer_than_the_old_version() -> None:
    assert update.changelog_cves([CHANGELOG], "3.13.5-2") == ("CVE-2026-1111", "CVE-2026-2222", "CVE-2026-0001")
    assert update.changelog_cves([CHANGELOG], "3.13.5-2+deb13u1") == ("CVE-2026-1111", "CVE-2026-2222")
    assert update.changelog_cves([CHANGELOG], "3.13.5-2+deb13u2") == ()


def test_changelog_cves_reads_binnmu_changelogs_too() -> None:
    binnmu = "python3.13 (3.13.5-2+b1) sid; urgency=low, binary-only=yes\n\n  * Rebuild for CVE-2026-3333.\n"
    assert update.changelog_cves([CHANGELOG, binnmu], "3.13.5-2") == (
        "CVE-2026-1111", "CVE-2026-2222", "CVE-2026-0001", "CVE-2026-3333")


def make_deb(tmp_path: Path, package: str, files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    root = tmp_path / f"{package}-root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(
        f"Package: {package}\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.invalid>\nDescription: test\n")
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    for path, target in (links or {}).items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).symlink_to(target)
    deb = tmp_path / f"{package}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)], check=True, capture_output=True)
    return deb.read_bytes()


def test_deb_changelogs_reads_gzipped_changelogs(tmp_path: Path) -> None:
    deb = make_deb(tmp_path, "python3.13", {
        "usr/share/doc/python3.13/changelog.Debian.gz": gzip.compress(CHANGELOG.encode()),
        "usr/share/doc/python3.13/changelog.Debian.amd64.gz": gzip.compress(b"python3.13 (3.13.5-2+deb13u2+b1) x\n"),
        "usr/share/doc/python3.13/copyright": b"not a changelog",
    })
    texts, link = update.deb_changelogs(deb, "python3.13")
    assert link is None and len(texts) == 2 and CHANGELOG in texts


def test_deb_changelogs_follows_a_shared_doc_directory(tmp_path: Path) -> None:
    deb = make_deb(tmp_path, "libpython3.13", {"usr/bin/x": b""}, {"usr/share/doc/libpython3.13": "libpython3.13-minimal"})
    assert update.deb_changelogs(deb, "libpython3.13") == ([], "libpython3.13-minimal")


def test_deb_changelogs_rejects_a_broken_deb() -> None:
    with pytest.raises(LockError, match="dpkg-deb cannot read the .deb of broken"):
        update.deb_changelogs(b"!<arch>\nnot really a deb", "broken")


def test_diff_groups_architectures_and_marks_new_and_removed() -> None:
    old = {("amd64", "libc6"): "2.41-1", ("arm64", "libc6"): "2.41-1", ("amd64", "gone"): "1"}
    new = {("amd64", "libc6"): "2.41-2", ("arm64", "libc6"): "2.41-2", ("amd64", "fresh"): "3"}
    assert update.diff_versions("forky", old, new) == [
        Change("forky", "fresh", ("amd64",), None, "3"),
        Change("forky", "gone", ("amd64",), "1", None),
        Change("forky", "libc6", ("amd64", "arm64"), "2.41-1", "2.41-2"),
    ]


def test_report_is_a_table() -> None:
    table = update.report([Change("trixie", "python3.13", ("amd64", "arm64"), "3.13.5-2", "3.13.5-2+deb13u1",
                                  ("CVE-2026-0001",)), Change("build root", "zstd", ("amd64",), None, "1.5")])
    lines = table.splitlines()
    assert lines[0].split() == ["release", "package", "arch", "old", "->", "new", "CVEs"]
    assert lines[1].split() == ["trixie", "python3.13", "amd64,", "arm64", "3.13.5-2", "->", "3.13.5-2+deb13u1",
                                "CVE-2026-0001"]
    assert lines[2].split() == ["build", "root", "zstd", "amd64", "(new)", "->", "1.5", "-"]
    assert len({line.index("->") for line in lines[1:]}) == 1  # aligned columns


LOCK = {"version": 2, "manifest_sha256": "ab", "packages": [{"name": "a", "version": "1"}],
        "sources": [{"archive": "debian", "suite": "forky", "components": ["main"], "date": "20261101T000000Z",
                     "snapshot": None}]}


def with_sources(doc: dict, **fields: object) -> dict:
    return {**doc, "sources": [{**source, **fields} for source in doc["sources"]]}


def test_a_lock_whose_pins_did_not_move_is_kept() -> None:
    # Only the Release date moved: rewriting would change the file for nothing.
    assert update.lock_is_current(LOCK, with_sources(LOCK, date="20261127T000000Z"))
    assert not update.lock_is_current(LOCK, {**LOCK, "packages": [{"name": "a", "version": "2"}]})
    assert not update.lock_is_current(LOCK, {**LOCK, "manifest_sha256": "cd"})
    assert not update.lock_is_current({**LOCK, "version": 1}, LOCK)
    assert not update.lock_is_current({}, LOCK)


def test_a_live_lock_is_replaced_by_a_snapshot_one() -> None:
    snapshot = with_sources(LOCK, snapshot="20261127T000000Z")
    assert not update.lock_is_current(LOCK, snapshot)
    assert update.lock_is_current(snapshot, with_sources(snapshot, snapshot="20261128T000000Z"))


class OneSuiteReader:
    """An ArchiveReader stand-in: one suite offering two packages of one source, one of them a binNMU."""

    snapshot = None

    def release(self, source: Source) -> ReleaseInfo:
        return ReleaseInfo("http://127.0.0.1/dists/" + source.suite, frozenset({"amd64"}), {}, False, True,
                           "20261101T000000Z", None)

    def candidates(self, source: Source, arch: str) -> list[Candidate]:
        def candidate(name: str, version: str, depends: str, source_version: str | None) -> Candidate:
            return Candidate(name, version, source.archive, source.suite, f"pool/main/z/zlib/{name}_{arch}.deb",
                             "00" * 32, 1, depends, (), "zlib", source_version)
        return [candidate("zlib1g", "1:1.3-1", "", None), candidate("zlib1g-dev", "1:1.3-1+b1", "zlib1g", "1:1.3-1")]


def test_update_rewrites_an_older_format_lock_with_the_sources(tmp_path: Path) -> None:
    release = tmp_path / "forky"
    release.mkdir()
    (release / "manifest.yaml").write_text(
        "sources: [{archive: debian, suite: forky, components: [main]}]\narchs: [amd64]\npackages: [zlib1g-dev]\n")
    current = lock.build_lock(load_manifest(release / "manifest.yaml"), OneSuiteReader())
    # The same pins in format 2, which named no sources: rewritten, though no version moved.
    old = {**current, "version": 2, "packages": [
        {key: value for key, value in package.items() if key not in ("source", "source_version")}
        for package in current["packages"]],
        "sources": [{**source, "date": "20261020T010000Z"} for source in current["sources"]]}
    (release / "lock.json").write_text(lock_file.lock_text(old))
    found = update.Update([], {}, {})
    update.update_locks(tmp_path, OneSuiteReader(), found)
    assert found.changes == []
    written = json.loads(found.writes[release / "lock.json"])
    assert written["version"] == lock_file.LOCK_FORMAT_VERSION
    assert [(p["name"], p["source"], p.get("source_version")) for p in written["packages"]] == [
        ("zlib1g", "zlib", None), ("zlib1g-dev", "zlib", "1:1.3-1")]
    # No package moved, so the archive state (and the images' digests) stay: the old Release date is kept,
    # with the snapshot times that follow from it, not the mirror's newer one (20261101T000000Z).
    assert [(s["date"], s["snapshots"]) for s in written["sources"]] == [("20261020T010000Z", [
        "20261020T070000Z", "20261020T130000Z", "20261021T010000Z", "20261022T010000Z"])]


PINS = """\
# comment
suite forky
snapshot 20261101T000000Z

bazel-bootstrap=7.7.1+ds-8+b1
python3=3.14.7-3  # why this one
"""


def test_build_root_pins_are_rewritten_in_place(tmp_path: Path) -> None:
    path = tmp_path / "build_root.packages"
    path.write_text(PINS)
    pins = update.read_build_root_pins(path)
    assert pins.suite == "forky" and pins.pins == {"bazel-bootstrap": "7.7.1+ds-8+b1", "python3": "3.14.7-3"}
    text = update.build_root_text(pins, {"python3": "3.14.8-1"}, "20261127T060000Z")
    assert text == PINS.replace("3.14.7-3", "3.14.8-1").replace("20261101T000000Z", "20261127T060000Z")
    # Resolved live: the snapshot line goes, since the old snapshot does not hold the new versions.
    assert "snapshot" not in update.build_root_text(pins, {"python3": "3.14.8-1"}, None)


def test_build_root_pins_need_a_suite(tmp_path: Path) -> None:
    path = tmp_path / "build_root.packages"
    path.write_text("python3=3.14\n")
    with pytest.raises(LockError, match="needs a 'suite NAME' line"):
        update.read_build_root_pins(path)


def fake_run(monkeypatch: pytest.MonkeyPatch, changes: list[update.Change], error: str = "") -> None:
    """update_locks finds `changes` (or raises LockError(error)); nothing else touches the network."""
    def update_locks(directory: object, reader: object, found: update.Update) -> None:
        if error:
            raise LockError(error)
        found.changes.extend(changes)

    monkeypatch.setattr(update.lock, "archive_reader", lambda args: None)
    monkeypatch.setattr(update, "update_locks", update_locks)
    monkeypatch.setattr(update, "update_build_root", lambda path, reader, found: None)


ZLIB = update.Change("bookworm", "zlib1g", ("amd64", "arm64"), "1:1.2.13.dfsg-1", "1:1.2.13.dfsg-1+deb12u1",
                     ("CVE-2026-27171",))


def test_check_tells_moved_pins_from_a_check_that_could_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    fake_run(monkeypatch, [ZLIB])
    assert update.main(["--check", "--no-changelogs", "--report", str(tmp_path / "report.json")]) == update.OUTDATED
    assert json.loads((tmp_path / "report.json").read_text()) == [
        {"scope": "bookworm", "name": "zlib1g", "archs": ["amd64", "arm64"], "old": "1:1.2.13.dfsg-1",
         "new": "1:1.2.13.dfsg-1+deb12u1", "cves": ["CVE-2026-27171"]}]
    fake_run(monkeypatch, [])
    assert update.main(["--check", "--no-changelogs"]) == 0
    assert "up to date" in capsys.readouterr().out
    fake_run(monkeypatch, [], error="http://127.0.0.1:1/debian/dists/bookworm/InRelease: connection refused")
    assert update.main(["--check", "--no-changelogs"]) == update.FAILED == 2
    assert "update: error: http://127.0.0.1:1/debian" in capsys.readouterr().err


def test_interrupt_writes_nothing(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(update, "run", interrupted)
    assert update.main([]) == 130
    err = capsys.readouterr().err
    assert "interrupted; nothing was written" in err and "Traceback" not in err


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
