"""Puts an application's files into a layer under one directory (/app), with .pyc files the image's own Python compiled.

The files keep their paths relative to the package that declares them; Python files are byte-compiled
by the image's interpreter, chrooted into the image (its layers plus `--layer`s such as the installed
requirements, so that nothing shadows them), exactly as the stdlib is: unchecked-hash, deterministic.
Executable source files stay executable (0755), everything else is 0644.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from tools import cli
from tools.image.chroot import ChrootError
from tools.image.compile_pyc import CompilePycError
from tools.image.unpack import UnpackError
from tools.oci.layout import LayoutError
from tools.python.image_python import ImagePythonError, unpacked_image
from tools.tarball import COMPRESSIONS, Layer, normalize_path


class AppLayerError(Exception):
    pass


def parse_file(text: str) -> tuple[Path, str]:
    """SOURCE=DEST, DEST relative to the app directory."""
    source, separator, dest = text.partition("=")
    if not separator or not source or not dest:
        raise AppLayerError(f"--file {text!r}: expected SOURCE=DEST")
    dest = normalize_path(dest)
    if not dest or dest.startswith("../") or dest == "..":
        raise AppLayerError(f"--file {text!r}: DEST must be a path inside the app directory")
    return Path(source), dest


def files_layer(files: list[tuple[Path, str]], directory: str) -> Layer:
    layer = Layer()
    directory = normalize_path(directory)
    seen: dict[str, Path] = {}
    for source, dest in files:
        target = f"{directory}/{dest}"
        if target in seen:
            raise AppLayerError(f"{source} and {seen[target]} would both be /{target}")
        seen[target] = source
        mode = 0o755 if os.access(source, os.X_OK) and not source.suffix == ".py" else 0o644
        layer.add_file(target, source.read_bytes(), mode)
    layer.add_dir(directory)
    return layer


def app_layer(base: Path, layers: list[Path], files: list[tuple[Path, str]], directory: str, python: str,
              emulator: Path | None) -> Layer:
    layer = files_layer(files, directory)
    with unpacked_image(base, python, layers, emulator) as image:
        with tempfile.TemporaryDirectory(prefix="app_layer.") as tmp:
            app = Path(tmp) / "app.tar"
            layer.write(app, "none")
            image.apply(app)
        layer.merge(image.compile(directory))
    return layer


@cli.tool("app_layer", AppLayerError, ImagePythonError, ChrootError, CompilePycError, UnpackError, LayoutError, OSError)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the image (an OCI layout of one image)")
    parser.add_argument("--layer", type=Path, action="append", default=[], help="layers on top of the base, e.g. the requirements")
    parser.add_argument("--file", action="append", default=[], help="SOURCE=DEST, DEST relative to --directory (repeatable)")
    parser.add_argument("--directory", default="app", help="the app's directory inside the image")
    parser.add_argument("--python", default="usr/bin/python3", help="the interpreter inside the image")
    parser.add_argument("--emulator", type=Path, help="a static qemu user-mode emulator for another architecture")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--compression", choices=COMPRESSIONS, default="gzip")
    args = parser.parse_args(argv)
    files = [parse_file(text) for text in args.file]
    layer = app_layer(args.base, args.layer, files, args.directory, args.python, args.emulator)
    layer.write(args.output, args.compression)
    pycs = sum(1 for entry in layer.entries.values() if entry.path.endswith(".pyc"))
    print(f"app_layer: {len(files)} files under /{normalize_path(args.directory)}, {pycs} .pyc files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
