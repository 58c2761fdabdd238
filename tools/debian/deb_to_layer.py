"""Unpacks Debian packages into one deterministic tar layer, the way distroless installs packages.

Nothing is run: maintainer scripts are ignored, as in distroless. What dpkg would record is written
to /var/lib/dpkg/status.d/<package> (and <package>.md5sums) so that image scanners find the packages.
Files, directories and symlinks keep the mtime their .deb records, as dpkg installs them; the status.d
entries and merged-/usr symlinks, which the build writes, get tarball.GENERATED_MTIME.

    python3 -m tools.debian.deb_to_layer --output OUT [--compression gzip|zstd|none]
        [--merged-usr] [--keep-docs] DEB [DEB...]
"""

from __future__ import annotations

import argparse
import io
import re
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from debian.deb822 import Deb822

from tools import cli, tarball

AR_MAGIC = b"!<arch>\n"
AR_HEADER_SIZE = 60
AR_HEADER_END = b"`\n"


# Compressions dpkg-deb writes for control.tar and data.tar, by member name suffix (tarball.MAGIC has their magic).
MEMBER_COMPRESSIONS = {"": "none", ".gz": "gzip", ".zst": "zstd", ".xz": "xz", ".bz2": "bzip2"}
CONTROL_COMPRESSIONS = ("", ".gz", ".xz", ".zst")
DATA_COMPRESSIONS = ("", ".gz", ".xz", ".zst", ".bz2")

STATUS_DIR = "var/lib/dpkg/status.d"
INSTALLED_STATUS = "install ok installed"
# Debian Policy 5.6.1; also keeps the name safe to use as a file name under status.d.
PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")

# Top-level directories that merged-/usr systems (Debian bookworm and later) replace with symlinks into usr/.
MERGED_USR_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")

DOC_DIR = "usr/share/doc"
DROPPED_DOC_DIRS = ("usr/share/man", "usr/share/info", "usr/share/lintian", "usr/share/doc-base")


class DebError(Exception):
    """A .deb that cannot be read or installed into a layer; the message names the file and the problem."""


@dataclass
class Deb:
    """The decompressed control.tar and data.tar of one .deb."""

    path: Path
    control_tar: bytes
    data_tar: bytes


@dataclass(eq=False)  # hashed by identity: paths holding the same Inode are hard links to each other
class Inode:
    data: bytes
    mode: int
    mtime: int = tarball.GENERATED_MTIME


def read_ar(path: Path, data: bytes) -> dict[str, bytes]:
    """Returns the members of an ar archive by name, in archive order."""
    if not data.startswith(AR_MAGIC):
        raise DebError(f"{path}: not a Debian package (no ar archive magic {AR_MAGIC!r})")
    members: dict[str, bytes] = {}
    offset = len(AR_MAGIC)
    while offset < len(data):
        header = data[offset : offset + AR_HEADER_SIZE]
        if len(header) < AR_HEADER_SIZE or header[58:60] != AR_HEADER_END:
            raise DebError(f"{path}: truncated or corrupt ar header at byte {offset}")
        # GNU ar ends names with "/"; BSD-style and dpkg-deb pad them with spaces.
        name = header[:16].decode("ascii", "replace").rstrip(" ").rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise DebError(f"{path}: corrupt size in ar header of member {name!r}") from None
        start = offset + AR_HEADER_SIZE
        if start + size > len(data):
            raise DebError(f"{path}: truncated: ar member {name!r} needs {size} bytes, {len(data) - start} left")
        members[name] = data[start : start + size]
        offset = start + size + size % 2  # members are padded to an even offset
    return members


def tar_member(path: Path, members: dict[str, bytes], base: str, suffixes: Sequence[str]) -> bytes:
    """Returns the decompressed tar `base` (control.tar or data.tar), whichever supported compression it has."""
    found = [name for name in members if name.startswith(base)]
    if not found:
        raise DebError(f"{path}: no {base} member (has {', '.join(members) or 'no members'})")
    name = found[0]
    suffix = name[len(base) :]
    if suffix not in suffixes:
        raise DebError(f"{path}: {name}: unsupported compression (expected {base}{{{','.join(suffixes)}}})")
    try:
        return tarball.decompress(members[name], MEMBER_COMPRESSIONS[suffix])
    except tarball.CompressionError as error:
        raise DebError(f"{path}: {name}: {error}") from None


