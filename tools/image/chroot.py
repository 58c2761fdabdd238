"""Running one of the image's own programs inside its unpacked root.

chroot(2) needs root (CAP_SYS_CHROOT). The build runs as root in its build root, so that is where these
tools work; anywhere else they stop with a clear message instead of failing halfway.

An image of another architecture (arm64 on an amd64 machine, or the reverse) runs under qemu's
user-mode emulator, without the machine's binfmt_misc registration: the emulator, which must be
statically linked since the image has no libraries for the machine's architecture, is copied into the
root at /.emulator/qemu and run as `chroot ROOT /.emulator/qemu PROGRAM ARGS...`. The programs run this
way (ldconfig, python compiling files) start no other programs, so no binfmt handler is needed. The
emulator is removed from the root once the program exits, so it can never reach an output layer.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import platform
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Iterator

from tools.architectures import ARCHITECTURES as ARCHITECTURE_TABLE, BY_MACHINE
from tools.image.unpack import resolve_in_root

# The environment the image's programs see: nothing from the build's own environment leaks in.
BASE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}

# Image architectures (Debian's and OCI's names) -> the kernel's machine name, which is also qemu's suffix.
ARCHITECTURES = {name: architecture.machine for name, architecture in ARCHITECTURE_TABLE.items()}
# platform.machine() values (and the image names themselves) -> image architecture.
MACHINES = {**{machine: a.name for machine, a in BY_MACHINE.items()}, **{name: name for name in ARCHITECTURES}}
# Where the emulator goes inside the unpacked root while a program runs.
EMULATOR_DIR = ".emulator"
EMULATOR_IN_ROOT = "/" + EMULATOR_DIR + "/qemu"
EMULATOR_MODE = 0o755
# Searched after PATH, as Debian installs the emulators there.
EMULATOR_DIRS = ("/usr/local/bin", "/usr/bin")
EMULATOR_PACKAGE = (
    "install Debian's qemu-user package (trixie and later; its emulators are static) or qemu-user-static "
    "(bookworm and earlier)"
)

PT_INTERP = 3
ELF_MAGIC = b"\x7fELF"


class ChrootError(Exception):
    """The program cannot be run in the root, or it failed there."""


class EmulatorError(ChrootError):
    """No usable emulator for the image's architecture."""


def require_root(tool: str) -> None:
    if os.geteuid() != 0:
        raise ChrootError(
            f"{tool} must run as root: it chroots into the image's unpacked layers to run the image's own "
            "programs (the build runs as root inside its build root)"
        )


def find_program(root: Path, candidates: tuple[str, ...]) -> str | None:
    """Returns the first of `candidates` (paths inside the image) that is an executable file there."""
    for candidate in candidates:
        host_path = resolve_in_root(root, candidate)
        if host_path.is_file() and os.access(host_path, os.X_OK):
            return "/" + candidate.lstrip("/")
    return None


# --- Emulation ----------------------------------------------------------------------------------------

def elf_interpreter(data: bytes) -> str | None:
    """The PT_INTERP path of an ELF file's bytes, or None for a statically linked one (static-pie too)."""
    if data[:4] != ELF_MAGIC or len(data) < 0x40:
        raise ValueError("not an ELF file")
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
        return data[offset : offset + size].rstrip(b"\0").decode(errors="replace")
    return None


def check_emulator(emulator: Path) -> None:
    """Raises EmulatorError unless `emulator` is an executable, statically linked ELF file."""
    if not emulator.is_file():
        raise EmulatorError(f"emulator {emulator} does not exist or is not a file; {EMULATOR_PACKAGE}")
    if not os.access(emulator, os.X_OK):
        raise EmulatorError(f"emulator {emulator} is not executable")
    try:
        interpreter = elf_interpreter(emulator.read_bytes())
    except (ValueError, struct.error) as error:
        raise EmulatorError(f"emulator {emulator} is not an ELF executable ({error}); {EMULATOR_PACKAGE}") from error
    if interpreter is not None:
        raise EmulatorError(
            f"emulator {emulator} is dynamically linked (it needs {interpreter}, which the image's root "
            f"does not have for it); it must be a static build: {EMULATOR_PACKAGE}"
        )


def machine_architecture(machine: str | None = None) -> str | None:
    """The image architecture this machine runs natively (from platform.machine()), None if unknown."""
    return MACHINES.get((machine if machine is not None else platform.machine()).lower())


def emulator_names(architecture: str) -> tuple[str, ...]:
    qemu = "qemu-" + ARCHITECTURES[architecture]
    return (qemu, qemu + "-static")


