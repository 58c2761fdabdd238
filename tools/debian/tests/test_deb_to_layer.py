"""Tests for tools/debian/deb_to_layer.py, on small .debs built here with dpkg-deb."""

from __future__ import annotations

import bz2
import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Callable

import pytest

from tools import tarball
from tools.debian import deb_to_layer

CONTROL = """\
Package: sample
Version: 1.2-3
Architecture: amd64
Maintainer: Sample Maintainer <sample@example.org>
Depends: libc6 (>= 2.36),
 libsample1
Description: sample package
 A package built by the tests.
 .
 Second paragraph.
"""
MD5SUMS = b"d41d8cd98f00b204e9800998ecf8427e  usr/bin/sample\n"
BINARY = b"\x7fELF\x02\x01\x01\x00sample binary\x00\xff"
# The times the sample package records (dpkg-deb keeps the tree's mtimes): one for most paths, and distinct
# ones for a file (and its hard link), a symlink and a directory, to tell each member's own time apart.
SHIPPED_MTIME = 1_700_000_000
OWN_MTIMES = {
    "usr/bin/sample": 1_700_000_100,
    "usr/bin/sample-hard": 1_700_000_100,  # the same inode
    "usr/bin/sample-link": 1_700_000_200,
    "usr/share/doc/sample": 1_700_000_300,
}


def write(root: Path, path: str, data: bytes, mode: int = 0o644) -> None:
    file = root / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(data)
    file.chmod(mode)


def symlink(root: Path, path: str, target: str) -> None:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, root / path)


def hard_link(root: Path, path: str, existing: str) -> None:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    os.link(root / existing, root / path)


def sample_tree(root: Path, md5sums: bytes | None = MD5SUMS) -> Path:
    """A package tree with every kind of entry deb_to_layer has to handle."""
    write(root, "DEBIAN/control", CONTROL.encode())
    if md5sums is not None:
        write(root, "DEBIAN/md5sums", md5sums)
    write(root, "usr/bin/sample", BINARY, 0o755)
    write(root, "usr/bin/sample-suid", b"setuid", 0o4755)
    write(root, "usr/bin/sample-sgid", b"setgid", 0o2755)
    hard_link(root, "usr/bin/sample-hard", "usr/bin/sample")
    symlink(root, "usr/bin/sample-link", "sample")
    write(root, "usr/share/doc/sample/copyright", b"GPL-3.0-or-later\n")
    write(root, "usr/share/doc/sample/README", b"readme\n")
    hard_link(root, "usr/share/sample/README", "usr/share/doc/sample/README")
    write(root, "usr/share/man/man1/sample.1.gz", b"man page")
    write(root, "usr/share/lintian/overrides/sample", b"sample: some-tag\n")
    write(root, "bin/zsample-tool", b"tool", 0o755)
    hard_link(root, "usr/bin/asample-tool", "bin/zsample-tool")  # sorts before it once in usr/bin
    write(root, "lib/x86_64-linux-gnu/libsample.so.1", b"library")
    symlink(root, "lib64/ld-sample.so", "/lib/x86_64-linux-gnu/libsample.so.1")
    symlink(root, "usr/lib/relative-link", "../lib/x86_64-linux-gnu/libsample.so.1")
    for directory in (root / "DEBIAN", *(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink())):
        directory.chmod(0o755)
    set_mtimes(root, {path: OWN_MTIMES.get(path, SHIPPED_MTIME) for path in tree_paths(root)})
    return root


def tree_paths(root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in root.rglob("*") if not p.relative_to(root).as_posix().startswith("DEBIAN")]


def set_mtimes(root: Path, mtimes: dict[str, int]) -> None:
    """Sets each path's mtime, deepest first: setting a time inside a directory does not change the directory's."""
    for path in sorted(mtimes, key=lambda p: p.count("/"), reverse=True):
        os.utime(root / path, (mtimes[path], mtimes[path]), follow_symlinks=False)


