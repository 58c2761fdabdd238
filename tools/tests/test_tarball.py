"""Tests of the deterministic tar writer every layer goes through."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import time
from pathlib import Path
from typing import Callable

import pytest

from tools import tarball


def members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(tarball.decompress(data))) as tar:
        return tar.getmembers()


def sample_layer() -> tarball.Layer:
    layer = tarball.Layer()
    layer.add_file("./usr/bin/tool", b"#!/bin/sh\n", 0o4755)
    layer.add_file("usr/lib/a-b/x", b"x")
    layer.add_file("usr/lib/a/y", b"y")
    layer.add_symlink("bin", "usr/bin")
    layer.add_hardlink("usr/bin/tool2", "/usr/bin/tool")
    layer.add_dir("home/nonroot", 0o700, uid=65532, gid=65532)
    return layer


def test_entries_sorted_with_parents_first_and_normalized() -> None:
    names = [m.name for m in members(sample_layer().tar_bytes())]
    assert names == ["bin", "home", "home/nonroot", "usr", "usr/bin", "usr/bin/tool", "usr/bin/tool2", "usr/lib",
                     "usr/lib/a", "usr/lib/a/y", "usr/lib/a-b", "usr/lib/a-b/x"]


def test_owner_and_modes_are_fixed_or_kept_and_generated_entries_get_the_generated_mtime() -> None:
    by_name = {m.name: m for m in members(sample_layer().tar_bytes())}
    assert all(m.mtime == tarball.GENERATED_MTIME for m in by_name.values())
    assert by_name["usr/bin/tool"].mode == 0o4755
    assert (by_name["usr/bin/tool"].uid, by_name["usr/bin/tool"].uname) == (0, "root")
    assert (by_name["home/nonroot"].uid, by_name["home/nonroot"].gid, by_name["home/nonroot"].mode) == (65532, 65532, 0o700)
    assert by_name["bin"].issym() and by_name["bin"].linkname == "usr/bin"
    assert by_name["usr/bin/tool2"].islnk() and by_name["usr/bin/tool2"].linkname == "usr/bin/tool"


@pytest.mark.parametrize("compression", tarball.COMPRESSIONS)
def test_compressed_output_is_byte_identical_across_runs_and_paths(tmp_path: Path, compression: str) -> None:
    first, second = tmp_path / "a" / "layer", tmp_path / "b" / "other-name"
    sample_layer().write(first, compression)
    sample_layer().write(second, compression)
    assert first.read_bytes() == second.read_bytes()
    assert [e.path for e in tarball.read_layer(first).sorted_entries()] == [e.path for e in sample_layer().sorted_entries()]


def test_a_file_always_precedes_its_hard_links() -> None:
    layer = tarball.Layer()
    layer.add_file("usr/lib/z-real", b"data", 0o755)
    layer.add_hardlink("usr/bin/a-link", "usr/lib/z-real")
    layer.add_hardlink("usr/sbin/b-link", "usr/lib/z-real")
    by_name = {m.name: m for m in members(layer.tar_bytes())}
    # The first path in the archive carries the data; every other path links to it.
    assert by_name["usr/bin/a-link"].isreg() and by_name["usr/bin/a-link"].mode == 0o755
    assert by_name["usr/lib/z-real"].islnk() and by_name["usr/lib/z-real"].linkname == "usr/bin/a-link"
    assert by_name["usr/sbin/b-link"].linkname == "usr/bin/a-link"
    with tarfile.open(fileobj=io.BytesIO(layer.tar_bytes())) as tar:
        assert tar.extractfile("usr/lib/z-real").read() == b"data"


def test_generated_mtime_is_representable_in_zip_in_every_time_zone() -> None:
    # ZIP's DOS times start at 1980-01-01 00:00 local time; UTC+14 and UTC-12 are the extreme offsets.
    for offset_hours in (-12, 0, 14):
        local = time.gmtime(tarball.GENERATED_MTIME + offset_hours * 3600)
        assert local.tm_year == 1980


def test_entries_keep_their_own_mtime() -> None:
    layer = tarball.Layer()
    layer.add_file("usr/lib/a/file", b"x", mtime=1_600_000_000)
    layer.add_dir("usr/lib/a", mtime=1_600_000_001)
    layer.add_symlink("usr/lib/link", "a/file", mtime=1_600_000_002)
    by_name = {m.name: m.mtime for m in members(layer.tar_bytes())}
    assert by_name == {"usr": tarball.GENERATED_MTIME, "usr/lib": tarball.GENERATED_MTIME, "usr/lib/a": 1_600_000_001,
                       "usr/lib/a/file": 1_600_000_000, "usr/lib/link": 1_600_000_002}


def test_reading_a_layer_keeps_mtimes(tmp_path: Path) -> None:
    layer = tarball.Layer()
    layer.add_file("f", b"x", mtime=1_600_000_000)
    layer.add_dir("d", mtime=1_600_000_001)
    layer.add_symlink("d/l", "../f", mtime=1_600_000_002)
    layer.write(tmp_path / "layer.tar.gz")
    again = tarball.read_layer(tmp_path / "layer.tar.gz")
    assert again.tar_bytes() == layer.tar_bytes()


def test_hard_links_carry_their_files_mtime_and_mode() -> None:
    layer = tarball.Layer()
    layer.add_file("usr/lib/real", b"data", 0o755, mtime=1_600_000_000)
    layer.add_hardlink("usr/lib/z-link", "usr/lib/real")
    layer.add_hardlink("usr/bin/a-link", "usr/lib/real")
    by_name = {m.name: m for m in members(layer.tar_bytes())}
    for name in ("usr/bin/a-link", "usr/lib/real", "usr/lib/z-link"):
        assert (by_name[name].mtime, by_name[name].mode) == (1_600_000_000, 0o755), name


def test_hard_link_to_a_missing_file_is_an_error() -> None:
    layer = tarball.Layer()
    layer.add_hardlink("usr/bin/link", "usr/bin/gone")
    with pytest.raises(ValueError, match="usr/bin/link: hard link to usr/bin/gone"):
        layer.tar_bytes()


def test_remove_takes_a_whole_tree() -> None:
    layer = sample_layer()
    assert layer.remove("usr/lib/a")
    assert not layer.remove("usr/lib/a")
    assert "usr/lib/a-b/x" in layer.entries and "usr/lib/a/y" not in layer.entries


def test_unknown_compression_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown compression 'lz4'"):
        tarball.compress(b"", "lz4")


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_compression_is_recognised_by_its_magic_bytes(compression: str) -> None:
    data = tarball.compress(sample_layer().tar_bytes(), compression)
    assert tarball.compression_of(data) == compression
    assert tarball.decompress(data) == tarball.decompress(data, compression) == sample_layer().tar_bytes()


@pytest.mark.parametrize(("compression", "compress"), [
    ("xz", lzma.compress),
    ("bzip2", bz2.compress),
])
def test_deb_member_compressions_decompress_when_named(compression: str, compress: Callable[[bytes], bytes]) -> None:
    data = compress(b"a tar")
    assert tarball.decompress(data, compression) == b"a tar"
    # A layer is never xz or bzip2: unnamed, such data passes through as it is.
    assert tarball.compression_of(data) == "none" and tarball.decompress(data) == data


def test_data_without_the_named_magic_is_refused() -> None:
    with pytest.raises(tarball.CompressionError, match="not xz data"):
        tarball.decompress(gzip.compress(b"x"), "xz")


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_truncated_data_is_one_compression_error(compression: str) -> None:
    data = tarball.compress(b"x" * 100_000, compression)
    with pytest.raises(tarball.CompressionError, match=f"cannot decompress {compression} data") as error:
        tarball.decompress(data[: len(data) // 2])
    assert "\n" not in str(error.value).strip()


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
