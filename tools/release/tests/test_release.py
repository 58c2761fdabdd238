"""tools/release/release.py against a fake tools/bazel that plays a workspace whose update moves one package."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.oci.layout import CONFIG_MEDIA_TYPE, INDEX_MEDIA_TYPE as INDEX, MANIFEST_MEDIA_TYPE as MANIFEST, Layout
from tools.release import release
from tools.release.release import Index, ReleaseError

INDEXES = [Index("//python:3.9", "//python:3.9_push", ("//python:3.9_amd64_test",)),
           Index("//python:3.11", "//python:3.11_push", ("//python:3.11_amd64_test", "//python:3.11_arm64_test"))]
ZLIB = {"scope": "bookworm", "name": "zlib1g", "archs": ["amd64", "arm64"], "old": "1:1.2.13.dfsg-1",
        "new": "1:1.2.13.dfsg-1+deb12u1", "cves": ["CVE-2026-27171", "CVE-2026-85091"]}


def write_layout(root: Path, name: str, seed: str, state: str) -> None:
    """An OCI layout holding an index over one image whose manifest carries the archive-state annotation."""
    layout = Layout(root / name)

    def blob(document: dict, media_type: str) -> dict:
        data = json.dumps(document, sort_keys=True).encode()
        return {"mediaType": media_type, "digest": layout.write_blob(data), "size": len(data)}

    config = blob({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "seed": seed},
                  CONFIG_MEDIA_TYPE)
    manifest = blob({"schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": [],
                     "annotations": {release.ARCHIVE_STATE_ANNOTATION: state}}, MANIFEST)
    layout.write_index([blob({"schemaVersion": 2, "mediaType": INDEX, "manifests": [manifest]}, INDEX)])


def index_digest(root: Path, name: str) -> str:
    return json.loads((root / name / "index.json").read_text())["manifests"][0]["digest"]


class FakeBazel:
    """Records each command; `update` moves `changes` and rebuilds 3.11 under a new digest; `test` may fail."""

    def __init__(self, root: Path, changes: list[dict], tests_pass: bool = True) -> None:
        root = root / "fake-execroot"
        self.root, self.changes, self.tests_pass, self.calls = root, changes, tests_pass, []
        write_layout(root, "bazel-out/3.9", "1", "20260912T092708Z")
        write_layout(root, "bazel-out/3.11", "2", "20261125T022230Z")
        ORIGINAL.update({"3.9": index_digest(root, "bazel-out/3.9"), "3.11": index_digest(root, "bazel-out/3.11")})

    def __call__(self, *args: str, capture: bool = False) -> tuple[int, str]:
        self.calls.append(args)
        if args[:2] == ("run", "//debian_packages:update"):
            Path(args[args.index("--report") + 1]).write_text(json.dumps(self.changes))
            if self.changes and "--check" not in args:
                write_layout(self.root, "bazel-out/3.11", "3", "20261201T000000Z")
            return (1 if self.changes and "--check" in args else 0), ""
        if args[:2] == ("info", "execution_root"):
            return 0, f"{self.root}\n"
        if args[0] == "cquery" and args[-1] == release.TAGS_TARGET:
            (self.root / "tags.json").write_text(json.dumps({"//python:3.9": ["3.9", "3.9.2-20260912"],
                                                             "//python:3.11": ["3.11", "3.11.2-20261201"]}))
            return 0, "tags.json\n"
        if args[0] == "cquery":
            return 0, "@@//python:3.9 bazel-out/3.9\n@@//python:3.11 bazel-out/3.11\n"
        if args[0] == "test":
            return (0 if self.tests_pass else 3), ""
        return 0, ""

    def commands(self) -> list[tuple[str, ...]]:
        return [call[:2] for call in self.calls]


# The digests of the layouts before any update (write_layout is deterministic).
ORIGINAL: dict[str, str] = {}


@pytest.fixture(autouse=True)
def registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """What the registry serves, by reference: 3.9 as built, 3.11 the build before the update."""
    served = {"r.invalid/d/python:3.9": "3.9", "r.invalid/d/python:3.11": "3.11"}  # -> a FakeBazel digest's key
    monkeypatch.setattr(release.push, "remote_digest", lambda reference: ORIGINAL.get(served.get(reference, ""), ""))
    return served


def run(bazel: FakeBazel, tmp_path: Path, mode: str = "release") -> int:
    return release.release(bazel, tmp_path, INDEXES, "r.invalid/d", "", mode, "2026-12-03")


def test_nothing_moved_says_up_to_date_and_pushes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bazel = FakeBazel(tmp_path, [])
    assert run(bazel, tmp_path) == 0
    assert "up to date" in capsys.readouterr().out
    assert not any(call[0] in ("test",) or call[1].endswith("_push") for call in bazel.calls if len(call) > 1)
    assert not (tmp_path / release.NOTES).exists()


def test_only_the_affected_index_is_tested_pushed_and_noted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bazel = FakeBazel(tmp_path, [ZLIB])
    assert run(bazel, tmp_path) == 0
    assert ("test", "//python:3.11_amd64_test", "//python:3.11_arm64_test") in bazel.calls
    pushes = [call[1] for call in bazel.calls if call[0] == "run" and call[1].endswith("_push")]
    assert pushes == ["//python:3.11_push"]
    assert ("run", "//:verify") in bazel.commands()
    out = capsys.readouterr().out
    assert ("affected (r.invalid/d serves another digest): //python:3.11; unaffected (same digest: they hold none "
            "of the moved packages): //python:3.9") in out
    notes = (tmp_path / release.NOTES).read_text()
    assert notes.startswith(release.NOTES_HEADER + "\n## 2026-12-03\n")
    assert "| bookworm | zlib1g | amd64, arm64 | 1:1.2.13.dfsg-1 | 1:1.2.13.dfsg-1+deb12u1 | CVE-2026-27171 CVE-2026-85091 |" in notes
    new = index_digest(tmp_path / "fake-execroot", "bazel-out/3.11")
    assert f"| `//python:3.11` | `{new}` (was `{ORIGINAL['3.11']}`) | 3.11, 3.11.2-20261201 |" in notes
    assert "3.11: 20261201T000000Z" in notes

    # A second release later goes above the first.
    bazel = FakeBazel(tmp_path, [dict(ZLIB, old=ZLIB["new"], new="1:1.2.13.dfsg-1+deb12u2")])
    release.release(bazel, tmp_path, INDEXES, "r.invalid/d", "", "release", "2026-12-09")
    notes = (tmp_path / release.NOTES).read_text()
    assert notes.index("## 2026-12-09") < notes.index("## 2026-12-03") and notes.count(release.NOTES_HEADER) == 1


def test_prepare_writes_locks_and_notes_and_pushes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(release.push, "remote_digest", lambda reference: pytest.fail("prepare asked a registry"))
    bazel = FakeBazel(tmp_path, [ZLIB])
    assert release.release(bazel, tmp_path, INDEXES, "", "", "prepare", "2026-12-03") == 0
    assert ("test", "//python:3.11_amd64_test", "//python:3.11_arm64_test") in bazel.calls
    assert not any(call[0] == "run" and (call[1].endswith("_push") or call[1] == "//:verify") for call in bazel.calls)
    assert "| `//python:3.11` |" in (tmp_path / release.NOTES).read_text()


def test_no_update_pushes_the_committed_locks_where_the_registry_differs(
    tmp_path: Path, registry: dict[str, str],
) -> None:
    bazel = FakeBazel(tmp_path, [ZLIB])
    registry["r.invalid/d/python:3.11"] = "never pushed"
    assert run(bazel, tmp_path, mode="no-update") == 0
    assert not any(call[:2] == ("run", "//debian_packages:update") for call in bazel.calls)
    assert [call[1] for call in bazel.calls if call[0] == "run" and call[1].endswith("_push")] == ["//python:3.11_push"]
    assert ("run", "//:verify") in bazel.commands()
    assert not (tmp_path / release.NOTES).exists()  # the notes came with the pull request

    # After a manifest edit re-locked by hand: the update's report gives the notes.
    (tmp_path / "report.json").write_text(json.dumps([ZLIB]))
    registry["r.invalid/d/python:3.11"] = "never pushed"
    bazel = FakeBazel(tmp_path, [])
    assert release.release(bazel, tmp_path, INDEXES, "r.invalid/d", "", "no-update", "2026-12-03",
                           str(tmp_path / "report.json")) == 0
    assert "| bookworm | zlib1g |" in (tmp_path / release.NOTES).read_text()


def test_a_failing_test_pushes_nothing_and_names_the_step(tmp_path: Path) -> None:
    bazel = FakeBazel(tmp_path, [ZLIB], tests_pass=False)
    with pytest.raises(ReleaseError, match="the affected images' tests failed .*nothing was pushed"):
        run(bazel, tmp_path)
    assert not any(call[0] == "run" and call[1].endswith("_push") for call in bazel.calls)
    assert not (tmp_path / release.NOTES).exists()


def test_dry_run_writes_and_pushes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bazel = FakeBazel(tmp_path, [ZLIB])
    assert run(bazel, tmp_path, mode="dry-run") == 0
    assert bazel.commands() == [("run", "//debian_packages:update")]
    assert "--check" in bazel.calls[0]
    assert "would write the new locks of bookworm" in capsys.readouterr().out
    assert not (tmp_path / release.NOTES).exists()


def test_an_update_check_that_could_not_run_is_an_error(tmp_path: Path) -> None:
    bazel = FakeBazel(tmp_path, [ZLIB])
    failing = lambda *args, capture=False: (2, "")  # noqa: E731
    with pytest.raises(ReleaseError, match="the update check could not run"):
        release.release(failing, tmp_path, INDEXES, "r.invalid/d", "", "dry-run", "2026-12-03")
    assert bazel.calls == []


def test_index_specs_and_push_output() -> None:
    assert release.parse_index("//python:3.9=//python:3.9_push=//python:3.9_amd64_test") == INDEXES[0]
    with pytest.raises(Exception, match="is not LABEL=PUSH_LABEL"):
        release.parse_index("//python:3.9")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
