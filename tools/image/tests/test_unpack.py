"""Tests for tools/image/unpack.py: applying layers in order like a container engine."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from tools.image.unpack import UnpackError, resolve_in_root, unpack_layers
from tools.tarball import Layer


def write_layer(path: Path, layer: Layer, compression: str = "gzip") -> Path:
    layer.write(path, compression)
    return path


def raw_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    """A tar written member by member, in the given order (tarball.Layer always sorts)."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, linkname
    return info


def test_later_layers_replace_earlier_files(tmp_path: Path) -> None:
    first, second = Layer(), Layer()
    first.add_file("etc/motd", b"old\n")
    first.add_file("etc/keep", b"kept\n")
    second.add_file("etc/motd", b"new\n", 0o600)
    unpack_layers([write_layer(tmp_path / "1.tar.gz", first), write_layer(tmp_path / "2.tar", second, "none")], tmp_path / "root")
    root = tmp_path / "root"
    assert (root / "etc/motd").read_bytes() == b"new\n"
    assert stat.S_IMODE((root / "etc/motd").stat().st_mode) == 0o600
    assert (root / "etc/keep").read_bytes() == b"kept\n"


def test_layers_apply_in_the_order_given(tmp_path: Path) -> None:
    a, b = Layer(), Layer()
    a.add_file("x", b"a")
    b.add_file("x", b"b")
    la, lb = write_layer(tmp_path / "a.tar", a, "none"), write_layer(tmp_path / "b.tar", b, "none")
    unpack_layers([lb, la], tmp_path / "ba")
    unpack_layers([la, lb], tmp_path / "ab")
    assert (tmp_path / "ba/x").read_bytes() == b"a"
    assert (tmp_path / "ab/x").read_bytes() == b"b"


def test_file_replaces_symlink_without_writing_through_it(tmp_path: Path) -> None:
    first, second = Layer(), Layer()
    first.add_file("etc/real", b"target\n")
    first.add_symlink("etc/link", "real")
    second.add_file("etc/link", b"replacement\n")
    unpack_layers([write_layer(tmp_path / "1.tar", first), write_layer(tmp_path / "2.tar", second)], tmp_path / "root")
    root = tmp_path / "root"
    assert not (root / "etc/link").is_symlink()
    assert (root / "etc/link").read_bytes() == b"replacement\n"
    assert (root / "etc/real").read_bytes() == b"target\n"


def test_symlink_replaces_directory_and_file(tmp_path: Path) -> None:
    first, second = Layer(), Layer()
    first.add_file("opt/dir/inside", b"x")
    first.add_file("opt/file", b"y")
    second.add_symlink("opt/dir", "/elsewhere")
    second.add_symlink("opt/file", "dir")
    unpack_layers([write_layer(tmp_path / "1.tar", first), write_layer(tmp_path / "2.tar", second)], tmp_path / "root")
    root = tmp_path / "root"
    assert os.readlink(root / "opt/dir") == "/elsewhere"
    assert os.readlink(root / "opt/file") == "dir"


def test_absolute_symlinked_parent_resolves_inside_the_root(tmp_path: Path) -> None:
    # Merged /usr: lib -> /usr/lib in one layer, a file under lib/ in the next one lands in usr/lib.
    first = Layer()
    first.add_dir("usr/lib")
    first.add_symlink("lib", "/usr/lib")
    unpack_layers([write_layer(tmp_path / "1.tar", first), raw_tar(tmp_path / "2.tar", [(member("lib/libfoo.so.1"), b"elf")])], tmp_path / "root")
    root = tmp_path / "root"
    assert (root / "usr/lib/libfoo.so.1").read_bytes() == b"elf"
    assert (root / "lib").is_symlink()


def test_resolve_in_root_never_leaves_the_root(tmp_path: Path) -> None:
    (tmp_path / "root/a").mkdir(parents=True)
    os.symlink("../../../../..", tmp_path / "root/a/up")
    os.symlink("/private/etc", tmp_path / "root/etc")
    assert resolve_in_root(tmp_path / "root", "a/up/etc/passwd") == tmp_path / "root/private/etc/passwd"
    assert resolve_in_root(tmp_path / "root", "/../../etc/x") == tmp_path / "root/private/etc/x"
    assert resolve_in_root(tmp_path / "root", "etc", follow_last=False) == tmp_path / "root/etc"


def test_symlink_loop_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    os.symlink("b", tmp_path / "root/a")
    os.symlink("a", tmp_path / "root/b")
    with pytest.raises(UnpackError, match="too many levels"):
        resolve_in_root(tmp_path / "root", "a/file")


