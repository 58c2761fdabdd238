"""Writes a hash-pinned requirements lock with pip's own resolver: the full closure, per architecture.

Input: top-level requirements, as pip reads them (`fastapi`, `uvicorn[standard]>=0.30`, `psycopg[binary]==3.3.9`,
`tomli; python_version < "3.11"`). For each architecture, `pip install --dry-run --report` (run by
pip_resolve.py, with the image's marker environment) resolves them for the image's interpreter: CPython X.Y,
linux/ARCH, manylinux up to the image's glibc, wheels only. The lock lists every package of the closure pinned
with the sha256 of its wheel for each architecture, in pip's `--require-hashes` format:

    # Written by tools/python/requirements_lock_writer.py with pip's resolver; do not edit. Update: tools/bazel run //app:requirements.update
    # input: requirements.in sha256=...
    # target: CPython 3.13 linux/amd64 linux/arm64 glibc 2.41
    # wheelhouse: wheelhouse
    # anyio-4.16.0-py3-none-any.whl
    anyio==4.16.0 \\
        --hash=sha256:...

A package whose version or presence differs between architectures gets `; platform_machine == "..."` lines.
`input` is the sha256 of the requirements file: the python_wheels extension refuses a lock whose input has
changed since, with the update command. Errors are collected over all architectures and reported together;
nothing is written then.

Local wheels: pip reads PIP_FIND_LINKS itself; `--find-links DIR` adds a directory, and the lock's wheelhouse
(`--wheelhouse`, beside the lock) is always searched. A requirement with no fitting wheel anywhere but an sdist
is built into a wheel when it is pure Python (sdist_wheel.py); every locked wheel that came from a local
directory is copied into the wheelhouse, so the build finds it without PIP_FIND_LINKS. Commit the wheelhouse.

Run it through its py_requirements_lock target: `tools/bazel run //examples/hello_service:requirements.update`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tools import cli
from tools.atomic_file import write_atomically
from tools.python.requirements_lock_reader import logical_lines
from tools.python.sdist_wheel import SdistError, build_pure_wheel
from tools.python.wheel_tags import MACHINES, Interpreter, normalize_name, parse_glibc

RESOLVE_TIMEOUT = 900
# pip stops at the first requirement it cannot find; each round builds one more sdist and resolves again.
MAX_SDIST_BUILDS = 20
# "ERROR: Could not find a version that satisfies the requirement httptools>=0.8; extra == "standard"
# (from uvicorn[standard]) (from versions: none)"
_NOT_FOUND = re.compile(r"Could not find a version that satisfies the requirement (?P<requirement>.+) \(from versions: (?P<versions>[^)]*)\)\s*$", re.MULTILINE)
_FROM = re.compile(r"\s*\(from [^)]*\)\s*$")
# pip's progress and notes; what is left of a failed run's output is the reason.
_NOISE = ("Collecting ", "  Using cached ", "  Downloading ", "  Obtaining ", "Looking in ", "Processing ",
          "INFO: pip is looking", "WARNING: Location ", "  File was already downloaded", "Would install ")


class LockToolError(Exception):
    pass


@dataclass(frozen=True)
class Locked:
    """One package of one architecture's closure."""
    name: str
    version: str
    filename: str
    sha256: str
    local: Path | None  # the wheel file, when it came from a local directory


def check_requirements(text: str, where: str) -> list[str]:
    """The requirement lines; every line pip's requirement syntax rejects, or that names a URL or an option, at once."""
    from pip._vendor.packaging.requirements import InvalidRequirement, Requirement  # type: ignore[import-not-found]
    problems, lines = [], []
    for line, content in logical_lines(text):
        if content.startswith("-"):
            problems.append(f"{where}:{line}: {content.split()[0]} is not supported here: list requirements only (the "
                            "index is pip's; local wheels come from PIP_FIND_LINKS or py_requirements_lock's find_links)")
            continue
        try:
            requirement = Requirement(content)
        except InvalidRequirement as error:
            problems.append(f"{where}:{line}: {content!r} is not a requirement: {error}")
            continue
        if requirement.url:
            problems.append(f"{where}:{line}: {requirement.name} names a URL; put the wheel in a directory and give it to "
                            "the lock (PIP_FIND_LINKS or find_links), and require it by name")
            continue
        lines.append(content)
    if problems:
        raise LockToolError(f"{len(problems)} problem(s) in {where}:\n  " + "\n  ".join(problems))
    if not lines:
        raise LockToolError(f"{where}: no requirements; list the packages the app imports, e.g. `fastapi`")
    return lines


