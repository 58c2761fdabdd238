"""Removes parts of the Python standard library (or any path) from a layer.

Each --remove is a path relative to the image root (a file, or a directory with everything below it) or
an fnmatch pattern on the normalized path, for names that carry the architecture, e.g.
usr/lib/python3.9/lib-dynload/_tkinter.*.so (as in fnmatch, "*" also matches "/"). Every one of them must match something: when a Debian
package changes and a listed path is gone, the tool fails naming all of them and writes nothing, so the
prune list cannot silently stop pruning. What the images prune, and why: README.md, "The pruned standard library".
"""

from __future__ import annotations

import argparse
import io
import posixpath
import sys
import tarfile
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from tools import cli
from tools.tarball import COMPRESSIONS, Layer, decompress, iter_members, normalize_path

GLOB_CHARS = frozenset("*?[")
PRUNE_LIST = "python/config.bzl"


class PruneError(Exception):
    """The prune list does not fit the layer."""


@dataclass(frozen=True)
class Removal:
    """What one --remove entry took out of the layer."""

    pattern: str
    matches: tuple[str, ...]
    files: int
    bytes: int


def read_layer_keeping_owners(path: Path) -> Layer:
    """Like tarball.read_layer, but keeps the owner of directories; fails on files not owned by root.

    tarball.Layer can only give directories another owner, so a file owned by anyone else could not be
    written back as it was: refuse it rather than silently hand it to root.
    """
    layer = Layer()
    for info, data in iter_members(io.BytesIO(decompress(path.read_bytes()))):
        if info.isdir():
            layer.add_dir(info.name, info.mode & 0o7777, uid=info.uid, gid=info.gid, mtime=int(info.mtime))
            continue
        if info.uid != 0 or info.gid != 0:
            raise PruneError(f"{info.name} is owned by {info.uid}:{info.gid}; only directories may be owned by non-root")
        layer.add_member(info, data)
    return layer


def all_paths(layer: Layer) -> set[str]:
    """Every path in the layer, including parent directories that have no entry of their own."""
    paths: set[str] = set()
    for path in layer.entries:
        parts = path.split("/")
        paths.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    return paths


def find_matches(paths: set[str], pattern: str) -> list[str]:
    """The paths `pattern` names: itself if it is a plain path, or every path the glob matches."""
    normalized = normalize_path(pattern)
    if not GLOB_CHARS & set(normalized):
        return [normalized] if normalized in paths else []
    return sorted(p for p in paths if fnmatchcase(p, normalized))


def subtree(layer: Layer, path: str) -> list[str]:
    return [p for p in layer.entries if p == path or p.startswith(path + "/")]


def prune(layer: Layer, patterns: list[str]) -> list[Removal]:
    """Removes everything `patterns` match from `layer`; raises PruneError, changing nothing, if any matches nothing."""
    paths = all_paths(layer)
    matches = {pattern: find_matches(paths, pattern) for pattern in patterns}
    missing = [pattern for pattern, found in matches.items() if not found]
    if missing:
        listed = "".join(f"{_missing(pattern)}\n" for pattern in missing)
        raise PruneError(f"{listed}the Debian package changed: update the prune list in {PRUNE_LIST}")
    removals = [_measure(layer, pattern, found) for pattern, found in matches.items()]
    doomed = {p for found in matches.values() for path in found for p in subtree(layer, path)}
    _check_hardlinks(layer, doomed)
    for path in doomed:
        layer.remove(path)
    return removals


def _missing(pattern: str) -> str:
    if GLOB_CHARS & set(pattern):
        return f"{pattern} matches nothing in the layer"
    return f"{pattern} does not exist in the layer"


def _measure(layer: Layer, pattern: str, found: list[str]) -> Removal:
    doomed = {p for path in found for p in subtree(layer, path)}
    files = [layer.entries[p] for p in doomed if layer.entries[p].type == tarfile.REGTYPE]
    return Removal(pattern, tuple(found), len(files), sum(len(entry.data) for entry in files))


def _check_hardlinks(layer: Layer, doomed: set[str]) -> None:
    """A hard link kept while its target goes would make the layer unreadable: refuse it."""
    broken = [
        f"  {entry.path} -> {entry.linkname}"
        for entry in layer.entries.values()
        if entry.type == tarfile.LNKTYPE and entry.path not in doomed and entry.linkname in doomed
    ]
    if broken:
        raise PruneError("hard links would point at removed files; remove them too:\n" + "\n".join(broken))


def dangling_symlinks(layer: Layer, removals: list[Removal]) -> list[str]:
    """Symlinks left in the layer that pointed at something removed (a warning, not an error)."""
    removed = {m for removal in removals for m in removal.matches}
    dangling = []
    for entry in layer.entries.values():
        if entry.type != tarfile.SYMTYPE:
            continue
        target = _symlink_target(entry.path, entry.linkname)
        if any(target == r or target.startswith(r + "/") for r in removed):
            dangling.append(f"{entry.path} -> {entry.linkname}")
    return sorted(dangling)


def _symlink_target(path: str, linkname: str) -> str:
    """The normalized path a symlink at `path` points at (without following further links)."""
    if linkname.startswith("/"):
        return normalize_path(linkname)
    return normalize_path(posixpath.join(posixpath.dirname(path), linkname))


def content_bytes(layer: Layer) -> int:
    return sum(len(entry.data) for entry in layer.entries.values() if entry.type == tarfile.REGTYPE)


def report(removals: list[Removal], saved: int) -> str:
    lines = []
    for removal in removals:
        shown = removal.pattern
        if removal.matches != (normalize_path(removal.pattern),):
            shown += f" ({', '.join(removal.matches)})"
        lines.append(f"removed {shown}: {removal.files} files, {removal.bytes} bytes")
    lines.append(f"pruned {len(removals)} paths, saving {saved} bytes ({saved / 1e6:.1f} MB) uncompressed")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, required=True, help="layer to prune")
    parser.add_argument("--output", type=Path, required=True, help="pruned layer to write")
    parser.add_argument(
        "--remove", action="append", required=True, metavar="PATH",
        help="path or fnmatch pattern relative to the image root; repeatable; each must match something",
    )
    parser.add_argument("--compression", choices=COMPRESSIONS, default="gzip")
    return parser.parse_args(argv)


def prune_file(path: Path, patterns: list[str]) -> tuple[Layer, list[Removal], int]:
    """The layer in `path` with `patterns` pruned, what was removed, and its content size before; a PruneError names `path`."""
    try:
        layer = read_layer_keeping_owners(path)
        size_before = content_bytes(layer)
        return layer, prune(layer, patterns), size_before
    except PruneError as error:
        raise PruneError(f"in {path}:\n{error}") from None


@cli.tool("prune_stdlib", PruneError)
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    layer, removals, size_before = prune_file(args.input, args.remove)
    for link in dangling_symlinks(layer, removals):
        print(f"prune_stdlib: warning: symlink now points at a removed path: {link}", file=sys.stderr)
    layer.write(args.output, args.compression)
    print(report(removals, size_before - content_bytes(layer)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
