"""Tests for tools/image/symlinks.py: the layer's links, its determinism, and malformed --symlink specs."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from tools import tarball
from tools.image import symlinks


def members(path: Path) -> dict[str, tarfile.TarInfo]:
    return {info.name.rstrip("/"): info for info, _ in tarball.iter_members(io.BytesIO(path.read_bytes()))}


def write(tmp_path: Path, *specs: str, name: str = "links.tar.gz", compression: str | None = None) -> Path:
    output = tmp_path / name
    argv = [arg for spec in specs for arg in ("--symlink", spec)] + ["--output", str(output)]
    if compression:
        argv += ["--compression", compression]
    assert symlinks.main(argv) == 0
    return output


def test_layer_holds_exactly_the_symlinks(tmp_path: Path) -> None:
    output = write(tmp_path, "usr/bin/python3=python3.13", "/usr/bin/python=/usr/bin/python3", "./lib64=usr/lib64")

    entries = members(output)

    links = {name: info.linkname for name, info in entries.items() if info.issym()}
    assert links == {"usr/bin/python3": "python3.13", "usr/bin/python": "/usr/bin/python3", "lib64": "usr/lib64"}
    # Everything else is a parent directory the links need, and nothing more.
    assert {name for name, info in entries.items() if not info.issym()} == {"usr", "usr/bin"}
    assert all(info.isdir() and info.mode == 0o755 for name, info in entries.items() if not info.issym())
    for info in entries.values():
        assert (info.uid, info.gid, info.uname, info.gname) == (0, 0, "root", "root")
        assert info.mtime == tarball.GENERATED_MTIME
        assert info.size == 0


def test_symlinks_come_after_their_directories(tmp_path: Path) -> None:
    output = write(tmp_path, "usr/bin/python3=python3.13", compression="none", name="links.tar")
    with tarfile.open(output, mode="r:") as tar:
        assert [info.name.rstrip("/") for info in tar] == ["usr", "usr/bin", "usr/bin/python3"]


def test_last_spec_for_a_path_wins(tmp_path: Path) -> None:
    output = write(tmp_path, "usr/bin/python3=python3.12", "/usr/bin/python3=python3.13")
    assert members(output)["usr/bin/python3"].linkname == "python3.13"


def test_target_may_contain_equals(tmp_path: Path) -> None:
    output = write(tmp_path, "etc/odd=a=b")
    assert members(output)["etc/odd"].linkname == "a=b"


def test_layer_is_deterministic(tmp_path: Path) -> None:
    specs = ("usr/bin/python3=python3.13", "usr/bin/python=python3", "lib64=usr/lib64")
    first = write(tmp_path, *specs, name="first.tar.gz")
    second = write(tmp_path, *specs, name="second.tar.gz")
    reordered = write(tmp_path, *reversed(specs), name="reordered.tar.gz")

    assert first.read_bytes() == second.read_bytes() == reordered.read_bytes()
    assert first.read_bytes()[:2] == b"\x1f\x8b"  # gzip by default


def test_uncompressed_layer_is_the_plain_tar(tmp_path: Path) -> None:
    plain = write(tmp_path, "usr/bin/python3=python3.13", name="links.tar", compression="none")
    gzipped = write(tmp_path, "usr/bin/python3=python3.13", name="links.tar.gz")
    assert tarball.decompress(gzipped.read_bytes()) == plain.read_bytes()


@pytest.mark.parametrize("spec", ["usr/bin/python3", "=python3.13", "usr/bin/python3=", "=", ""])
def test_malformed_symlink_spec_is_a_usage_error(
    tmp_path: Path, spec: str, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "links.tar.gz"
    with pytest.raises(SystemExit) as exit_info:
        symlinks.main(["--symlink", "ok=fine", "--symlink", spec, "--output", str(output)])
    assert exit_info.value.code == 2
    assert f"'{spec}' is not PATH=TARGET" in capsys.readouterr().err
    assert not output.exists()


def test_symlink_is_required(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        symlinks.main(["--output", str(tmp_path / "links.tar.gz")])
    assert exit_info.value.code == 2


def test_parse_symlink() -> None:
    assert symlinks.parse_symlink("usr/bin/python3=python3.13") == ("usr/bin/python3", "python3.13")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