def marker_environment(python_version: str, architecture: str) -> dict[str, str]:
    """PEP 508's marker variables for the image's CPython on Linux (the patch release is not known: X.Y.0)."""
    full = python_version if python_version.count(".") == 2 else python_version + ".0"
    return {
        "implementation_name": "cpython", "implementation_version": full, "os_name": "posix",
        "platform_machine": MACHINES[architecture], "platform_release": "", "platform_system": "Linux",
        "platform_version": "", "python_full_version": full, "platform_python_implementation": "CPython",
        "python_version": ".".join(python_version.split(".")[:2]), "sys_platform": "linux",
    }


def pip_target_options(python_version: str, architecture: str, glibc: tuple[int, int]) -> list[str]:
    short = "".join(python_version.split(".")[:2])
    # Every manylinux tag up to the image's glibc, spelled out: pip does not widen a manylinux_2_Y --platform.
    platforms = [tag for tag in Interpreter.for_architecture(python_version, architecture, glibc).platforms()
                 if not tag.startswith("linux_")]
    return ["--only-binary=:all:", *(f"--platform={tag}" for tag in platforms),
            "--python-version", python_version, "--implementation", "cp", "--abi", f"cp{short}"]


def reason(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip() and not line.startswith(_NOISE)]
    return "\n    ".join(lines) if lines else "(pip printed no reason)"


def resolve(requirements: Path, python_version: str, architecture: str, glibc: tuple[int, int],
            find_links: list[Path]) -> tuple[int, str, dict]:
    with tempfile.TemporaryDirectory(prefix="lock-report-") as scratch:
        report = Path(scratch) / "report.json"
        links = [argument for directory in find_links for argument in ("--find-links", str(directory))]
        command = [sys.executable, "-m", "tools.python.pip_resolve", json.dumps(marker_environment(python_version, architecture)),
                   "install", "--dry-run", "--ignore-installed", "--disable-pip-version-check", "--no-input",
                   "--progress-bar", "off", "--report", str(report),
                   # Older pips want --target with platform options; --dry-run writes nothing there.
                   "--target", str(Path(scratch) / "target"), *pip_target_options(python_version, architecture, glibc),
                   *links, "--requirement", str(requirements)]
        environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(tools_root()), os.environ.get("PYTHONPATH", "")])))
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=RESOLVE_TIMEOUT, env=environment)
        data = json.loads(report.read_text(encoding="utf-8")) if result.returncode == 0 and report.exists() else {}
        return result.returncode, result.stdout + result.stderr, data


def tools_root() -> Path:
    """The directory holding `tools/` (the runfiles' repository under `bazel run`), for `-m tools.python.pip_resolve`."""
    return Path(__file__).absolute().parent.parent.parent


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def closure(report: dict) -> dict[str, Locked]:
    locked: dict[str, Locked] = {}
    for item in report.get("install", []):
        info, metadata = item["download_info"], item["metadata"]
        url = info["url"]
        filename = urllib.parse.unquote(url.rsplit("/", 1)[-1].split("#", 1)[0])
        local = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path)) if url.startswith("file:") else None
        digest = (info.get("archive_info", {}).get("hashes", {}) or {}).get("sha256", "")
        if local is not None:
            digest = sha256_of(local)
        if not digest:
            raise LockToolError(f"{filename}: the index gave no sha256 for it, so it cannot be locked")
        locked[normalize_name(metadata["name"])] = Locked(metadata["name"], metadata["version"], filename, digest, local)
    return locked


def placeholder_version(requirement: str, versions: str) -> str | None:
    """A version `requirement`'s specifier accepts: one pip listed (`versions`), one it names, or the next release
    after one it names (for `>` and `!=`); None when none of those fits."""
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[import-not-found]
    from pip._vendor.packaging.version import InvalidVersion, Version  # type: ignore[import-not-found]
    specifier = Requirement(requirement).specifier
    candidates = [v.strip() for v in versions.split(",") if v.strip() and v.strip() != "none"]
    for clause in specifier:
        try:
            release = Version(clause.version.rstrip(".*")).release
        except InvalidVersion:
            continue
        candidates.append(".".join(map(str, release)))
        for position in range(len(release) - 1, -1, -1):
            candidates.append(".".join(map(str, (*release[:position], release[position] + 1))))
    candidates.append("0")
    return next((candidate for candidate in candidates if specifier.contains(candidate, prereleases=True)), None)


