"""Applies image layers, in order, to a directory the way a container engine does.

Used by the tools that must run the image's own programs (ldconfig, python) on the image's files:
they unpack the layers into a temporary root and chroot into it.

Rules, as in Docker's and containerd's layer application:
- a later entry replaces whatever an earlier layer put at its path (a directory entry over an existing
  directory only updates the directory's mode and owner and keeps its contents);
- the last component of a path is never followed: a file entry replaces a symlink, it does not write
  through it; symlinks in parent components are followed, but resolved inside the root (an absolute
  target or "..", never escapes it), as they would be inside the container;
- hard links point at a path already unpacked, by this layer (earlier in the tar) or an earlier one;
- modes, including setuid/setgid/sticky bits, and modification times are kept; owners are kept when
  running as root (where the user namespace can represent them).
Whiteouts (".wh." files) are not supported: the project's layers never delete anything.
"""

from __future__ import annotations

import errno
import io
import os
import posixpath
import shutil
import tarfile
from pathlib import Path

from tools.tarball import decompress, iter_members, normalize_path

# How many symlinks one path may traverse before it is taken as a loop (Linux's MAXSYMLINKS).
MAX_SYMLINKS = 40
WHITEOUT_PREFIX = ".wh."


class UnpackError(Exception):
    """A layer cannot be applied: a broken hard link, a loop of symlinks, an unsupported member."""


def unpack_layers(layers: list[Path], dest: Path) -> None:
    """Applies `layers` (possibly compressed tars) in order into the directory `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for layer in layers:
        apply_layer(layer, dest)


def apply_layer(layer: Path, dest: Path) -> None:
    """Applies one layer on top of what is already in `dest`."""
    directories: list[tuple[Path, tarfile.TarInfo]] = []
    for info, data in iter_members(io.BytesIO(decompress(layer.read_bytes()))):
        try:
            directory = _apply_member(dest, info, data)
        except (OSError, UnpackError) as error:
            raise UnpackError(f"{layer}: {info.name}: {error}") from error
        if directory is not None:
            directories.append((directory, info))
    # Directory modes and times last and deepest first, so a read-only directory does not stop its own
    # contents, and writing the contents does not change the directory's mtime afterwards.
    for directory, info in reversed(directories):
        os.chmod(directory, info.mode & 0o7777)
        os.utime(directory, (info.mtime, info.mtime))


def resolve_in_root(root: Path, path: str, follow_last: bool = True) -> Path:
    """Returns the host path that `path` names inside `root`, following symlinks as if `root` were "/".

    With follow_last=False the last component is left alone (it is what is being created or replaced).
    Components that do not exist are kept as they are.
    """
    pending = normalize_path(path).split("/")
    last = pending.pop() if not follow_last and pending else None
    resolved: list[str] = []
    hops = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        if not candidate.is_symlink():
            resolved.append(part)
            continue
        hops += 1
        if hops > MAX_SYMLINKS:
            raise UnpackError(f"too many levels of symbolic links resolving {path!r}")
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        pending = target.split("/") + pending
    if last is not None:
        resolved.append(last)
    return root.joinpath(*resolved)


def _apply_member(root: Path, info: tarfile.TarInfo, data: bytes) -> Path | None:
    """Writes one member; returns the directory it made or updated, whose mode is set at the end."""
    name = normalize_path(info.name)
    if not name:
        return None  # the root directory itself
    if posixpath.basename(name).startswith(WHITEOUT_PREFIX):
        raise UnpackError("whiteouts are not supported")
    target = resolve_in_root(root, name, follow_last=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    if info.isdir():
        if not (target.is_dir() and not target.is_symlink()):
            _remove(target)
            target.mkdir(mode=0o700)
        _chown(target, info)
        return target
    if info.isreg():
        _remove(target)
        _write_file(target, data)
    elif info.issym():
        _remove(target)
        os.symlink(info.linkname, target)
    elif info.islnk():
        source = resolve_in_root(root, info.linkname, follow_last=False)
        if not os.path.lexists(source):
            raise UnpackError(f"hard link target {normalize_path(info.linkname)!r} is not unpacked yet")
        if source != target:
            _remove(target)
            os.link(source, target, follow_symlinks=False)
        # A hard link shares its target's mode and owner; its time is applied to the shared inode, as engines do.
        os.utime(target, (info.mtime, info.mtime), follow_symlinks=False)
        return None
    else:
        raise UnpackError(f"unsupported member type {info.type!r}")
    _chown(target, info)
    if not info.issym():
        os.chmod(target, info.mode & 0o7777)  # after chown, which clears setuid/setgid
    os.utime(target, (info.mtime, info.mtime), follow_symlinks=False)
    return None


def _write_file(target: Path, data: bytes) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _remove(path: Path) -> None:
    """Removes whatever is at `path` (a symlink itself, never what it points at)."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _chown(path: Path, info: tarfile.TarInfo) -> None:
    """Keeps the member's owner when running as root (only root may give files away).

    In a user namespace that maps only root (as some sandboxes do), other owners cannot be set; the
    unpacked root is scratch space for running the image's programs, so the file then stays root's.
    """
    if os.geteuid() != 0:
        return
    try:
        os.lchown(path, info.uid, info.gid)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.EPERM):
            raise