def test_hard_links_share_the_file(tmp_path: Path) -> None:
    layer = raw_tar(
        tmp_path / "1.tar",
        [
            (member("usr/bin/", tarfile.DIRTYPE, 0o755), b""),
            (member("usr/bin/python3.9", mode=0o755), b"interpreter"),
            (member("usr/bin/python3", tarfile.LNKTYPE, linkname="usr/bin/python3.9"), b""),
        ],
    )
    unpack_layers([layer], tmp_path / "root")
    root = tmp_path / "root"
    assert (root / "usr/bin/python3").read_bytes() == b"interpreter"
    assert os.path.samefile(root / "usr/bin/python3", root / "usr/bin/python3.9")
    assert (root / "usr/bin/python3").stat().st_nlink == 2


def test_hard_link_to_an_earlier_layer(tmp_path: Path) -> None:
    first = Layer()
    first.add_file("a", b"data")
    second = raw_tar(tmp_path / "2.tar", [(member("b", tarfile.LNKTYPE, linkname="a"), b"")])
    unpack_layers([write_layer(tmp_path / "1.tar", first), second], tmp_path / "root")
    assert os.path.samefile(tmp_path / "root/a", tmp_path / "root/b")


def test_hard_link_before_its_target_is_an_error(tmp_path: Path) -> None:
    layer = raw_tar(tmp_path / "1.tar", [(member("a", tarfile.LNKTYPE, linkname="b"), b""), (member("b"), b"x")])
    with pytest.raises(UnpackError, match="hard link target 'b' is not unpacked yet"):
        unpack_layers([layer], tmp_path / "root")


def test_modes_are_kept(tmp_path: Path) -> None:
    layer = Layer()
    layer.add_dir("tmp", 0o1777)
    layer.add_dir("ro", 0o555)
    layer.add_file("ro/file", b"x", 0o444)
    layer.add_file("usr/bin/tool", b"#!", 0o4755)
    unpack_layers([write_layer(tmp_path / "1.tar", layer)], tmp_path / "root")
    root = tmp_path / "root"
    assert stat.S_IMODE((root / "tmp").stat().st_mode) == 0o1777
    assert stat.S_IMODE((root / "ro").stat().st_mode) == 0o555
    assert stat.S_IMODE((root / "ro/file").stat().st_mode) == 0o444
    assert stat.S_IMODE((root / "usr/bin/tool").stat().st_mode) == 0o4755


def test_modification_times_are_kept(tmp_path: Path) -> None:
    layer = Layer()
    layer.add_dir("usr/lib", mtime=1_600_000_001)
    layer.add_file("usr/lib/file", b"x", mtime=1_600_000_002)
    layer.add_hardlink("usr/lib/hard", "usr/lib/file")
    layer.add_symlink("usr/lib/link", "file", mtime=1_600_000_003)
    unpack_layers([write_layer(tmp_path / "1.tar", layer)], tmp_path / "root")
    lib = tmp_path / "root/usr/lib"
    assert lib.stat().st_mtime == 1_600_000_001  # not changed by writing its contents
    assert (lib / "file").stat().st_mtime == (lib / "hard").stat().st_mtime == 1_600_000_002
    assert (lib / "link").lstat().st_mtime == 1_600_000_003


def test_directory_entry_keeps_contents_and_updates_mode(tmp_path: Path) -> None:
    first, second = Layer(), Layer()
    first.add_file("srv/data", b"x")
    second.add_dir("srv", 0o700)
    unpack_layers([write_layer(tmp_path / "1.tar", first), write_layer(tmp_path / "2.tar", second)], tmp_path / "root")
    assert (tmp_path / "root/srv/data").read_bytes() == b"x"
    assert stat.S_IMODE((tmp_path / "root/srv").stat().st_mode) == 0o700


def can_give_files_to(uid: int, directory: Path) -> bool:
    """Whether this process may chown to `uid`: it must be root, in a user namespace that maps `uid`
    (Bazel's linux-sandbox maps root alone)."""
    if os.geteuid() != 0:
        return False
    probe = directory / "chown-probe"
    probe.touch()
    try:
        os.chown(probe, uid, uid)
    except OSError:
        return False
    finally:
        probe.unlink()
    return True


def test_owners_are_kept_as_root(tmp_path: Path) -> None:
    if not can_give_files_to(65532, tmp_path):
        pytest.skip("only root, in a user namespace that maps uid 65532, can give files to other owners")
    layer = Layer()
    layer.add_dir("home/nonroot", 0o700, uid=65532, gid=65532)
    unpack_layers([write_layer(tmp_path / "1.tar", layer)], tmp_path / "root")
    info = (tmp_path / "root/home/nonroot").stat()
    assert (info.st_uid, info.st_gid) == (65532, 65532)


def test_whiteouts_are_refused(tmp_path: Path) -> None:
    layer = raw_tar(tmp_path / "1.tar", [(member("etc/.wh.motd"), b"")])
    with pytest.raises(UnpackError, match="whiteouts are not supported"):
        unpack_layers([layer], tmp_path / "root")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
