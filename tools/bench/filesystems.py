"""The roots the bench compares, as filesystems: unpacked from layers, sized as one deterministic tar
(optionally as a Debian slim image would hold it), and the version of a package installed in them."""

from __future__ import annotations

import fnmatch
import io
import os
import posixpath
import re
import tarfile
from pathlib import Path
from typing import Iterator, Sequence

from tools import tarball
from tools.bench.results import FilesystemSize
from tools.image.unpack import unpack_layers

# What Docker's debian:*-slim images leave out (debuerreotype's slimify exclude and include lists, which
# become dpkg path-exclude/path-include rules): the peer is measured again without them, as slim would hold it.
SLIM_EXCLUDES = ("usr/share/doc/*", "usr/share/info/*", "usr/share/linda/*", "usr/share/lintian/overrides/*",
                 "usr/share/locale/*", "usr/share/man/*", "usr/share/doc/kde/HTML/*/*", "usr/share/gnome/help/*/*",
                 "usr/share/omf/*/*-*.emf")
SLIM_INCLUDES = ("usr/share/doc/*/copyright", "usr/share/doc/kde/HTML/C/*", "usr/share/gnome/help/*/C/*",
                 "usr/share/locale/all_languages", "usr/share/locale/currency/*", "usr/share/locale/l10n/*",
                 "usr/share/locale/languages", "usr/share/locale/locale.alias", "usr/share/omf/*/*-C.emf")


def walk_sorted(root: Path) -> Iterator[Path]:
    """Every path below `root`, depth first in name order, not following symlinks."""
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        yield Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            yield from walk_sorted(Path(entry.path))


def slim_kept(paths: Sequence[str]) -> set[str]:
    """The paths a slim image keeps: those slim does not exclude, and the directories holding them."""
    def matches(path: str, patterns: Sequence[str]) -> bool:
        return any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)  # "*" spans "/", as in dpkg

    kept = {p for p in paths if not matches(p, SLIM_EXCLUDES) or matches(p, SLIM_INCLUDES)}
    for path in list(kept):
        parent = posixpath.dirname(path)
        while parent and parent not in kept:
            kept.add(parent)
            parent = posixpath.dirname(parent)
    return kept


def filesystem_tar(root: Path, slim: bool = False) -> tuple[bytes, int]:
    """The tree as one tar (sorted, mtime 0; devices, fifos and sockets left out), and its file count."""
    paths = [(path, str(path.relative_to(root))) for path in walk_sorted(root)]
    if slim:
        kept = slim_kept([relative for _, relative in paths])
        paths = [(path, relative) for path, relative in paths if relative in kept]
    buffer = io.BytesIO()
    files = 0
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, relative in paths:
            info = tar.gettarinfo(str(path), arcname=relative)
            if info.type not in (tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE):
                continue
            info.mtime, info.uname, info.gname = 0, "", ""
            if info.isreg():
                files += 1
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    return buffer.getvalue(), files


def filesystem_size(root: Path, slim: bool = False) -> FilesystemSize:
    """The tree's tar, uncompressed, gzip -6 without timestamp, zstd -19 single-threaded (tools/tarball.py)."""
    data, files = filesystem_tar(root, slim)
    return FilesystemSize(len(data), len(tarball.compress(data, "gzip")), len(tarball.compress(data, "zstd")), files)


def unpack(layers: Sequence[Path], dest: Path) -> Path:
    unpack_layers(list(layers), dest)
    return dest


def debian_version(root: Path, package: str) -> str:
    """The package's version, from dpkg's status file or, in a distroless image, its status.d entry."""
    for status in (root / "var/lib/dpkg/status.d" / package, root / "var/lib/dpkg/status"):
        if status.is_file():
            match = re.search(rf"^Package: {re.escape(package)}\n(?:.+\n)*?Version: (.+)$", status.read_text(),
                              re.MULTILINE)
            if match:
                return match.group(1)
    return "?"
