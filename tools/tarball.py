"""Deterministic tar layers: the one place that decides how this project writes and reads tars.

Every layer the project produces goes through `Layer.write`, so they all share the same rules:
entries sorted by path with their parent directories present, owner root:root (uid/gid 0)
unless a directory is explicitly given to another user, PAX format, and compression that does not embed
a timestamp or file name. Modification times are kept where an entry has one of its own (a file unpacked
from a .deb keeps the time the .deb records, as dpkg would install it); everything the build generates
gets GENERATED_MTIME. Either way the time comes from the inputs, never from the clock.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import posixpath
import shutil
import subprocess
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from tools.atomic_file import write_atomically

# The one modification time of every file, directory and link the build generates (base files, caches,
# status.d entries, parent directories the writer adds, ...): 1980-01-02T00:00:00Z. Not the Unix epoch,
# which distroless uses: ZIP cannot store times before 1980-01-01 00:00 *local* time, so Python's zipfile
# (zipapp, shutil.make_archive, PyZipFile) refuses files older than that. One day later stays 1980 in
# every time zone (UTC-12 to UTC+14). Fixed, so images stay reproducible bit for bit.
GENERATED_MTIME = 315619200
COMPRESSIONS = ("gzip", "zstd", "none")
GZIP_LEVEL = 6
ZSTD_LEVEL = 19


def normalize_path(path: str) -> str:
    """Returns `path` relative to the image root, without "./", leading or trailing slashes."""
    return posixpath.normpath("/" + path).lstrip("/")


@dataclass
class Entry:
    """One tar member: a regular file, directory, symlink or hard link."""

    path: str
    type: bytes  # tarfile.REGTYPE, DIRTYPE, SYMTYPE or LNKTYPE
    mode: int
    data: bytes = b""
    linkname: str = ""
    uid: int = 0
    gid: int = 0
    mtime: int = GENERATED_MTIME

    def tarinfo(self) -> tarfile.TarInfo:
        info = tarfile.TarInfo(self.path + ("/" if self.type == tarfile.DIRTYPE else ""))
        info.type = self.type
        info.mode = self.mode
        info.mtime = self.mtime
        info.uid, info.gid = self.uid, self.gid
        info.uname = "root" if self.uid == 0 else ""
        info.gname = "root" if self.gid == 0 else ""
        info.linkname = self.linkname
        info.size = len(self.data) if self.type == tarfile.REGTYPE else 0
        return info


@dataclass
class Layer:
    """An in-memory set of entries, keyed by normalized path; the last one added for a path wins."""

    entries: dict[str, Entry] = field(default_factory=dict)

    def add_file(self, path: str, data: bytes, mode: int = 0o644, mtime: int = GENERATED_MTIME) -> None:
        self._add(Entry(normalize_path(path), tarfile.REGTYPE, mode, data, mtime=mtime))

    def add_dir(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0, mtime: int = GENERATED_MTIME) -> None:
        """Adds a directory; only home directories of non-root users are owned by anyone but root."""
        self._add(Entry(normalize_path(path), tarfile.DIRTYPE, mode, uid=uid, gid=gid, mtime=mtime))

    def add_symlink(self, path: str, target: str, mtime: int = GENERATED_MTIME) -> None:
        self._add(Entry(normalize_path(path), tarfile.SYMTYPE, 0o777, linkname=target, mtime=mtime))

    def add_hardlink(self, path: str, target: str) -> None:
        """Adds a hard link; in the tar it takes the mode and mtime of the file it links to (one inode)."""
        self._add(Entry(normalize_path(path), tarfile.LNKTYPE, 0o644, linkname=normalize_path(target)))

    def add_member(self, info: tarfile.TarInfo, data: bytes) -> None:
        """Adds a member read from another tar, keeping its type, permissions, mtime and link target."""
        mode, mtime = info.mode & 0o7777, int(info.mtime)
        if info.isdir():
            self.add_dir(info.name, mode, mtime=mtime)
        elif info.issym():
            self.add_symlink(info.name, info.linkname, mtime=mtime)
        elif info.islnk():
            self._add(Entry(normalize_path(info.name), tarfile.LNKTYPE, mode, linkname=normalize_path(info.linkname)))
        elif info.isreg():
            self.add_file(info.name, data, mode, mtime=mtime)
        else:
            raise ValueError(f"{info.name}: unsupported tar member type {info.type!r} (only files, directories and links)")

    def remove(self, path: str) -> bool:
        """Removes `path` and everything below it; returns whether anything was removed."""
        prefix = normalize_path(path)
        doomed = [p for p in self.entries if p == prefix or p.startswith(prefix + "/")]
        for p in doomed:
            del self.entries[p]
        return bool(doomed)

    def merge(self, other: "Layer") -> None:
        for entry in other.entries.values():
            self._add(entry)

    def _add(self, entry: Entry) -> None:
        if not entry.path:
            return  # the root directory itself is never an entry
        self.entries[entry.path] = entry

    def sorted_entries(self) -> list[Entry]:
        """Entries sorted by path, with missing parent directories added (mode 0755, GENERATED_MTIME)."""
        entries = dict(self.entries)
        for path in list(entries):
            parent = posixpath.dirname(path)
            while parent and parent not in entries:
                entries[parent] = Entry(parent, tarfile.DIRTYPE, 0o755)
                parent = posixpath.dirname(parent)
        order = sorted(entries, key=sort_key)
        _put_files_before_their_hard_links(entries, order)
        return [entries[p] for p in order]

    def tar_bytes(self) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for entry in self.sorted_entries():
                tar.addfile(entry.tarinfo(), io.BytesIO(entry.data) if entry.type == tarfile.REGTYPE else None)
        return buffer.getvalue()

    def write(self, out: Path, compression: str = "gzip") -> None:
        write_atomically(out, compress(self.tar_bytes(), compression))


def sort_key(path: str) -> list[str]:
    """Sorting on path components keeps every directory directly before its contents."""
    return path.split("/")


def _put_files_before_their_hard_links(entries: dict[str, Entry], order: list[str]) -> None:
    """Makes the first path of each hard-link group (in `order`) the file, and the others links to it.

    Extractors (Docker's included) can only link to a file they have already written, but a link may sort
    before its file, e.g. after a later package or a merged-/usr move renamed the file. Every link carries
    its file's mode and mtime: extractors apply a link entry's times to the inode it shares with the file.
    """
    position = {path: index for index, path in enumerate(order)}
    groups: dict[str, list[str]] = {}
    for path, entry in entries.items():
        if entry.type == tarfile.LNKTYPE:
            target = entry.linkname
            if target not in entries or entries[target].type != tarfile.REGTYPE:
                raise ValueError(f"{path}: hard link to {target}, which is not a regular file in the layer")
            groups.setdefault(target, []).append(path)
    for file_path, links in groups.items():
        first = min([file_path, *links], key=position.__getitem__)
        file = entries[file_path]
        entries[first] = Entry(first, tarfile.REGTYPE, file.mode, file.data, uid=file.uid, gid=file.gid, mtime=file.mtime)
        for path in [file_path, *links]:
            if path != first:
                entries[path] = Entry(
                    path, tarfile.LNKTYPE, file.mode, linkname=first, uid=file.uid, gid=file.gid, mtime=file.mtime
                )


def compress(data: bytes, compression: str) -> bytes:
    """Compresses deterministically: no timestamp or name in gzip, single-threaded zstd."""
    if compression == "gzip":
        buffer = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=GZIP_LEVEL, mtime=0) as gz:
            gz.write(data)
        return buffer.getvalue()
    if compression == "zstd":
        return _run_zstd([f"-{ZSTD_LEVEL}", "-T1", "-q", "-c"], data)
    if compression == "none":
        return data
    raise ValueError(f"unknown compression {compression!r}; use one of {', '.join(COMPRESSIONS)}")


class CompressionError(Exception):
    """Data that does not decompress (truncated, corrupt, or not what its name says), or no zstd to run."""


# The compressions this project reads, by their magic bytes: a layer's (gzip, zstd; "none" is a plain tar),
# and the ones dpkg-deb may also use for a .deb's control.tar and data.tar (xz, bzip2).
MAGIC = {
    "gzip": b"\x1f\x8b",
    "zstd": b"\x28\xb5\x2f\xfd",
    "xz": b"\xfd7zXZ\x00",
    "bzip2": b"BZh",
}
_DECOMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.decompress,
    "zstd": lambda data: _run_zstd(["-d", "-q", "-c"], data),
    "xz": lzma.decompress,
    "bzip2": bz2.decompress,
    "none": lambda data: data,
}


def compression_of(data: bytes) -> str:
    """A layer's compression by its magic bytes: "gzip", "zstd", or "none" (a plain tar, or anything else)."""
    for compression in COMPRESSIONS:
        if compression in MAGIC and data.startswith(MAGIC[compression]):
            return compression
    return "none"


def decompress(data: bytes, compression: str | None = None) -> bytes:
    """Undoes `compress`; `compression` (one of MAGIC, or "none") defaults to what `compression_of` finds.

    Raises CompressionError when the data does not start with the named compression's magic bytes or does
    not decompress.
    """
    compression = compression_of(data) if compression is None else compression
    if compression != "none" and not data.startswith(MAGIC[compression]):
        raise CompressionError(f"not {compression} data (it does not start with the magic bytes of {compression})")
    try:
        return _DECOMPRESSORS[compression](data)
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as error:
        raise CompressionError(f"cannot decompress {compression} data (truncated or corrupt): {error}") from None


def _run_zstd(args: list[str], data: bytes) -> bytes:
    """Runs zstd, keeping its complaint for the error message instead of letting it print."""
    if not shutil.which("zstd"):
        raise CompressionError("zstd is not installed; it is part of the build root (tools/build_root.packages)")
    result = subprocess.run(["zstd", *args], input=data, capture_output=True)
    if result.returncode != 0:
        raise ValueError(f"zstd: {result.stderr.decode('utf-8', 'replace').strip()}")
    return result.stdout


def read_layer(path: Path) -> Layer:
    """Reads a (possibly compressed) tar into a Layer."""
    layer = Layer()
    for info, data in iter_members(io.BytesIO(decompress(path.read_bytes()))):
        layer.add_member(info, data)
    return layer


def iter_members(fileobj: BinaryIO) -> Iterator[tuple[tarfile.TarInfo, bytes]]:
    """Yields (member, contents) for each member of an uncompressed or compressed tar stream."""
    with tarfile.open(fileobj=fileobj, mode="r:*") as tar:
        for info in tar:
            data = b""
            if info.isreg():
                extracted = tar.extractfile(info)
                assert extracted is not None
                data = extracted.read()
            yield info, data
