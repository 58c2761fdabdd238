"""Wheel file names and their compatibility tags, checked against one interpreter (PEP 425, PEP 427, PEP 600).

A wheel is named `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`, where each of the three tags
may be a set joined with "." (e.g. `manylinux_2_17_x86_64.manylinux2014_x86_64`). An interpreter supports an
ordered list of (python, abi, platform) triples, best first, as `packaging.tags` orders them for CPython on
glibc Linux; a wheel is compatible when one of its triples is in that list, and the better its best triple,
the more it is preferred. musllinux and other operating systems are never supported: the images are glibc.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tools.architectures import ARCHITECTURES

# The kernel's machine names (platform.machine()) for the images' architectures (Debian's and OCI's names).
MACHINES = {name: architecture.machine for name, architecture in ARCHITECTURES.items()}
# The oldest glibc a manylinux tag names for each machine (manylinux1 is glibc 2.5; aarch64 began at 2.17).
OLDEST_GLIBC_MINOR = {"x86_64": 5, "aarch64": 17, "riscv64": 31}
# PEP 600's aliases for the older manylinux tags.
LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
# Any glibc a wheel can name; used where the image's own glibc is not known yet (choosing files to download).
ANY_GLIBC = (2, 999)

_NAME = re.compile(r"[-_.]+")


class WheelNameError(ValueError):
    """A file name that is not a wheel's."""


def normalize_name(name: str) -> str:
    """PEP 503's normalized project name: lower case, runs of -, _ and . as one -."""
    return _NAME.sub("-", name).lower()


@dataclass(frozen=True)
class WheelName:
    filename: str
    name: str  # normalized
    version: str
    tags: frozenset[tuple[str, str, str]]

    @classmethod
    def parse(cls, filename: str) -> WheelName:
        if not filename.endswith(".whl"):
            raise WheelNameError(f"{filename} is not a wheel (a wheel's name ends in .whl)")
        parts = filename[: -len(".whl")].split("-")
        if len(parts) not in (5, 6) or not all(parts):
            raise WheelNameError(f"{filename} is not a wheel name: expected NAME-VERSION[-BUILD]-PYTHON-ABI-PLATFORM.whl")
        name, version, python, abi, platform = parts[0], parts[1], parts[-3], parts[-2], parts[-1]
        tags = frozenset(
            (p, a, pl) for p in python.split(".") for a in abi.split(".") for pl in platform.split(".")
        )
        return cls(filename, normalize_name(name), version, tags)


@dataclass(frozen=True)
class Interpreter:
    """What decides which wheels an interpreter can use: the facts the image's own Python reports."""

    implementation: str  # sys.implementation.name, "cpython"
    major: int
    minor: int
    machine: str  # platform.machine(): x86_64, aarch64
    glibc: tuple[int, int]  # os.confstr("CS_GNU_LIBC_VERSION"), e.g. (2, 41)
    free_threaded: bool = False

    @classmethod
    def for_architecture(cls, version: str, architecture: str, glibc: tuple[int, int] = ANY_GLIBC) -> Interpreter:
        """A CPython of `version` ("3.13") on Linux `architecture` (amd64, arm64)."""
        major, minor = (int(part) for part in version.split("."))
        if architecture not in MACHINES:
            raise ValueError(f"unknown architecture {architecture!r}; known: {', '.join(sorted(MACHINES))}")
        return cls("cpython", major, minor, MACHINES[architecture], glibc)

    def describe(self) -> str:
        threading = " (free-threaded)" if self.free_threaded else ""
        return (f"{self.implementation} {self.major}.{self.minor}{threading} on linux {self.machine}, "
                f"glibc {self.glibc[0]}.{self.glibc[1]}")

    def platforms(self) -> list[str]:
        """Platform tags, best (newest glibc) first, then the unportable linux_<machine>."""
        result = []
        oldest = OLDEST_GLIBC_MINOR.get(self.machine, 17)
        major, newest = self.glibc
        if major == 2:
            for minor in range(min(newest, 999), oldest - 1, -1):
                result.append(f"manylinux_2_{minor}_{self.machine}")
                legacy = LEGACY_MANYLINUX.get((2, minor))
                if legacy and not (legacy != "manylinux2014" and self.machine != "x86_64"):
                    result.append(f"{legacy}_{self.machine}")
        result.append(f"linux_{self.machine}")
        return result

    def supported_tags(self) -> list[tuple[str, str, str]]:
        """(python, abi, platform) triples this interpreter accepts, best first (as packaging.tags orders them)."""
        if self.implementation != "cpython" or self.major != 3:
            raise ValueError(f"only CPython 3 is supported, not {self.implementation} {self.major}.{self.minor}")
        cp = f"cp3{self.minor}"
        platforms = self.platforms()
        tags: list[tuple[str, str, str]] = []
        tags += [(cp, cp + ("t" if self.free_threaded else ""), p) for p in platforms]
        if not self.free_threaded:
            for minor in range(self.minor, 1, -1):
                tags += [(f"cp3{minor}", "abi3", p) for p in platforms]
        tags += [(cp, "none", p) for p in platforms]
        pythons = [f"py3{self.minor}", "py3", *(f"py3{minor}" for minor in range(self.minor - 1, -1, -1))]
        for python in pythons:
            tags += [(python, "none", p) for p in platforms]
        tags.append((cp, "none", "any"))
        tags += [(python, "none", "any") for python in pythons]
        return tags

    def preference(self, wheel: WheelName) -> int | None:
        """The rank of the wheel's best triple (lower is better), or None if the wheel does not fit."""
        ranks = self._ranks()
        found = [ranks[tag] for tag in wheel.tags if tag in ranks]
        return min(found) if found else None

    def _ranks(self) -> dict[tuple[str, str, str], int]:
        ranks: dict[tuple[str, str, str], int] = {}
        for rank, tag in enumerate(self.supported_tags()):
            ranks.setdefault(tag, rank)
        return ranks


def parse_glibc(text: str) -> tuple[int, int]:
    """"glibc 2.41" (os.confstr("CS_GNU_LIBC_VERSION")) -> (2, 41)."""
    match = re.fullmatch(r"glibc (\d+)\.(\d+)(\..*)?", text.strip())
    if not match:
        raise ValueError(f"not a glibc version: {text!r} (the images are glibc-based; musl is not supported)")
    return int(match.group(1)), int(match.group(2))