def find_emulator(architecture: str, search_path: str | None = None, machine: str | None = None) -> Path:
    """The first static qemu user-mode emulator for `architecture` on PATH (then /usr/local/bin, /usr/bin)."""
    if search_path is None:
        search_path = os.environ.get("PATH", "")
    directories = [d for d in search_path.split(os.pathsep) if d]
    directories += [d for d in EMULATOR_DIRS if d not in directories]
    names = emulator_names(architecture)
    rejected: list[str] = []
    for name in names:
        for directory in directories:
            candidate = Path(directory, name)
            if not (candidate.is_file() and os.access(candidate, os.X_OK)):
                continue
            try:
                check_emulator(candidate)
            except EmulatorError as error:
                rejected.append(str(error))
                continue
            return candidate
    where = ", ".join(["PATH", *EMULATOR_DIRS])
    found = "; ".join(rejected) if rejected else f"none of {', '.join(names)} is in {where}"
    raise EmulatorError(
        f"the image is {architecture} but this machine is {machine or platform.machine()}, so the image's programs must "
        f"run under qemu's static user-mode emulator for {ARCHITECTURES[architecture]}, and there is none usable "
        f"({found}): {EMULATOR_PACKAGE}, or pass --emulator PATH"
    )


def select_emulator(
    architecture: str | None, emulator: Path | None = None, machine: str | None = None, search_path: str | None = None
) -> Path | None:
    """The emulator to run the image's programs with, or None to run them natively.

    An explicit `emulator` always wins (it is checked to be static). Otherwise an image of the
    machine's own architecture, or of no stated architecture, runs natively, and any other one under
    the qemu found by find_emulator.
    """
    if emulator is not None:
        check_emulator(emulator)
        return emulator
    if architecture is None:
        return None
    if architecture not in ARCHITECTURES:
        raise EmulatorError(f"unknown architecture {architecture!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    if machine_architecture(machine) == architecture:
        return None
    return find_emulator(architecture, search_path, machine)


def add_image_args(parser: argparse.ArgumentParser) -> None:
    """--layer, --architecture and --emulator, for the tools that run the image's programs."""
    parser.add_argument(
        "--layer", type=Path, action="extend", nargs="+", required=True,
        help="the image's layers, bottom first (repeatable)",
    )
    parser.add_argument(
        "--architecture", choices=sorted(ARCHITECTURES),
        help="the image's architecture; when it is not the machine's, the image's programs run under "
        "qemu-<arch> found on PATH (default: the machine's own, no emulator)",
    )
    parser.add_argument(
        "--emulator", type=Path,
        help="a static qemu user-mode emulator to run the image's programs with, e.g. /usr/bin/qemu-aarch64; "
        "overrides the choice --architecture makes",
    )


def command(argv: list[str], emulator: Path | None) -> list[str]:
    """The command run chrooted into the root: `argv` itself, or the emulator copy running it."""
    return list(argv) if emulator is None else [EMULATOR_IN_ROOT, *argv]


@contextlib.contextmanager
def installed_emulator(root: Path, emulator: Path | None) -> Iterator[None]:
    """Copies `emulator` to /.emulator/qemu in `root` for the duration, then removes it again."""
    if emulator is None:
        yield
        return
    directory = root / EMULATOR_DIR
    if os.path.lexists(directory):
        raise EmulatorError(f"the image's layers hold /{EMULATOR_DIR}, where the emulator would be copied")
    try:
        directory.mkdir(mode=EMULATOR_MODE)
        os.chmod(directory, EMULATOR_MODE)
        target = root / EMULATOR_IN_ROOT.lstrip("/")
        shutil.copyfile(emulator, target)
        os.chmod(target, EMULATOR_MODE)
    except OSError as error:
        shutil.rmtree(directory, ignore_errors=True)
        raise EmulatorError(f"cannot copy the emulator {emulator} into {root}: {error}") from error
    try:
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run_in_root(
    root: Path, argv: list[str], env: dict[str, str] | None = None, emulator: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs `argv` (paths as seen inside the image) chrooted into `root`; raises ChrootError on failure.

    With `emulator` (a host path to a static qemu user-mode binary) the program runs under a copy of it.
    """

    def enter_root() -> None:
        os.chroot(root)
        os.chdir("/")

    how = "" if emulator is None else f" under {emulator}"
    with installed_emulator(root, emulator):
        try:
            result = subprocess.run(
                command(argv, emulator),
                env={**BASE_ENV, **(env or {})},
                preexec_fn=enter_root,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                encoding="utf-8",
                errors="replace",
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as error:
            hint = ""
            if isinstance(error, OSError) and error.errno == errno.ENOEXEC:
                hint = " (the program is for another architecture: pass the image's --architecture)"
            raise ChrootError(f"cannot run {argv[0]}{how} chrooted into {root}: {error}{hint}") from error
    if result.returncode != 0:
        output = (result.stderr + result.stdout).strip()
        raise ChrootError(f"{' '.join(argv)} failed in the image{how} (exit {result.returncode}):\n{output}")
    return result
