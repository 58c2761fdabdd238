"""Builds a pure-Python source distribution into a wheel at lock time, the same bytes every time.

Some pure-Python projects publish only an sdist (e.g. docopt 0.6.2). The lock (requirements_lock_writer.py) downloads the sdist
that satisfies the requirement with pip, builds it with `pip wheel` (pip's PEP 517 front end, in pip's build
isolation) with no C or C++ compiler available (CC and CXX name `false`), and accepts the result only when it
is `none-any` (pure Python): a wheel with native code built on the build machine would be for its Python
and libraries, not the image's. The wheel is then rewritten deterministically: members in name order with
the .dist-info last (RECORD at the very end), every timestamp 1980-01-01, modes 0644 or 0755. RECORD holds
the members' own hashes, so it stays valid.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from tools.atomic_file import atomic_writer
from tools.python.wheel_tags import WheelName, WheelNameError

EPOCH = (1980, 1, 1, 0, 0, 0)
BUILD_TIMEOUT = 600
# Enough of a failed build's output to show why (the compiler it wanted, the backend that failed).
TAIL_LINES = 12


class SdistError(Exception):
    """The sdist cannot be had or built into a pure wheel; the message says why and what to do.

    `problem` is the message without the fix, `fix` the fix alone (the lock lists several problems, then the fix once).
    """

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(f"{problem}\n  {fix}" if fix else problem)
        self.problem = problem
        self.fix = fix


def normalized_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    def order(info: zipfile.ZipInfo) -> tuple[int, str]:
        top = info.filename.split("/", 1)[0]
        if top.endswith(".dist-info"):
            return (2 if info.filename.endswith("/RECORD") else 1, info.filename)
        return (0, info.filename)
    return sorted((info for info in archive.infolist() if not info.is_dir()), key=order)


def rewrite_deterministically(source: Path, target: Path) -> None:
    with zipfile.ZipFile(source) as archive, atomic_writer(target) as handle:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as out:
            for info in normalized_members(archive):
                executable = (info.external_attr >> 16) & 0o111
                member = zipfile.ZipInfo(info.filename, date_time=EPOCH)
                member.external_attr = (0o100755 if executable else 0o100644) << 16
                member.compress_type = zipfile.ZIP_DEFLATED
                out.writestr(member, archive.read(info), compresslevel=9)


def _tail(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n    ".join(lines[-TAIL_LINES:])


def build_pure_wheel(requirement: str, python_version: str, output_dir: Path, pip_options: list[str]) -> Path:
    """The deterministic pure wheel of the sdist pip picks for `requirement` (e.g. 'docopt==0.6.2'), in output_dir."""
    fix = (
        "pick a version of it that publishes wheels for the images' platforms, or build those wheels elsewhere "
        "and give them to the lock (PIP_FIND_LINKS=DIR, or py_requirements_lock's find_links)"
    )
    # No compiler: a build that wants one fails (pip download already builds metadata, which may compile).
    environment = dict(os.environ, CC="false", CXX="false", SOURCE_DATE_EPOCH="315532800", PYTHONHASHSEED="0")
    needs_compiler = (
        "publishes no wheel for the images' platform, only a source distribution, and building it failed without "
        "a compiler (the lock builds only pure-Python sdists: native code built here would be for this machine's "
        "Python, not the image's)"
    )
    with tempfile.TemporaryDirectory(prefix="sdist-") as scratch:
        sdists, built = Path(scratch) / "sdist", Path(scratch) / "wheel"
        download = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:all:", "--python-version", python_version,
             "--disable-pip-version-check", "--no-input", "--progress-bar", "off", "--dest", str(sdists),
             *pip_options, requirement],
            capture_output=True, text=True, check=False, timeout=BUILD_TIMEOUT, env=environment,
        )
        found = sorted(sdists.glob("*")) if sdists.is_dir() else []
        output = download.stderr + download.stdout
        if download.returncode != 0 and "metadata-generation-failed" in output:
            raise SdistError(f"{requirement}: {needs_compiler}:\n    {_tail(output)}", fix)
        if download.returncode != 0 or not found:
            raise SdistError(
                f"{requirement}: no version of it fits, neither as a wheel for the images' platform nor as a source "
                "distribution:\n    "
                f"{_tail(output)}", fix
            )
        build = subprocess.run(
            # --no-cache-dir: built fresh, never an earlier build from pip's wheel cache.
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "--disable-pip-version-check", "--no-input",
             "--progress-bar", "off", "--wheel-dir", str(built), *pip_options, str(found[0])],
            capture_output=True, text=True, check=False, timeout=BUILD_TIMEOUT, env=environment,
        )
        wheels = sorted(built.glob("*.whl")) if built.is_dir() else []
        if build.returncode != 0 or not wheels:
            raise SdistError(f"{requirement}: {needs_compiler} ({found[0].name}):\n    {_tail(build.stderr + build.stdout)}", fix)
        try:
            wheel = WheelName.parse(wheels[0].name)
        except WheelNameError as error:
            raise SdistError(f"{requirement}: building {found[0].name} gave {wheels[0].name}: {error}") from error
        if not all(abi == "none" and platform == "any" for _, abi, platform in wheel.tags):
            raise SdistError(
                f"{requirement}: building {found[0].name} gave {wheels[0].name}, which holds native code for this "
                "machine, not the image: the sdist needs a compiler for the image's platform", fix
            )
        output_dir.mkdir(parents=True, exist_ok=True)
        target = output_dir / wheels[0].name
        rewrite_deterministically(wheels[0], target)
        return target
