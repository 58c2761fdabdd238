"""Byte-compiles an image's Python standard library with the image's own interpreter, as a layer of .pyc files.

The layers are unpacked into a temporary root and the image's python runs chrooted into it, so the
image's own libc and interpreter compile the files, and every code object's co_filename is the path
inside the image (/usr/lib/python3.9/...). The driver run there walks the tree in sorted order and calls
py_compile on each .py file, as `compileall -f --invalidation-mode unchecked-hash -o 0` would, but
reporting each failure by file so test data can be told apart. Optimization level 0 only.

Reproducible: unchecked-hash pycs hold no source mtime, PYTHONHASHSEED=0 fixes the order in which
marshal writes set and frozenset constants (without it about 5% of the files differ between runs), and
one process compiles everything in a fixed order. That last part matters: marshal's back-references
depend on reference counts, so a file's pyc bytes can depend on which files were compiled before it in
the same process. Same layers in, same bytes out; but pruning one file may change the bytes of others.
An image of another architecture than the machine's (--architecture) runs its python under qemu's
static user-mode emulator (see chroot.py), which changes none of that.

The output layer holds only the .pyc files that are new or changed, and their __pycache__ directories.
Each .pyc gets its source's mtime (the .deb's, never earlier than tarball.GENERATED_MTIME), not the
build's one fixed time: tools that pick a .pyc over its source only when the .pyc is at least as new
(zipfile.PyZipFile.writepy) would otherwise try to recompile the stdlib into root-owned __pycache__
directories. The import system ignores the time (the pycs are unchecked-hash), and the bytes do not
depend on it either.

Files that fail to compile make the tool fail, except under test directories (test, tests, *_test,
*_tests, test_*): those hold deliberately broken data files, such as lib2to3/tests/data, and a pyc
is useless there anyway; their failures are listed as a note.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass
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
from tools.tarball import COMPRESSIONS, GENERATED_MTIME, Layer, normalize_path

PYC_MODE = 0o644
PYCACHE_MODE = 0o755
TEST_DIR = re.compile(r"tests?|.*_tests?|tests?_.*")
# -S: no site (it would add dist-packages and run sitecustomize); -B: the driver's own imports write no pycs.
# Not -E or -I: they would make Python ignore PYTHONHASHSEED.
PYTHON_FLAGS = ["-S", "-B"]
PYTHON_ENV = {"PYTHONHASHSEED": "0", "PYTHONUTF8": "1"}

# Runs inside the image, so it must work on every Python the project ships (3.9 and later).
# Like compileall it skips __pycache__, does not descend into symlinked directories, and compiles
# .py symlinks to files; unlike it, it reports every failure by path.
DRIVER = r"""
import json, os, py_compile, sys
top = sys.argv[1]
compiled, failures = 0, []
for dirpath, dirnames, filenames in os.walk(top):
    dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
    for name in sorted(filenames):
        path = os.path.join(dirpath, name)
        if not name.endswith(".py") or not os.path.isfile(path):
            continue
        try:
            py_compile.compile(path, doraise=True, optimize=0,
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
            compiled += 1
        except (py_compile.PyCompileError, OSError) as error:
            failures.append([path, str(error).strip()])
print(json.dumps({"compiled": compiled, "failures": failures}))
"""


class CompilePycError(Exception):
    pass


@dataclass(frozen=True)
class CompileResult:
    compiled: int
    tolerated_failures: list[tuple[str, str]]


def is_test_path(path: str) -> bool:
    """Whether `path` (inside the image) is below a test directory."""
    return any(TEST_DIR.fullmatch(part) for part in path.strip("/").split("/")[:-1])


def snapshot_pycs(stdlib: Path) -> dict[Path, str]:
    """The .pyc files under `stdlib` and a digest of each, to tell new and changed ones afterwards.

    Symlinks are not followed: they could point outside the unpacked root.
    """
    pycs: dict[Path, str] = {}
    for dirpath, _, filenames in os.walk(stdlib):
        if os.path.basename(dirpath) != "__pycache__":
            continue
        for name in filenames:
            path = Path(dirpath, name)
            if name.endswith(".pyc") and path.is_file() and not path.is_symlink():
                pycs[path] = hashlib.sha256(path.read_bytes()).hexdigest()
    return pycs


def run_driver(root: Path, python: str, stdlib: str, emulator: Path | None = None) -> CompileResult:
    result = run_in_root(root, [python, *PYTHON_FLAGS, "-c", DRIVER, stdlib], env=PYTHON_ENV, emulator=emulator)
    lines = result.stdout.strip().splitlines()
    try:
        summary = json.loads(lines[-1])
    except (IndexError, ValueError) as error:
        raise CompilePycError(f"unexpected output from {python}:\n{result.stdout}{result.stderr}") from error
    failures = [(path, message) for path, message in summary["failures"]]
    fatal = [f"{path}: {message}" for path, message in failures if not is_test_path(path)]
    if fatal:
        raise CompilePycError("files outside test directories failed to compile:\n" + "\n".join(fatal))
    return CompileResult(summary["compiled"], [f for f in failures if is_test_path(f[0])])


def source_of(pyc: str) -> str:
    """The source a PEP 3147 pyc is compiled from: a/__pycache__/m.cpython-39.pyc -> a/m.py."""
    directory, name = pyc.rsplit("/", 1)
    return directory.rsplit("/", 1)[0] + "/" + name.split(".", 1)[0] + ".py"


def pyc_mtime(root: Path, pyc: str) -> int:
    """The time the .pyc at image path `pyc` gets: its source's (as unpacked), but not before GENERATED_MTIME."""
    source = resolve_in_root(root, source_of(pyc))
    if not source.is_file():
        return GENERATED_MTIME  # a pyc without source; nothing to be at least as new as
    return max(GENERATED_MTIME, int(source.stat().st_mtime))


def pyc_layer(root: Path, stdlib: str, before: dict[Path, str]) -> Layer:
    """A layer of the .pyc files under `stdlib` that are not in `before` or differ from it."""
    layer = Layer()
    host_stdlib = resolve_in_root(root, stdlib)
    for path, digest in snapshot_pycs(host_stdlib).items():
        if before.get(path) == digest:
            continue
        image_path = stdlib + "/" + path.relative_to(host_stdlib).as_posix()
        layer.add_dir(image_path.rsplit("/", 1)[0], PYCACHE_MODE)
        layer.add_file(image_path, path.read_bytes(), PYC_MODE, mtime=pyc_mtime(root, image_path))
    return layer


def compile_layers(
    layers: list[Path], python: str, stdlib: str, emulator: Path | None = None
) -> tuple[Layer, CompileResult]:
    """Unpacks `layers`, compiles `stdlib` with the image's `python` (under `emulator`, if given),
    returns the layer of new pycs."""
    python, stdlib = normalize_path(python), normalize_path(stdlib)
    with tempfile.TemporaryDirectory(prefix="compile_pyc.") as tmp:
        root = Path(tmp) / "root"
        unpack_layers(layers, root)
        interpreter = find_program(root, (python,))
        if interpreter is None:
            raise CompilePycError(f"no {python} in the image's layers")
        host_stdlib = resolve_in_root(root, stdlib)
        if not host_stdlib.is_dir():
            raise CompilePycError(f"no {stdlib} directory in the image's layers")
        require_root("compile_pyc")
        before = snapshot_pycs(host_stdlib)
        result = run_driver(root, interpreter, "/" + stdlib, emulator)
        layer = pyc_layer(root, stdlib, before)
    return layer, result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, help="interpreter inside the image, e.g. usr/bin/python3.9")
    parser.add_argument("--stdlib", required=True, help="directory to compile inside the image, e.g. usr/lib/python3.9")
    parser.add_argument("--output", type=Path, required=True, help="layer to write, holding only the new .pyc files")
    parser.add_argument("--compression", choices=COMPRESSIONS, default="gzip")
    add_image_args(parser)
    return parser.parse_args(argv)


@cli.tool("compile_pyc", CompilePycError, ChrootError, UnpackError)
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    emulator = select_emulator(args.architecture, args.emulator)
    layer, result = compile_layers(args.layer, args.python, args.stdlib, emulator)
    for path, message in result.tolerated_failures:
        print(f"compile_pyc: note: not compiled (test data): {path}: {message}", file=sys.stderr)
    layer.write(args.output, args.compression)
    pycs = [entry for entry in layer.entries.values() if entry.path.endswith(".pyc")]
    size = sum(len(entry.data) for entry in pycs)
    print(f"compile_pyc: compiled {result.compiled} files; layer holds {len(pycs)} .pyc files, {size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
