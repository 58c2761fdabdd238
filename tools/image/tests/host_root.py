"""Test helpers: tiny image roots made of the host's own programs, for running tools that chroot.

A host program is copied to the same path inside the layer together with its ELF interpreter and the
shared libraries it loads, found with the dynamic loader's --list (what ldd does), which lists them
without running the program. Everything is read through symlinks and stored as regular files at the
paths the loader names, so the root works whatever /usr layout the host has.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

from tools.image.chroot import BASE_ENV
from tools.tarball import Layer

PT_INTERP = 3
LIST_LINE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")
SCRIPT_MODE = 0o755


def elf_interpreter(path: Path) -> str | None:
    """The PT_INTERP path of an ELF executable, or None for a static one."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF":
        raise ValueError(f"{path} is not an ELF file")
    is64, endian = data[4] == 2, "<" if data[5] == 1 else ">"
    if is64:
        (phoff,) = struct.unpack_from(endian + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x36)
    else:
        (phoff,) = struct.unpack_from(endian + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x2A)
    for index in range(phnum):
        header = phoff + index * phentsize
        (p_type,) = struct.unpack_from(endian + "I", data, header)
        if p_type != PT_INTERP:
            continue
        if is64:
            (offset,) = struct.unpack_from(endian + "Q", data, header + 8)
            (size,) = struct.unpack_from(endian + "Q", data, header + 32)
        else:
            (offset,) = struct.unpack_from(endian + "I", data, header + 4)
            (size,) = struct.unpack_from(endian + "I", data, header + 16)
        return data[offset : offset + size].rstrip(b"\0").decode()
    return None


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
