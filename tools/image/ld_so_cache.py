"""Builds /etc/ld.so.cache for an image with the image's own ldconfig, and writes it as a layer.

The layers are unpacked into a temporary root; the image's ldconfig runs chrooted into it (so a
dynamically linked ldconfig would use the image's libc too, and every path it reads is the image's),
with -X so it only reads the libraries and never creates or changes their symlinks, and -i so no
auxiliary cache is read. The output layer holds etc/ld.so.cache and nothing else.

An image of another architecture than the machine's (--architecture) runs its ldconfig under qemu's
static user-mode emulator (see chroot.py); ldconfig writes the cache for the image's architecture either way.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tools import cli
from tools.image.chroot import (
    ChrootError,
    add_image_args,
    find_program,
    require_root,
    run_in_root,
    select_emulator,
)
from tools.image.unpack import UnpackError, resolve_in_root, unpack_layers
from tools.tarball import COMPRESSIONS, Layer

CACHE = "etc/ld.so.cache"
CACHE_MODE = 0o644
# Debian before the /usr merge (bullseye, bookworm) ships sbin/ldconfig; merged-/usr releases usr/sbin/ldconfig.
LDCONFIG_PATHS = ("sbin/ldconfig", "usr/sbin/ldconfig")
LDCONFIG_ARGS = ["-X", "-i"]


class LdSoCacheError(Exception):
    pass


def build_cache(root: Path, emulator: Path | None = None) -> bytes:
    """Runs the image's ldconfig in the unpacked `root` (under `emulator`, if given); returns the cache."""
    ldconfig = find_program(root, LDCONFIG_PATHS)
    if ldconfig is None:
        raise LdSoCacheError(f"no ldconfig in the image's layers ({' or '.join(LDCONFIG_PATHS)}); add libc-bin")
    require_root("ld_so_cache")
    cache = resolve_in_root(root, CACHE)
    if cache.exists() or cache.is_symlink():
        cache.unlink()  # so a cache left in the layers can never pass for ldconfig's output
    result = run_in_root(root, [ldconfig, *LDCONFIG_ARGS], emulator=emulator)
    if result.stderr.strip():
        print(result.stderr.strip(), file=sys.stderr)
    if not cache.is_file():
        raise LdSoCacheError(f"{ldconfig} {' '.join(LDCONFIG_ARGS)} succeeded but wrote no /{CACHE}")
    return cache.read_bytes()


def cache_layer(layers: list[Path], emulator: Path | None = None) -> Layer:
    """Unpacks `layers` into a temporary root and returns a layer holding only their ld.so.cache."""
    with tempfile.TemporaryDirectory(prefix="ld_so_cache.") as tmp:
        root = Path(tmp) / "root"
        unpack_layers(layers, root)
        data = build_cache(root, emulator)
    layer = Layer()
    layer.add_file(CACHE, data, CACHE_MODE)
    return layer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True, help="layer to write, holding only etc/ld.so.cache")
    parser.add_argument("--compression", choices=COMPRESSIONS, default="gzip")
    add_image_args(parser)
    return parser.parse_args(argv)


@cli.tool("ld_so_cache", LdSoCacheError, ChrootError, UnpackError)
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    layer = cache_layer(args.layer, select_emulator(args.architecture, args.emulator))
    layer.write(args.output, args.compression)
    print(f"ld_so_cache: wrote /{CACHE} ({len(layer.entries[CACHE].data)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