def write_placeholder(directory: Path, requirement: str, version: str) -> None:
    """An empty wheel standing in for a requirement that has none, so pip resolves the rest and finds every missing one."""
    import zipfile
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[import-not-found]
    name = re.sub(r"[-_.]+", "_", Requirement(requirement).name).lower()
    dist = f"{name}-{version}.dist-info"
    directory.mkdir(parents=True, exist_ok=True)
    files = {f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: lock-placeholder\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
             f"{dist}/RECORD": ""}
    with zipfile.ZipFile(directory / f"{name}-{version}-py3-none-any.whl", "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)


def resolve_architecture(requirements: Path, python_version: str, architecture: str, glibc: tuple[int, int],
                         find_links: list[Path], built: Path) -> dict[str, Locked]:
    """One architecture's closure; pure sdists pip cannot use are built into `built` and pip is asked again.

    pip stops at the first requirement it finds nothing for. One that cannot be built either is noted, an empty
    placeholder wheel stands in for it (in a directory of this architecture's own) and pip is asked again, so
    every missing wheel of the architecture is reported in one error, with the fix once.
    """
    tried: set[str] = set()
    missing: list[str] = []
    fixes: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"lock-placeholders-{architecture}-") as placeholders:
        for _ in range(MAX_SDIST_BUILDS + 1):
            status, output, report = resolve(requirements, python_version, architecture, glibc,
                                             [*find_links, built, Path(placeholders)])
            if status == 0 and not missing:
                found = closure(report)
                print(f"lock: linux/{architecture}: {len(found)} packages ({time.monotonic() - started:.1f} s)", flush=True)
                return found
            if status == 0:
                raise LockToolError(f"linux/{architecture}: {len(missing)} requirement(s) with no wheel for the images' "
                                    "platform:\n    - " + "\n    - ".join(missing) + "".join(f"\n  {fix}" for fix in fixes))
            not_found = _NOT_FOUND.search(output)
            requirement = _FROM.sub("", not_found.group("requirement")).split(";")[0].strip() if not_found else ""
            while requirement and _FROM.search(requirement):
                requirement = _FROM.sub("", requirement)
            if not requirement or requirement in tried:
                also = "".join(f"\n    and no wheel for: {problem.splitlines()[0]}" for problem in missing)
                raise LockToolError(f"linux/{architecture}: pip's resolver found no solution:\n    {reason(output)}{also}")
            tried.add(requirement)
            print(f"lock: linux/{architecture}: no wheel for {requirement}; building its sdist (pure Python only)", flush=True)
            try:
                build_pure_wheel(requirement, python_version, built, [])
            except SdistError as error:
                version = placeholder_version(requirement, not_found.group("versions") if not_found else "")
                missing.append(error.problem.replace("\n", "\n      "))
                if error.fix and error.fix not in fixes:
                    fixes.append(error.fix)
                if version is None:
                    raise LockToolError(f"linux/{architecture}: {len(missing)} requirement(s) with no wheel for the images' "
                                        "platform (and maybe more after them):\n    - " + "\n    - ".join(missing)
                                        + "".join(f"\n  {fix}" for fix in fixes)) from error
                print(f"lock: linux/{architecture}: {requirement} cannot be had (listed at the end); resolving the rest", flush=True)
                write_placeholder(Path(placeholders), requirement, version)
    raise LockToolError(f"linux/{architecture}: more than {MAX_SDIST_BUILDS} sdists to build; give the lock wheels")


def merge(closures: dict[str, dict[str, Locked]]) -> list[tuple[str, str, list[Locked], list[str]]]:
    """(name, version, wheels, architectures or [] for all) per lock entry, sorted by project."""
    architectures = sorted(closures)
    entries = []
    projects = sorted({project for found in closures.values() for project in found})
    for project in projects:
        by_version: dict[str, list[str]] = {}
        for architecture in architectures:
            if project in closures[architecture]:
                by_version.setdefault(closures[architecture][project].version, []).append(architecture)
        for version, archs in sorted(by_version.items()):
            wheels = sorted({closures[a][project] for a in archs}, key=lambda wheel: wheel.filename)
            name = wheels[0].name
            entries.append((name, version, wheels, [] if archs == architectures else archs))
    return entries


