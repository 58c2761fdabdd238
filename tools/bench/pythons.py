"""Which Python the benchmark measures, and the facts about it, from python/config.bzl's PYTHONS.

The bench runs on the host, outside Bazel, so it reads PYTHONS as JSON that Bazel wrote
(//tools/bench:pythons_json) rather than parsing Starlark: that is what Bazel evaluated, however config.bzl
computes its entries. It measures the oldest version that is not experimental and has an image for this
machine's architecture (the peer is Debian's own package of that version, in the same release).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tools.bench.console import BenchError


@dataclass(frozen=True)
class MeasuredPython:
    version: str  # 3.9
    arch: str  # Debian's name: amd64
    distribution: str  # the Debian release its lock comes from, and the peer's suite: bullseye
    python: str  # the executable, and Debian's package of it: python3.9

    @property
    def image(self) -> str:
        """The per-architecture image's name in //python, and its bazel-bin directory: 3.9_amd64."""
        return f"{self.version}_{self.arch}"

    @property
    def image_target(self) -> str:
        return "//python:" + self.image

    @property
    def interpreter(self) -> str:
        # By its versioned name: the peer has no python3 (that is Debian's python3 package).
        return "/usr/bin/" + self.python

    @property
    def version_package(self) -> str:
        """The interpreter's own package, in both roots."""
        return self.python + "-minimal"

    @property
    def manifest_file(self) -> str:
        return f"debian_packages/{self.distribution}/manifest.yaml"

    @property
    def lock_file(self) -> str:
        return f"debian_packages/{self.distribution}/lock.json"


def parse_pythons(text: str, what: str) -> dict[str, dict[str, Any]]:
    """PYTHONS as //tools/bench:pythons_json serialises it: version -> distribution, python, archs, experimental."""
    try:
        pythons = json.loads(text)
    except json.JSONDecodeError as error:
        raise BenchError(f"{what} is not valid JSON ({error}); rebuild //tools/bench:pythons_json") from None
    fields = {"distribution": str, "python": str, "archs": list, "experimental": bool}
    if not isinstance(pythons, dict) or not pythons:
        raise BenchError(f"{what} holds no Python versions; python/config.bzl's PYTHONS needs at least one entry")
    for version, entry in pythons.items():
        if not isinstance(entry, dict) or any(not isinstance(entry.get(k), t) for k, t in fields.items()):
            raise BenchError(f"{what}: entry {version!r} lacks one of {', '.join(fields)}; "
                             "//tools/bench:pythons_json and python/config.bzl disagree on PYTHONS' fields")
    return pythons


def version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        raise BenchError(f"PYTHONS has version {version!r}; expected MAJOR.MINOR, e.g. 3.9") from None


def measured_python(pythons: dict[str, dict[str, Any]], arch: str) -> MeasuredPython:
    """The oldest version that is not experimental and is built for `arch`."""
    candidates = sorted((version for version, entry in pythons.items()
                         if not entry["experimental"] and arch in entry["archs"]), key=version_key)
    if not candidates:
        raise BenchError(f"python/config.bzl's PYTHONS has no version that is not experimental and has {arch} among "
                         "its archs; the bench runs the image's interpreter natively, so it needs one")
    version = candidates[0]
    return MeasuredPython(version, arch, pythons[version]["distribution"], pythons[version]["python"])


def update_cost_images(pythons: dict[str, dict[str, Any]], arch: str) -> list[str]:
    """The images whose update costs are measured: the measured one and the newest stable version's, on `arch`."""
    stable = sorted((version for version, entry in pythons.items()
                     if not entry["experimental"] and arch in entry["archs"]), key=version_key)
    if not stable:
        raise BenchError(f"python/config.bzl's PYTHONS has no stable version with {arch} among its archs")
    return list(dict.fromkeys(f"{version}_{arch}" for version in (stable[0], stable[-1])))
