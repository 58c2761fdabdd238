"""Test helpers: tiny image roots made of the host's own programs, for running tools that chroot.

A host program is copied to the same path inside the layer together with its ELF interpreter and the
shared libraries it loads, found with the dynamic loader's --list (what ldd does), which lists them
without running the program. Everything is read through symlinks and stored as regular files at the
paths the loader names, so the root works whatever /usr layout the host has.

Also: what tests that chroot or emulate need (root, qemu), and tiny synthetic ELF files.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Callable, TypeVar

import pytest

from tools.architectures import BY_MACHINE
from tools.image import chroot
from tools.image.chroot import BASE_ENV
from tools.tarball import Layer

LIST_LINE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")
SCRIPT_MODE = 0o755


def elf_interpreter(path: Path) -> str | None:
    """The PT_INTERP path of an ELF executable, or None for a static one."""
    try:
        return chroot.elf_interpreter(path.read_bytes())
    except ValueError as error:
        raise ValueError(f"{path} is not an ELF file") from error


def shared_objects(path: Path, interpreter: str) -> list[str]:
    """The interpreter and libraries the loader maps for `path` (a program or a shared library)."""
    listing = subprocess.run(
        [interpreter, "--list", str(path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=False
    ).stdout
    return sorted({match.group(1) for match in LIST_LINE.finditer(listing)} | {interpreter})


def add_host_file(layer: Layer, host_path: str, mode: int | None = None) -> None:
    """Copies a host file (through symlinks) to the same path in `layer`."""
    real = Path(host_path).resolve()
    layer.add_file(host_path, real.read_bytes(), mode if mode is not None else real.stat().st_mode & 0o777)


def add_host_program(layer: Layer, host_path: str, loader: str | None = None) -> None:
    """Copies a host program or shared library, and everything it loads, to the same paths in `layer`.

    `loader` is the ELF interpreter to list a shared library's dependencies with (libraries have none).
    """
    add_host_file(layer, host_path)
    interpreter = elf_interpreter(Path(host_path).resolve()) or loader
    if interpreter is None:
        return  # statically linked
    for shared in shared_objects(Path(host_path), interpreter):
        add_host_file(layer, shared)


def host_shell() -> str:
    shell = shutil.which("sh") or "/bin/sh"
    return str(Path(shell).resolve())


def shell_layer() -> tuple[Layer, str]:
    """A layer with the host's sh (and what it loads) at bin/sh; returns it and the sh's loader."""
    layer = Layer()
    shell = host_shell()
    layer.add_file("bin/sh", Path(shell).read_bytes(), SCRIPT_MODE)
    loader = elf_interpreter(Path(shell))
    if loader is not None:
        for shared in shared_objects(Path(shell), loader):
            add_host_file(layer, shared)
    return layer, loader or ""


def host_python() -> Path:
    """The host's Python interpreter binary (not a wrapper script)."""
    for candidate in (sys.executable, shutil.which("python3")):
        if candidate and Path(candidate).resolve().read_bytes()[:4] == b"\x7fELF":
            return Path(candidate).resolve()
    raise RuntimeError("no ELF Python interpreter on the host")


# Imports what compile_pyc's driver imports (and compiles a broken file, for the lazy imports of its
# error path), then prints every module file and the stdlib directory the interpreter needs.
MODULE_PROBE = r"""
import os, sys, tempfile
with tempfile.TemporaryDirectory() as tmp:
    open(os.path.join(tmp, "bad.py"), "w").write("def (:\n")
    sys.argv[1:] = [tmp]
    exec(DRIVER)
files = {getattr(m, "__file__", None) for m in list(sys.modules.values())}
print("\n".join(sorted(f for f in files if f)))
print("STDLIB " + os.path.dirname(os.__file__))
"""