def read_deb(path: Path) -> Deb:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DebError(f"{path}: cannot read: {error.strerror}") from None
    members = read_ar(path, data)
    if next(iter(members), None) != "debian-binary" or not members["debian-binary"].startswith(b"2."):
        raise DebError(f"{path}: not a Debian package (first member must be debian-binary with format 2.x)")
    return Deb(
        path,
        control_tar=tar_member(path, members, "control.tar", CONTROL_COMPRESSIONS),
        data_tar=tar_member(path, members, "data.tar", DATA_COMPRESSIONS),
    )


def read_tar(path: Path, name: str, data: bytes) -> Iterator[tuple[tarfile.TarInfo, bytes]]:
    try:
        yield from tarball.iter_members(io.BytesIO(data))
    except (tarfile.TarError, EOFError) as error:
        # For data it cannot open, tarfile's "r:*" lists every method it tried; the last one is plain tar.
        reason = str(error).splitlines()[-1].lstrip("- ")
        raise DebError(f"{path}: {name}: corrupt tar: {reason}") from None


def control_files(deb: Deb) -> dict[str, bytes]:
    """Returns the regular files of control.tar by name ("control", "md5sums", ...)."""
    return {
        tarball.normalize_path(info.name): data
        for info, data in read_tar(deb.path, "control.tar", deb.control_tar)
        if info.isreg()
    }