def dpkg_deb(root: Path, out: Path, compression: str = "xz") -> Path:
    root.chmod(0o755)
    subprocess.run(
        ["dpkg-deb", f"-Z{compression}", "--root-owner-group", "--build", str(root), str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return out


@pytest.fixture
def sample_deb(tmp_path: Path) -> Path:
    return dpkg_deb(sample_tree(tmp_path / "sample"), tmp_path / "sample.deb")


def write_ar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """Writes an ar archive the way dpkg-deb does, for hand-made (and broken) packages."""
    out = bytearray(deb_to_layer.AR_MAGIC)
    for name, data in members:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}".encode() + deb_to_layer.AR_HEADER_END
        out += data + b"\n" * (len(data) % 2)
    path.write_bytes(bytes(out))
    return path


def ar_members(deb: Path) -> list[tuple[str, bytes]]:
    return list(deb_to_layer.read_ar(deb, deb.read_bytes()).items())


def with_data_tar(deb: Path, out: Path, name: str, data: bytes) -> Path:
    """Copies `deb` with its data.tar member replaced by `name` holding `data`."""
    members = [(n, d) if not n.startswith("data.tar") else (name, data) for n, d in ar_members(deb)]
    return write_ar(out, members)


def make_layer(tmp_path: Path, *debs: Path, flags: tuple[str, ...] = (), compression: str = "none") -> Path:
    out = tmp_path / f"layer-{len(list(tmp_path.glob('layer-*')))}.tar"
    argv = ["--output", str(out), "--compression", compression, *flags, *map(str, debs)]
    assert deb_to_layer.main(argv) == 0
    return out


def members(layer: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(layer) as tar:
        return {info.name.rstrip("/"): info for info in tar.getmembers()}


def contents(layer: Path, name: str) -> bytes:
    with tarfile.open(layer) as tar:
        extracted = tar.extractfile(name)
        assert extracted is not None
        return extracted.read()


def test_status_file_has_installed_status_after_package(tmp_path: Path, sample_deb: Path) -> None:
    status = contents(make_layer(tmp_path, sample_deb), "var/lib/dpkg/status.d/sample").decode()
    assert status == CONTROL.replace("Package: sample\n", "Package: sample\nStatus: install ok installed\n")


def test_md5sums_are_copied_as_shipped(tmp_path: Path, sample_deb: Path) -> None:
    assert contents(make_layer(tmp_path, sample_deb), "var/lib/dpkg/status.d/sample.md5sums") == MD5SUMS


def test_md5sums_are_omitted_when_the_package_has_none(tmp_path: Path) -> None:
    deb = dpkg_deb(sample_tree(tmp_path / "root", md5sums=None), tmp_path / "sample.deb")
    names = members(make_layer(tmp_path, deb))
    assert "var/lib/dpkg/status.d/sample" in names
    assert "var/lib/dpkg/status.d/sample.md5sums" not in names


def test_docs_are_dropped_but_copyright_is_kept(tmp_path: Path, sample_deb: Path) -> None:
    names = members(make_layer(tmp_path, sample_deb))
    assert "usr/share/doc/sample/copyright" in names
    assert "usr/share/doc/sample/README" not in names
    assert not [n for n in names if n.startswith(("usr/share/man", "usr/share/lintian"))]


def test_keep_docs_keeps_all_documentation(tmp_path: Path, sample_deb: Path) -> None:
    names = members(make_layer(tmp_path, sample_deb, flags=("--keep-docs",)))
    for name in ("usr/share/doc/sample/README", "usr/share/man/man1/sample.1.gz", "usr/share/lintian/overrides/sample"):
        assert name in names


def test_symlinks_and_hard_links_are_kept(tmp_path: Path, sample_deb: Path) -> None:
    names = members(make_layer(tmp_path, sample_deb))
    assert names["usr/bin/sample-link"].issym() and names["usr/bin/sample-link"].linkname == "sample"
    assert names["usr/bin/sample-hard"].islnk() and names["usr/bin/sample-hard"].linkname == "usr/bin/sample"


def test_hard_link_to_a_dropped_doc_becomes_the_file(tmp_path: Path, sample_deb: Path) -> None:
    layer = make_layer(tmp_path, sample_deb)
    assert members(layer)["usr/share/sample/README"].isreg()
    assert contents(layer, "usr/share/sample/README") == b"readme\n"


def test_every_hard_link_follows_its_file(tmp_path: Path, sample_deb: Path) -> None:
    for flags in ((), ("--merged-usr",), ("--keep-docs",)):
        seen: set[str] = set()
        for name, info in members(make_layer(tmp_path, sample_deb, flags=flags)).items():
            assert not info.islnk() or info.linkname in seen, (flags, name)
            if info.isreg():
                seen.add(name)


def test_permissions_are_kept_including_set_id_bits(tmp_path: Path, sample_deb: Path) -> None:
    names = members(make_layer(tmp_path, sample_deb))
    assert names["usr/bin/sample"].mode == 0o755
    assert names["usr/bin/sample-suid"].mode == 0o4755
    assert names["usr/bin/sample-sgid"].mode == 0o2755
    assert names["usr/share/doc/sample/copyright"].mode == 0o644


def test_entries_are_owned_by_root(tmp_path: Path, sample_deb: Path) -> None:
    for info in members(make_layer(tmp_path, sample_deb)).values():
        assert (info.uid, info.gid, info.uname, info.gname) == (0, 0, "root", "root")


def test_shipped_entries_keep_the_mtime_the_deb_records(tmp_path: Path, sample_deb: Path) -> None:
    names = members(make_layer(tmp_path, sample_deb))
    assert names["usr/bin/sample"].mtime == OWN_MTIMES["usr/bin/sample"]
    assert names["usr/bin/sample-hard"].mtime == OWN_MTIMES["usr/bin/sample"]
    assert names["usr/bin/sample-link"].mtime == OWN_MTIMES["usr/bin/sample-link"]
    assert names["usr/share/doc/sample"].mtime == OWN_MTIMES["usr/share/doc/sample"]
    shipped = [n for n in names if n.split("/")[0] != "var" and n not in OWN_MTIMES]
    assert {names[n].mtime for n in shipped} == {SHIPPED_MTIME}


def test_generated_entries_get_the_generated_mtime(tmp_path: Path, sample_deb: Path) -> None:
    names = members(make_layer(tmp_path, sample_deb, flags=("--merged-usr",)))
    generated = ["var", "var/lib", "var/lib/dpkg", "var/lib/dpkg/status.d", "var/lib/dpkg/status.d/sample",
                 "var/lib/dpkg/status.d/sample.md5sums", "bin", "lib", "lib64"]
    assert {n: names[n].mtime for n in generated} == dict.fromkeys(generated, tarball.GENERATED_MTIME)


def test_hard_links_moved_by_merged_usr_keep_their_files_mtime(tmp_path: Path, sample_deb: Path) -> None:
    names = members(make_layer(tmp_path, sample_deb, flags=("--merged-usr",)))
    assert names["usr/bin/zsample-tool"].islnk()
    assert names["usr/bin/zsample-tool"].mtime == names["usr/bin/asample-tool"].mtime == SHIPPED_MTIME


def test_entries_are_sorted_with_parents_first(tmp_path: Path, sample_deb: Path) -> None:
    names = list(members(make_layer(tmp_path, sample_deb)))
    assert names == sorted(names, key=lambda n: n.split("/"))
    for index, name in enumerate(names):
        parent = name.rpartition("/")[0]
        assert not parent or parent in names[:index], name


def test_without_merged_usr_top_dirs_are_kept(tmp_path: Path, sample_deb: Path) -> None:
    names = members(make_layer(tmp_path, sample_deb))
    assert names["bin"].isdir() and names["lib64"].isdir()
    assert "bin/zsample-tool" in names
    assert names["lib64/ld-sample.so"].linkname == "/lib/x86_64-linux-gnu/libsample.so.1"


def test_merged_usr_moves_top_dirs_into_usr(tmp_path: Path, sample_deb: Path) -> None:
    names = members(make_layer(tmp_path, sample_deb, flags=("--merged-usr",)))
    assert not [n for n in names if n.split("/")[0] in deb_to_layer.MERGED_USR_DIRS and not names[n].issym()]
    assert {n: names[n].linkname for n in ("bin", "lib", "lib64")} == {
        "bin": "usr/bin",
        "lib": "usr/lib",
        "lib64": "usr/lib64",
    }
    assert "sbin" not in names  # no package used it
    assert names["usr/lib/x86_64-linux-gnu/libsample.so.1"].isreg()
    assert names["usr/lib64/ld-sample.so"].linkname == "/usr/lib/x86_64-linux-gnu/libsample.so.1"
    assert names["usr/lib/relative-link"].linkname == "../lib/x86_64-linux-gnu/libsample.so.1"
    # The hard link now sorts before the file it was linked to, so the two swap roles.
    assert names["usr/bin/asample-tool"].isreg()
    assert names["usr/bin/zsample-tool"].islnk() and names["usr/bin/zsample-tool"].linkname == "usr/bin/asample-tool"


def test_merged_usr_skips_symlinks_packages_ship_for_top_dirs(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root, "DEBIAN/control", CONTROL.encode())
    write(root, "usr/sbin/tool", b"tool", 0o755)
    symlink(root, "sbin", "usr/sbin")
    (root / "DEBIAN").chmod(0o755)
    names = members(make_layer(tmp_path, dpkg_deb(root, tmp_path / "base.deb"), flags=("--merged-usr",)))
    assert names["sbin"].issym() and names["sbin"].linkname == "usr/sbin"
    assert "usr/usr" not in names and "usr/sbin" in names


def test_two_debs_merge_into_one_layer_and_the_later_wins(tmp_path: Path, sample_deb: Path) -> None:
    root = tmp_path / "other"
    write(root, "DEBIAN/control", CONTROL.replace("Package: sample", "Package: other").encode())
    write(root, "usr/bin/other", b"other", 0o755)
    write(root, "usr/bin/sample", b"replaced", 0o700)
    (root / "DEBIAN").chmod(0o755)
    for directory in (root / "usr", root / "usr/bin"):
        directory.chmod(0o755)
    other = dpkg_deb(root, tmp_path / "other.deb")
    layer = make_layer(tmp_path, sample_deb, other)
    names = members(layer)
    both = {"var/lib/dpkg/status.d/sample", "var/lib/dpkg/status.d/other", "usr/bin/other", "usr/bin/sample-link"}
    assert both <= set(names)  # directories merge: usr/bin holds the files of both packages
    assert contents(layer, "usr/bin/sample") == b"replaced" and names["usr/bin/sample"].mode == 0o700
    # The earlier package's hard link keeps the earlier contents.
    assert contents(layer, "usr/bin/sample-hard") == BINARY
    assert names["usr/bin/sample-hard"].isreg()


def test_output_is_identical_across_runs_input_paths_and_the_debs_own_mtime(tmp_path: Path, sample_deb: Path) -> None:
    moved = tmp_path / "elsewhere" / "renamed.deb"
    moved.parent.mkdir()
    shutil.copy(sample_deb, moved)
    os.utime(moved, (1_000_000, 1_000_000))
    rebuilt = dpkg_deb(sample_tree(tmp_path / "rebuilt"), tmp_path / "rebuilt.deb")
    layers = [make_layer(tmp_path, deb, compression="gzip") for deb in (sample_deb, sample_deb, moved, rebuilt)]
    assert len({layer.read_bytes() for layer in layers}) == 1


def test_a_deb_recording_other_mtimes_gives_a_layer_differing_only_in_them(tmp_path: Path, sample_deb: Path) -> None:
    root = sample_tree(tmp_path / "older")
    set_mtimes(root, dict.fromkeys(tree_paths(root), 400_000_000))
    older = members(make_layer(tmp_path, dpkg_deb(root, tmp_path / "older.deb")))
    newer = members(make_layer(tmp_path, sample_deb))
    assert list(older) == list(newer)
    changed = {n for n in newer if older[n].mtime != newer[n].mtime}
    assert changed == {n for n in newer if n.split("/")[0] != "var"}
    assert {older[n].mtime for n in changed} == {400_000_000}


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_compressed_outputs_hold_the_uncompressed_layer(tmp_path: Path, sample_deb: Path, compression: str) -> None:
    plain = make_layer(tmp_path, sample_deb, compression="none").read_bytes()
    compressed = make_layer(tmp_path, sample_deb, compression=compression).read_bytes()
    assert compressed != plain
    assert tarball.decompress(compressed) == plain


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_data_tar_compressions_give_the_same_layer(tmp_path: Path, sample_deb: Path, compression: str) -> None:
    deb = dpkg_deb(sample_tree(tmp_path / "root"), tmp_path / f"{compression}.deb", compression)
    assert make_layer(tmp_path, deb).read_bytes() == make_layer(tmp_path, sample_deb).read_bytes()


def test_bzip2_data_tar_gives_the_same_layer(tmp_path: Path, sample_deb: Path) -> None:
    data_tar = deb_to_layer.read_deb(sample_deb).data_tar
    deb = with_data_tar(sample_deb, tmp_path / "bz2.deb", "data.tar.bz2", bz2.compress(data_tar))
    assert make_layer(tmp_path, deb).read_bytes() == make_layer(tmp_path, sample_deb).read_bytes()


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def first_half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def without_data_tar(deb: Path, out: Path) -> Path:
    return write_ar(out, [(name, data) for name, data in ar_members(deb) if not name.startswith("data.tar")])


# Ways to break a good .deb: (good deb, path to write) -> broken deb, and a part of the expected error.
BROKEN_DEBS: dict[str, tuple[Callable[[Path, Path], Path], str]] = {
    "missing": (lambda deb, out: out, "cannot read"),
    "bad magic": (lambda deb, out: write_bytes(out, b"not a package\n"), "no ar archive magic"),
    "truncated": (lambda deb, out: write_bytes(out, deb.read_bytes()[:-100]), "truncated"),
    "no debian-binary": (lambda deb, out: write_ar(out, ar_members(deb)[1:]), "debian-binary"),
    "no data.tar": (without_data_tar, "no data.tar member"),
    "unknown compression": (lambda deb, out: with_data_tar(deb, out, "data.tar.lz4", b""), "unsupported compression"),
    "wrong magic": (lambda deb, out: with_data_tar(deb, out, "data.tar.xz", b"plain"), "magic bytes"),
    "truncated gzip": (
        lambda deb, out: with_data_tar(deb, out, "data.tar.gz", first_half(gzip.compress(b"x" * 100_000))),
        "data.tar.gz: cannot decompress",
    ),
    "truncated zstd": (
        lambda deb, out: with_data_tar(deb, out, "data.tar.zst", first_half(tarball.compress(b"x" * 100_000, "zstd"))),
        "data.tar.zst: cannot decompress",
    ),
    "not a tar": (lambda deb, out: with_data_tar(deb, out, "data.tar", b"x" * 1024), "corrupt tar"),
}


@pytest.mark.parametrize("case", BROKEN_DEBS)
def test_bad_deb_fails_naming_the_file_and_writes_nothing(
    tmp_path: Path, sample_deb: Path, capfd: pytest.CaptureFixture[str], case: str
) -> None:
    break_deb, message = BROKEN_DEBS[case]
    deb = break_deb(sample_deb, tmp_path / "broken.deb")
    out = tmp_path / "out" / "layer.tar.gz"
    assert deb_to_layer.main(["--output", str(out), str(sample_deb), str(deb)]) == 1
    error = capfd.readouterr().err
    assert f"{deb}: " in error and message in error and error.count("\n") == 1, error
    assert not out.exists() and not (out.parent.exists() and list(out.parent.iterdir()))


def hand_made_data_tar(*infos: tarfile.TarInfo) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info in infos:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return buffer.getvalue()


def tar_info(name: str, type: bytes, mode: int, gid: int = 0, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.gid, info.size = type, mode, gid, size
    return info


@pytest.mark.parametrize(
    ("info", "message"),
    [
        (tar_info("./dev/fifo", tarfile.FIFOTYPE, 0o644), "./dev/fifo: unsupported tar member type"),
        (tar_info("./dev/null", tarfile.CHRTYPE, 0o666), "./dev/null: unsupported tar member type"),
        (tar_info("./usr/bin/chkpwd", tarfile.REGTYPE, 0o2755, gid=42, size=1), "./usr/bin/chkpwd: set-id bit"),
    ],
)
def test_members_that_cannot_be_kept_fail_naming_deb_and_path(
    tmp_path: Path, sample_deb: Path, capfd: pytest.CaptureFixture[str], info: tarfile.TarInfo, message: str
) -> None:
    deb = with_data_tar(sample_deb, tmp_path / "odd.deb", "data.tar", hand_made_data_tar(info))
    out = tmp_path / "layer.tar"
    assert deb_to_layer.main(["--output", str(out), str(deb)]) == 1
    error = capfd.readouterr().err
    assert f"{deb}: {message}" in error
    assert not out.exists()


def test_runs_as_a_module(tmp_path: Path, sample_deb: Path) -> None:
    out = tmp_path / "layer.tar.zst"
    repo_root = Path(__file__).parents[3]
    command = [sys.executable, "-m", "tools.debian.deb_to_layer", "--output", str(out), "--compression", "zstd"]
    subprocess.run([*command, "--merged-usr", str(sample_deb)], cwd=repo_root, check=True)
    assert out.read_bytes() == tarball.compress(
        make_layer(tmp_path, sample_deb, flags=("--merged-usr",)).read_bytes(), "zstd"
    )


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
