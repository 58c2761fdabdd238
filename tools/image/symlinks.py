"""Writes a layer holding only the given symlinks (e.g. /usr/bin/python3 -> python3.9)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools import tarball


def parse_symlink(spec: str) -> tuple[str, str]:
    path, separator, target = spec.partition("=")
    if not separator or not path or not target:
        raise argparse.ArgumentTypeError(f"'{spec}' is not PATH=TARGET")
    return path, target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symlink", type=parse_symlink, action="append", required=True, help="PATH=TARGET")
    parser.add_argument("--output", type=Path, required=True, help="layer to write")
    parser.add_argument("--compression", choices=tarball.COMPRESSIONS, default="gzip")
    args = parser.parse_args(argv)
    layer = tarball.Layer()
    for path, target in args.symlink:
        layer.add_symlink(path, target)
    layer.write(args.output, args.compression)
    return 0


if __name__ == "__main__":
    sys.exit(main())