def render(entries: list[tuple[str, str, list[Locked], list[str]]], header: list[str], wheelhouse: str) -> str:
    blocks = []
    for name, version, wheels, archs in entries:
        lines = [f"# {wheel.filename}" + (f" (from {wheelhouse}/)" if wheel.local else "") for wheel in wheels]
        marker = " or ".join(f'platform_machine == "{MACHINES[a]}"' for a in archs)
        lines.append(f"{name}=={version}" + (f" ; {marker}" if marker else "") + " \\")
        lines += [f"    --hash=sha256:{digest} \\" for digest in sorted({wheel.sha256 for wheel in wheels})]
        lines[-1] = lines[-1][: -len(" \\")]
        blocks.append("\n".join(lines))
    return "\n".join(header) + "\n" + "\n".join(blocks) + "\n"


def differences(entries: list[tuple[str, str, list[Locked], list[str]]]) -> list[str]:
    return [f"{name}=={version} only on {', '.join('linux/' + a for a in archs)}" for name, version, _, archs in entries if archs]


def lock(requirements: Path, output: Path, python_version: str, architectures: list[str], glibc: tuple[int, int],
         find_links: list[Path], wheelhouse_name: str, update_command: str) -> str:
    text = requirements.read_text(encoding="utf-8")
    check_requirements(text, str(requirements.name))
    wheelhouse = output.parent / wheelhouse_name
    closures: dict[str, dict[str, Locked]] = {}
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="lock-built-") as scratch:
        built = Path(scratch)
        for architecture in architectures:
            print(f"lock: resolving {requirements.name} for CPython {python_version} on linux/{architecture} with pip", flush=True)
            try:
                closures[architecture] = resolve_architecture(requirements, python_version, architecture, glibc,
                                                              [*find_links, wheelhouse], built)
            except LockToolError as error:
                problems.append(str(error))
        if problems:
            raise LockToolError(f"{requirements.name} cannot be locked ({len(problems)} of {len(architectures)} "
                                "architectures failed; the lock is unchanged):\n  " + "\n  ".join(problems))
        entries = merge(closures)
        relative_input = os.path.relpath(requirements, output.parent)
        header = [
            f"# Written by tools/python/requirements_lock_writer.py with pip's resolver; do not edit. Update: {update_command}",
            f"# input: {relative_input} sha256={sha256_of(requirements)}",
            f"# target: CPython {python_version} {' '.join('linux/' + a for a in architectures)} glibc {glibc[0]}.{glibc[1]}",
            f"# wheelhouse: {wheelhouse_name}",
        ]
        rendered = render(entries, header, wheelhouse_name)
        # Local wheels land in the wheelhouse before the lock that names them, so a lock never names a missing wheel.
        for wheels in (entry[2] for entry in entries):
            for wheel in wheels:
                if wheel.local and wheel.local.resolve() != (wheelhouse / wheel.filename).resolve():
                    wheelhouse.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(wheel.local, wheelhouse / wheel.filename)
        write_atomically(output, rendered)
    for note in differences(entries):
        print(f"lock: NOTE: {note} (a marker in the lock says so)", flush=True)
    return rendered


@cli.tool("lock", LockToolError, SdistError, OSError, UnicodeDecodeError, ValueError, subprocess.TimeoutExpired)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requirements", type=Path, required=True, help="top-level requirements, as pip reads them")
    parser.add_argument("--output", type=Path, required=True, help="the lock to write")
    parser.add_argument("--python-version", required=True, help="the images' Python, e.g. 3.13")
    parser.add_argument("--architecture", action="append", required=True, choices=sorted(MACHINES), help="repeatable")
    parser.add_argument("--glibc", default="2.17", help="the images' glibc, e.g. 2.41: the newest manylinux tag allowed")
    parser.add_argument("--find-links", type=Path, action="append", default=[], help="a directory of local wheels (repeatable)")
    parser.add_argument("--wheelhouse", default="wheelhouse", help="beside the lock: where local wheels are kept")
    parser.add_argument("--update-command", default="tools/bazel run <your py_requirements_lock target>")
    args = parser.parse_args(argv)
    # `bazel run` starts in the runfiles; relative paths are the user's, in the workspace.
    workspace = Path(os.environ.get("BUILD_WORKSPACE_DIRECTORY", "."))
    requirements, output = workspace / args.requirements, workspace / args.output
    links = [link if link.is_absolute() else Path.cwd() / link for link in args.find_links]
    started = time.monotonic()
    text = lock(requirements, output, args.python_version, args.architecture, parse_glibc("glibc " + args.glibc), links,
                args.wheelhouse, args.update_command)
    count = sum(1 for line in text.splitlines() if "==" in line and not line.startswith("#"))
    print(f"lock: wrote {args.output}: {count} pinned packages for {', '.join(args.architecture)} "
          f"({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
