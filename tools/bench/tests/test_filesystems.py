"""Tests for tools/bench/filesystems.py: the deterministic filesystem tar, slim's path rules, sizes, and
package versions read from dpkg's status."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from tools.bench import filesystems


def test_filesystem_tar_is_deterministic_and_skips_nothing_regular(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "f").write_bytes(b"x" * 10)
    (tmp_path / "a").write_bytes(b"y")
    (tmp_path / "link").symlink_to("a")
    (tmp_path / "hard").hardlink_to(tmp_path / "a")
    data, files = filesystems.filesystem_tar(tmp_path)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["a", "b", "b/f", "hard", "link"]
    assert {m.mtime for m in members} == {0}
    assert members[3].islnk() and files == 2  # the hard link is stored, and counted, once
    assert filesystems.filesystem_tar(tmp_path) == (data, files)


def test_slim_keeps_copyright_files_and_their_directories() -> None:
    paths = ["usr", "usr/share", "usr/share/doc", "usr/share/doc/bash", "usr/share/doc/bash/copyright",
             "usr/share/doc/bash/README.gz", "usr/share/doc/libc6", "usr/share/doc/libc6/changelog.gz",
             "usr/share/man", "usr/share/man/man1", "usr/share/man/man1/ls.1.gz", "usr/share/locale",
             "usr/share/locale/de", "usr/share/locale/de/LC_MESSAGES/x.mo", "usr/share/locale/locale.alias",
             "usr/bin", "usr/bin/python3.9", "usr/share/info"]
    assert filesystems.slim_kept(paths) == {
        "usr", "usr/share", "usr/share/doc", "usr/share/doc/bash", "usr/share/doc/bash/copyright", "usr/share/man",
        "usr/share/locale", "usr/share/locale/locale.alias", "usr/bin", "usr/bin/python3.9", "usr/share/info"}


def test_filesystem_tar_slim(tmp_path: Path) -> None:
    (tmp_path / "usr/share/doc/bash").mkdir(parents=True)
    (tmp_path / "usr/share/doc/bash/copyright").write_text("GPL")
    (tmp_path / "usr/share/doc/bash/NEWS").write_text("news")
    (tmp_path / "usr/share/man/man1").mkdir(parents=True)
    (tmp_path / "usr/share/man/man1/bash.1").write_text("man")
    data, files = filesystems.filesystem_tar(tmp_path, slim=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
    assert names == ["usr", "usr/share", "usr/share/doc", "usr/share/doc/bash", "usr/share/doc/bash/copyright",
                     "usr/share/man"]
    assert files == 1


def test_filesystem_size_compresses_the_tar(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"a" * 100_000)
    (tmp_path / "small").write_bytes(b"b")
    data, _ = filesystems.filesystem_tar(tmp_path)
    size = filesystems.filesystem_size(tmp_path)
    assert (size.tar, size.files) == (len(data), 2)
    assert 0 < size.zstd < size.tar and 0 < size.gzip < size.tar
    assert size.gzip == len(gzip.compress(data, compresslevel=6, mtime=0))


def test_unpack_applies_layers_in_order(tmp_path: Path) -> None:
    def layer(name: str, files: dict[str, bytes]) -> Path:
        path = tmp_path / name
        with tarfile.open(path, "w:gz") as tar:
            for member, content in files.items():
                info = tarfile.TarInfo(member)
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
        return path

    first = layer("1.tar.gz", {"etc/a": b"one", "etc/b": b"b"})
    second = layer("2.tar.gz", {"etc/a": b"two"})
    root = filesystems.unpack([first, second], tmp_path / "root")
    assert (root / "etc/a").read_bytes() == b"two" and (root / "etc/b").read_bytes() == b"b"


STATUS = """Package: libpython3.9-minimal
Version: 3.9.2-1
Status: install ok installed

Package: python3.9-minimal
Status: install ok installed
Version: 3.9.2-1+deb11u7
"""


def test_debian_version_from_dpkg_status(tmp_path: Path) -> None:
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text(STATUS)
    assert filesystems.debian_version(tmp_path, "python3.9-minimal") == "3.9.2-1+deb11u7"
    assert filesystems.debian_version(tmp_path, "libpython3.9-minimal") == "3.9.2-1"
    assert filesystems.debian_version(tmp_path, "python3.11-minimal") == "?"


def test_debian_version_from_a_distroless_status_d_entry(tmp_path: Path) -> None:
    (tmp_path / "var/lib/dpkg/status.d").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status.d/python3.9-minimal").write_text(STATUS.split("\n\n")[1])
    assert filesystems.debian_version(tmp_path, "python3.9-minimal") == "3.9.2-1+deb11u7"
    assert filesystems.debian_version(tmp_path, "libpython3.9-minimal") == "?"


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