def status_paragraph(path: Path, control: bytes) -> tuple[str, str]:
    """Returns (package name, control paragraph with dpkg's installed Status right after Package)."""
    try:
        fields = Deb822(control.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise DebError(f"{path}: control file is not UTF-8: {error}") from None
    package = fields.get("Package", "")
    if not PACKAGE_NAME.fullmatch(package):
        raise DebError(f"{path}: control file has no valid Package field (got {package!r})")
    status = Deb822()
    for name, value in fields.items():
        status[name] = value
        if name == "Package":
            status["Status"] = INSTALLED_STATUS
    return package, status.dump()


def is_dropped_doc(path: str) -> bool:
    """Whether `path` is documentation left out of the image (`--keep-docs` keeps it)."""
    parts = path.split("/")
    if parts[:3] == DOC_DIR.split("/"):
        # Licence compliance: keep usr/share/doc/<pkg>/copyright, and usr/share/doc/<pkg> itself, which
        # Policy 12.5 allows to be a symlink to the doc directory of the package holding the copyright.
        return not (len(parts) <= 4 or (len(parts) == 5 and parts[4] == "copyright"))
    return any(path == d or path.startswith(d + "/") for d in DROPPED_DOC_DIRS)


def is_merged_usr_path(path: str) -> bool:
    """Whether `path` is in (or is) a top-level directory that merged /usr moves into usr/."""
    return path.split("/", 1)[0] in MERGED_USR_DIRS


def check_member(deb: Path, info: tarfile.TarInfo) -> None:
    if not (info.isreg() or info.isdir() or info.issym() or info.islnk()):
        raise DebError(f"{deb}: {info.name}: unsupported tar member type {info.type!r} (device, fifo, ...)")
    # Every entry becomes root:root, which would turn e.g. a setgid-shadow binary into a setgid-root one.
    set_uid_of_other = info.mode & stat.S_ISUID and info.uid != 0
    set_gid_of_other = info.mode & stat.S_ISGID and info.gid != 0
    if info.isreg() and (set_uid_of_other or set_gid_of_other):
        raise DebError(
            f"{deb}: {info.name}: set-id bit for owner {info.uname or info.uid}:{info.gname or info.gid} "
            "cannot be kept in a root-owned layer"
        )


class LayerBuilder:
    """Installs .debs one after another into one Layer; later packages win on identical paths."""

    def __init__(self, merged_usr: bool, keep_docs: bool) -> None:
        self.layer = tarball.Layer()
        self.merged_usr = merged_usr
        self.keep_docs = keep_docs
        self.merged_dirs_used: set[str] = set()
        # Every regular file is held as a file until `finish` turns paths sharing an inode into hard links;
        # that way a hard-link group survives its first path being dropped (docs), moved (merged /usr)
        # or replaced by a later package.
        self.inodes: dict[str, Inode] = {}

    def add_deb(self, path: Path) -> None:
        deb = read_deb(path)
        files = control_files(deb)
        if "control" not in files:
            raise DebError(f"{path}: control.tar has no control file")
        package, status = status_paragraph(path, files["control"])
        shipped_inodes: dict[str, Inode] = {}  # by path as shipped, which is what hard links name
        for info, data in read_tar(path, "data.tar", deb.data_tar):
            self.add_data_member(path, shipped_inodes, info, data)
        self.add_file(f"{STATUS_DIR}/{package}", Inode(status.encode("utf-8"), 0o644))
        # The md5sums stay as shipped even when docs are dropped, as in distroless:
        # scanners only read package names and versions from status.d.
        if "md5sums" in files:
            self.add_file(f"{STATUS_DIR}/{package}.md5sums", Inode(files["md5sums"], 0o644))

    def add_data_member(self, deb: Path, shipped_inodes: dict[str, Inode], info: tarfile.TarInfo, data: bytes) -> None:
        check_member(deb, info)
        shipped = tarball.normalize_path(info.name)
        if info.islnk():
            target = tarball.normalize_path(info.linkname)
            if target not in shipped_inodes:
                raise DebError(f"{deb}: {info.name}: hard link to {info.linkname}, which is not an earlier file")
            shipped_inodes[shipped] = shipped_inodes[target]
        elif info.isreg():
            shipped_inodes[shipped] = Inode(data, info.mode & 0o7777, int(info.mtime))
        path = self.relocate(shipped)
        if not path or (not self.keep_docs and is_dropped_doc(path)):
            return
        if info.isdir():
            self.inodes.pop(path, None)
            self.layer.add_dir(path, info.mode & 0o7777, mtime=int(info.mtime))
        elif info.issym():
            self.inodes.pop(path, None)
            self.layer.add_symlink(path, self.relocate_symlink_target(info.linkname), mtime=int(info.mtime))
        else:
            self.add_file(path, shipped_inodes[shipped])

    def add_file(self, path: str, inode: Inode) -> None:
        self.inodes[path] = inode
        self.layer.add_file(path, inode.data, inode.mode, mtime=inode.mtime)

    def relocate(self, path: str) -> str:
        """Where `path` goes in the layer: under usr/ with merged /usr; "" for a merged directory itself."""
        if not self.merged_usr or not is_merged_usr_path(path):
            return path
        top = path.split("/", 1)[0]
        self.merged_dirs_used.add(top)
        # The directory itself (or a symlink a package ships for it) becomes the symlink made in `finish`.
        return "" if path == top else f"usr/{path}"

    def relocate_symlink_target(self, target: str) -> str:
        """Moves absolute targets into usr/ with merged /usr; relative ones stay, as dpkg leaves them."""
        if self.merged_usr and target.startswith("/") and is_merged_usr_path(tarball.normalize_path(target)):
            return f"/usr/{tarball.normalize_path(target)}"
        return target

    def finish(self) -> tarball.Layer:
        """Returns the layer with hard links for shared inodes and, with merged /usr, its top-level symlinks."""
        paths_by_inode: dict[Inode, list[str]] = {}
        for path, inode in self.inodes.items():
            paths_by_inode.setdefault(inode, []).append(path)
        for inode, paths in paths_by_inode.items():
            # Any path may keep the data: Layer.sorted_entries moves it to the group's first path in the tar.
            first, *others = paths
            for path in others:
                self.layer.add_member(hard_link(path, first, inode.mode), b"")
        for top in sorted(self.merged_dirs_used):
            self.layer.add_symlink(top, f"usr/{top}")
        return self.layer


def hard_link(path: str, target: str, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.type = tarfile.LNKTYPE
    info.linkname = target
    info.mode = mode
    return info


def build_layer(debs: Sequence[Path], merged_usr: bool, keep_docs: bool) -> tarball.Layer:
    builder = LayerBuilder(merged_usr=merged_usr, keep_docs=keep_docs)
    for deb in debs:
        builder.add_deb(deb)
    return builder.finish()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="deb_to_layer", description="Unpacks .deb packages into one deterministic tar layer."
    )
    parser.add_argument("--output", type=Path, required=True, help="layer file to write")
    parser.add_argument("--compression", choices=tarball.COMPRESSIONS, default="gzip")
    parser.add_argument(
        "--merged-usr",
        action="store_true",
        help="move bin, sbin, lib* into usr/ and add symlinks for them (Debian bookworm and later)",
    )
    parser.add_argument(
        "--keep-docs", action="store_true", help="keep all of usr/share/{doc,man,info,...}, not only copyright files"
    )
    parser.add_argument("debs", type=Path, nargs="+", metavar="DEB", help="packages; later ones win on equal paths")
    return parser.parse_args(argv)


@cli.tool("deb_to_layer", DebError)
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    layer = build_layer(args.debs, merged_usr=args.merged_usr, keep_docs=args.keep_docs)
    layer.write(args.output, args.compression)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
