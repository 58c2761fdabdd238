"""Re-locks buildgrid_requirements.txt: BuildGrid and its whole dependency closure, each with the sha256 of the
wheel pip picks for the build root's Python on amd64 and on arm64 (pip --require-hashes accepts any listed).

    tools/bazel run //tools/remote:lock_buildgrid [-- --version 0.9.1]

It asks pip for a resolution report (`pip install --dry-run --report`, no installation) per platform, so the
resolver is pip's own; this script only writes down its answer.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

from tools.architectures import ARCHITECTURES
from tools.atomic_file import write_atomically

PLATFORMS = {name: ARCHITECTURES[name].machine for name in ("amd64", "arm64")}
# The newest glibc a wheel may need: trixie's (2.41); the build root (forky) has at least that.
GLIBC_MINOR = 41
DEFAULT_VERSION = "0.9.1"


def platform_tags(machine: str, glibc_minor: int = GLIBC_MINOR) -> list[str]:
    """pip's --platform takes exact tags: every manylinux tag a root with that glibc accepts, newest first."""
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(glibc_minor, 4, -1)]
    return tags + [f"manylinux2014_{machine}"] + ([f"manylinux1_{machine}"] if machine == "x86_64" else [])


def report_command(python: str, requirement: str, machine: str, python_version: str, report: Path,
                   target: Path) -> list[str]:
    return [python, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed", "--only-binary=:all:",
            *(f"--platform={tag}" for tag in platform_tags(machine)), f"--python-version={python_version}",
            f"--target={target}",
            f"--report={report}", requirement]


def pins_from_report(report: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """(normalized name, version) -> sha256 hashes of the files the report chose (pip's installation report)."""
    pins: dict[tuple[str, str], set[str]] = {}
    for item in report["install"]:
        metadata = item["metadata"]
        name = metadata["name"].lower().replace("_", "-").replace(".", "-")
        digest = item["download_info"]["archive_info"]["hashes"]["sha256"]
        pins.setdefault((name, metadata["version"]), set()).add(digest)
    return pins


def merge(reports: Sequence[dict[tuple[str, str], set[str]]]) -> dict[tuple[str, str], set[str]]:
    merged: dict[tuple[str, str], set[str]] = {}
    for pins in reports:
        for key, digests in pins.items():
            merged.setdefault(key, set()).update(digests)
    versions: dict[str, set[str]] = {}
    for name, version in merged:
        versions.setdefault(name, set()).add(version)
    split = sorted(name for name, found in versions.items() if len(found) > 1)
    if split:
        raise SystemExit(f"error: the platforms resolved different versions of {', '.join(split)}; pin them "
                         "(e.g. NAME==VERSION as extra requirements) so one lock fits both.")
    return merged


def render(requirement: str, python_version: str, pins: dict[tuple[str, str], set[str]]) -> str:
    lines = [f"# {requirement} for Python {python_version} on {', '.join(PLATFORMS)}, with every dependency; "
             "written by tools/remote/lock_buildgrid.py.",
             "# tools/remote/cluster installs it with pip --require-hashes --no-deps into a venv in the cache."]
    for (name, version), digests in sorted(pins.items()):
        hashes = " ".join(f"\\\n    --hash=sha256:{digest}" for digest in sorted(digests))
        lines.append(f"{name}=={version} {hashes}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", default=DEFAULT_VERSION)
    parser.add_argument("--output", type=Path,
                        default=Path(os.environ.get("BUILD_WORKSPACE_DIRECTORY", ".")) / "tools/remote/buildgrid_requirements.txt")
    args = parser.parse_args(argv)
    python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    requirement = f"buildgrid=={args.version}"
    reports = []
    with tempfile.TemporaryDirectory() as scratch:
        for arch, machine in PLATFORMS.items():
            report = Path(scratch) / f"{arch}.json"
            subprocess.run(report_command(sys.executable, requirement, machine, python_version, report,
                                          Path(scratch) / "target"), check=True)
            reports.append(pins_from_report(json.loads(report.read_text())))
    text = render(requirement, python_version, merge(reports))
    write_atomically(args.output, text)
    print(f"wrote {args.output} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
