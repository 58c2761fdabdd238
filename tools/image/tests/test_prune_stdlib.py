"""Tests for tools/image/prune_stdlib.py."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from tools.image import prune_stdlib
from tools.tarball import Layer, iter_members, read_layer

STDLIB = "usr/lib/python3.9"
TKINTER_SO = f"{STDLIB}/lib-dynload/_tkinter.cpython-39-x86_64-linux-gnu.so"


def stdlib_layer() -> Layer:
    layer = Layer()
    layer.add_file("usr/bin/python3.9", b"\x7fELF interpreter", 0o755)
    layer.add_file("usr/bin/2to3-3.9", b"#!/usr/bin/python3.9\n", 0o755)
    layer.add_symlink("usr/bin/2to3", "2to3-3.9")
    layer.add_file(f"{STDLIB}/os.py", b"# os\n")
    layer.add_file(f"{STDLIB}/idlelib/__init__.py", b"")
    layer.add_file(f"{STDLIB}/idlelib/editor.py", b"x" * 1000)
    layer.add_file(f"{STDLIB}/idlelib/idle_test/test_editor.py", b"y" * 500)
    layer.add_file(f"{STDLIB}/idlelibrary.py", b"# a sibling whose name starts like idlelib\n")
    layer.add_file(TKINTER_SO, b"z" * 200, 0o644)
    layer.add_file(f"{STDLIB}/lib-dynload/_json.cpython-39-x86_64-linux-gnu.so", b"j" * 100)
    return layer


@pytest.fixture
def input_layer(tmp_path: Path) -> Path:
    path = tmp_path / "in.tar.gz"
    stdlib_layer().write(path)
    return path


def run(input_layer: Path, output: Path, *removes: str, compression: str = "gzip") -> int:
    argv = ["--input", str(input_layer), "--output", str(output), "--compression", compression]
    for remove in removes:
        argv += ["--remove", remove]
    return prune_stdlib.main(argv)


def test_removes_files_and_whole_directories(input_layer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.tar.gz"
    assert run(input_layer, out, f"{STDLIB}/idlelib", "usr/bin/2to3-3.9", "/usr/bin/2to3") == 0
    paths = set(read_layer(out).entries)
    assert not any(p.startswith(f"{STDLIB}/idlelib/") or p == f"{STDLIB}/idlelib" for p in paths)
    assert "usr/bin/2to3-3.9" not in paths and "usr/bin/2to3" not in paths
    assert {f"{STDLIB}/idlelibrary.py", f"{STDLIB}/os.py", "usr/bin/python3.9", TKINTER_SO} <= paths
    printed = capsys.readouterr().out
    assert f"removed {STDLIB}/idlelib: 3 files, 1500 bytes" in printed
    assert "saving 1521 bytes" in printed


def test_glob_matches_architecture_specific_names(input_layer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.tar"
    assert run(input_layer, out, f"{STDLIB}/lib-dynload/_tkinter.*.so", compression="none") == 0
    paths = set(read_layer(out).entries)
    assert TKINTER_SO not in paths
    assert f"{STDLIB}/lib-dynload/_json.cpython-39-x86_64-linux-gnu.so" in paths
    assert f"({TKINTER_SO}): 1 files, 200 bytes" in capsys.readouterr().out


def test_missing_paths_fail_naming_each_and_write_nothing(input_layer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.tar.gz"
    status = run(input_layer, out, f"{STDLIB}/idlelib", f"{STDLIB}/tkinter", f"{STDLIB}/lib-dynload/_curses*.so")
    assert status == 1
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [input_layer]  # no temporary file left behind either
    error = capsys.readouterr().err
    assert f"{STDLIB}/tkinter does not exist in the layer" in error
    assert f"{STDLIB}/lib-dynload/_curses*.so matches nothing in the layer" in error
    assert f"{STDLIB}/idlelib " not in error
    assert "the Debian package changed: update the prune list in python/config.bzl" in error


def test_overlapping_entries_are_not_reported_missing(input_layer: Path, tmp_path: Path) -> None:
    # The file inside the directory is matched against the layer as it was, before anything is removed.
    out = tmp_path / "out.tar.gz"
    assert run(input_layer, out, f"{STDLIB}/idlelib", f"{STDLIB}/idlelib/editor.py") == 0


def test_output_is_byte_identical_across_runs(input_layer: Path, tmp_path: Path) -> None:
    for compression in ("gzip", "none"):
        first, second = tmp_path / f"1.{compression}", tmp_path / f"2.{compression}"
        assert run(input_layer, first, f"{STDLIB}/idlelib", compression=compression) == 0
        assert run(input_layer, second, f"{STDLIB}/idlelib", compression=compression) == 0
        assert first.read_bytes() == second.read_bytes()


def test_keeps_modes_symlinks_and_directory_owners(tmp_path: Path) -> None:
    layer = stdlib_layer()
    layer.add_dir("home/nonroot", 0o700, uid=65532, gid=65532)
    source = tmp_path / "in.tar"
    layer.write(source, "none")
    out = tmp_path / "out.tar"
    assert run(source, out, f"{STDLIB}/idlelib", compression="none") == 0
    members = {info.name.rstrip("/"): info for info, _ in iter_members(io.BytesIO(out.read_bytes()))}
    assert members["usr/bin/python3.9"].mode == 0o755
    assert members["usr/bin/2to3"].issym() and members["usr/bin/2to3"].linkname == "2to3-3.9"
    assert (members["home/nonroot"].uid, members["home/nonroot"].gid, members["home/nonroot"].mode) == (65532, 65532, 0o700)


def test_warns_about_symlinks_left_dangling(input_layer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(input_layer, tmp_path / "out.tar", "usr/bin/2to3-3.9") == 0
    assert "symlink now points at a removed path: usr/bin/2to3 -> 2to3-3.9" in capsys.readouterr().err


def test_refuses_to_break_hard_links(tmp_path: Path) -> None:
    layer = stdlib_layer()
    layer.add_hardlink("usr/bin/python3", "usr/bin/python3.9")
    with pytest.raises(prune_stdlib.PruneError, match="usr/bin/python3 -> usr/bin/python3.9"):
        prune_stdlib.prune(layer, ["usr/bin/python3.9"])
    assert "usr/bin/python3.9" in layer.entries  # nothing was removed
    prune_stdlib.prune(layer, ["usr/bin/python3*"])  # the link and its target together are fine
    assert not {"usr/bin/python3", "usr/bin/python3.9"} & set(layer.entries)


def test_refuses_files_owned_by_other_users(tmp_path: Path) -> None:
    source = tmp_path / "in.tar"
    with tarfile.open(source, "w") as tar:
        info = tarfile.TarInfo("etc/secret")
        info.uid = 1000
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(prune_stdlib.PruneError, match="owned by 1000:0"):
        prune_stdlib.read_layer_keeping_owners(source)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
