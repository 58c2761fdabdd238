"""The one table of CPU architectures the images are built for, and the names each is known by.

Debian and OCI call them amd64, arm64, riscv64; the kernel's `uname -m` (and qemu's emulator suffix, and
Python's platform.machine()) calls them x86_64, aarch64, riscv64; ELF headers carry a machine number. Every
tool that maps one name to another reads this table.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass


@dataclass(frozen=True)
class Architecture:
    name: str  # Debian's and OCI's name: amd64
    machine: str  # the kernel's name, qemu's suffix (qemu-aarch64) and platform.machine(): x86_64
    elf_machine: int  # e_machine in an ELF header
    variant: str = ""  # the OCI platform variant

    def emulator(self) -> str:
        """The name of qemu's user-mode emulator for this architecture."""
        return f"qemu-{self.machine}"

    def binfmt_magic(self) -> tuple[bytes, bytes]:
        """The magic and mask that identify a little-endian 64-bit ELF executable or shared object for it.

        As qemu's binfmt configuration has them: the OS/ABI byte is ignored, and the mask on e_type accepts
        both ET_EXEC (2) and ET_DYN (3).
        """
        magic = b"\x7fELF\x02\x01\x01" + bytes(9) + b"\x02\x00" + self.elf_machine.to_bytes(2, "little")
        mask = b"\xff" * 7 + b"\x00" + b"\xff" * 8 + b"\xfe\xff" + b"\xff\xff"
        return magic, mask


ARCHITECTURES: dict[str, Architecture] = {
    architecture.name: architecture for architecture in (
        Architecture("amd64", "x86_64", 62),
        Architecture("arm64", "aarch64", 183, variant="v8"),
        Architecture("riscv64", "riscv64", 243),
    )
}
BY_MACHINE: dict[str, Architecture] = {architecture.machine: architecture for architecture in ARCHITECTURES.values()}


def host_architecture(machine: str | None = None) -> Architecture | None:
    """The machine's architecture (or `machine`'s, a platform.machine() or Debian name), if the table has it."""
    name = (machine if machine is not None else platform.machine()).lower()
    return BY_MACHINE.get(name) or ARCHITECTURES.get(name)