def python_layer(driver: str, env: dict[str, str]) -> tuple[Layer, str]:
    """A layer with the host's Python and just the modules `driver` needs, run with `env` added to the
    environment chroot.run_in_root gives; returns the layer and the python's path."""
    python = host_python()
    probe = subprocess.run(
        [str(python), "-S", "-B", "-c", f"DRIVER = {driver!r}\n{MODULE_PROBE}"],
        stdout=subprocess.PIPE, text=True, check=True, env={**BASE_ENV, **env},
    ).stdout.splitlines()
    stdlib = probe[-1].removeprefix("STDLIB ")
    layer = Layer()
    add_host_program(layer, str(python))
    loader = elf_interpreter(python)
    for module in [*probe[:-1], os.path.join(stdlib, "os.py")]:  # os.py is how Python finds its prefix
        if module.endswith(".py"):
            add_host_file(layer, module, 0o644)
        elif module.endswith(".so"):
            add_host_program(layer, module, loader)
    dynload = os.path.join(stdlib, "lib-dynload")
    if os.path.isdir(dynload):
        layer.add_dir(dynload)
    return layer, str(python)


# --- What the chroot and emulation tests need -----------------------------------------------------------

# Bazel sets TEST_SRCDIR; its tests run as root in the build root, which has qemu-user installed.
UNDER_BAZEL = "TEST_SRCDIR" in os.environ
Test = TypeVar("Test", bound=Callable[..., object])


def require(available: bool, message: str) -> None:
    """Fails the test under Bazel, where the build root always provides what it needs; skips it elsewhere."""
    if available:
        return
    if UNDER_BAZEL:
        pytest.fail(f"{message}; under Bazel the build root provides it, so this is a broken build root", pytrace=False)
    pytest.skip(message)


def require_root() -> None:
    require(os.geteuid() == 0, "chroot needs root (the build runs its tests as root inside its build root)")


def needs_root(test: Test) -> Test:
    """Marks a test that chroots: it fails under Bazel when not root, and skips elsewhere."""

    @functools.wraps(test)
    def wrapper(*args: object, **kwargs: object) -> object:
        require_root()
        return test(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def machine_emulator() -> Path:
    """The static qemu user-mode emulator for the machine's own architecture, to run the host's own
    programs under emulation (qemu-x86_64 on amd64); fails under Bazel when there is none."""
    machine = platform.machine()
    for name in (f"qemu-{machine}", f"qemu-{machine}-static"):
        for directory in [*os.environ.get("PATH", "").split(os.pathsep), *chroot.EMULATOR_DIRS]:
            candidate = Path(directory or ".", name)
            if candidate.is_file() and os.access(candidate, os.X_OK) and elf_interpreter(candidate) is None:
                return candidate
    require(False, f"no static qemu-{machine} (Debian's qemu-user package) on PATH or in /usr/bin")
    raise AssertionError("unreachable")


PT_LOAD = 1
PT_INTERP = 3


def fake_elf(machine: str = "x86_64", interpreter: str | None = None) -> bytes:
    """A minimal 64-bit little-endian ELF executable header for `machine`, with a PT_INTERP naming
    `interpreter` when given (a dynamically linked program) and none otherwise (a static one)."""
    phnum = 2 if interpreter else 1
    interp_offset = 64 + 56 * phnum
    interp = (interpreter.encode() + b"\0") if interpreter else b""
    header = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header += struct.pack("<HHIQQQIHHHHHH", 2, BY_MACHINE[machine].elf_machine, 1, 0x401000, 64, 0, 0, 64, 56, phnum, 64, 0, 0)
    size = interp_offset + len(interp)
    program_headers = struct.pack("<IIQQQQQQ", PT_LOAD, 5, 0, 0x400000, 0x400000, size, size, 0x1000)
    if interpreter:
        program_headers += struct.pack(
            "<IIQQQQQQ", PT_INTERP, 4, interp_offset, 0x400000 + interp_offset, 0x400000 + interp_offset,
            len(interp), len(interp), 1,
        )
    return header + program_headers + interp
