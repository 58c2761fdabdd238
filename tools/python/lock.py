"""Writes a hash-pinned requirements lock: for each pinned requirement, the sha256 of its best wheel per platform.

Input: a requirements file of exact pins, one `NAME==VERSION` a line (every package the app imports,
dependencies included, as `pip freeze` lists them). For each, the tool reads the project's page on the
configured index (see index_url.py), picks for every architecture the wheel an interpreter of the
given version on that architecture with the given glibc prefers (wheel_tags.py's order), and writes

    # orjson-3.11.3-cp313-cp313-manylinux_2_17_aarch64.manylinux2014_aarch64.whl
    # orjson-3.11.3-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
    orjson==3.11.3 \\
        --hash=sha256:... \\
        --hash=sha256:...

which pip (`pip install --require-hashes -r`) and the module extension (tools/python/extensions.bzl) both
read. A requirement without a fitting wheel for some platform is an error that names it: the images
have no compiler, so a package must publish wheels (or you must build them and serve them from your index).
Yanked files are not picked. Same index contents in, same lock out.

Run it through its py_requirements_lock target: `tools/bazel run //examples/hello_service:requirements.update`.
"""

from __future__ import annotations

import argparse
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tools import cli
from tools.python.index_url import IndexUrlError, configured_index_url, pip_config_listing
from tools.python.requirements_lock import logical_lines
from tools.python.simple_index import JSON_MEDIA_TYPE, IndexError_, IndexFile, parse_page, project_url
from tools.python.wheel_tags import Interpreter, WheelName, WheelNameError, normalize_name, parse_glibc

_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*(?P<version>[^\s;*]+)$")
ACCEPT = f"{JSON_MEDIA_TYPE}, text/html;q=0.1"
TIMEOUT = 60

Fetch = Callable[[str], bytes]


class LockToolError(Exception):
    pass


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    line: int


def read_pins(text: str, where: str) -> list[Pin]:
    pins: list[Pin] = []
    seen: set[str] = set()
    for line, content in logical_lines(text):
        match = _PIN.match(content)
        if not match:
            raise LockToolError(
                f"{where}:{line}: {content!r}: pin one exact version, NAME==VERSION (markers, ranges and options "
                "are not supported: the lock is for one interpreter, the image's)"
            )
        project = normalize_name(match.group("name"))
        if project in seen:
            raise LockToolError(f"{where}:{line}: {match.group('name')} is listed twice")
        seen.add(project)
        pins.append(Pin(match.group("name"), match.group("version"), line))
    if not pins:
        raise LockToolError(f"{where}: no requirements")
    return pins


def same_version(a: str, b: str) -> bool:
    """Wheel file names may spell the version normalized (PEP 440 local/zero forms aside): compare loosely."""
    def norm(version: str) -> str:
        return version.lower().replace("-", "_").replace(".", "_")
    return norm(a) == norm(b)


def best_wheel(files: list[IndexFile], pin: Pin, interpreter: Interpreter, architecture: str) -> IndexFile:
    candidates: list[tuple[int, str, IndexFile]] = []
    versions_seen = False
    for file in files:
        try:
            wheel = WheelName.parse(file.filename)
        except WheelNameError:
            continue
        if not same_version(wheel.version, pin.version):
            continue
        versions_seen = True
        rank = interpreter.preference(wheel)
        if rank is not None and not file.yanked and file.sha256:
            candidates.append((rank, file.filename, file))
    if not candidates:
        what = "has wheels, none for" if versions_seen else "publishes no wheel at all for"
        raise LockToolError(
            f"{pin.name}=={pin.version} {what} {interpreter.describe()} (linux/{architecture}); the images have no "
            "compiler to build the source distribution: pick a version that publishes such a wheel, or build one "
            "and serve it from your index"
        )
    return min(candidates)[2]


def lock(pins: list[Pin], fetch: Fetch, index_url: str, python_version: str, architectures: list[str],
         glibc: tuple[int, int]) -> str:
    interpreters = {arch: Interpreter.for_architecture(python_version, arch, glibc) for arch in architectures}
    blocks = []
    for pin in sorted(pins, key=lambda pin: normalize_name(pin.name)):
        url = project_url(index_url, normalize_name(pin.name))
        try:
            files = parse_page(fetch(url), url)
        except IndexError_ as error:
            raise LockToolError(str(error)) from error
        chosen = {best_wheel(files, pin, interpreters[arch], arch) for arch in architectures}
        ordered = sorted(chosen, key=lambda file: file.filename)
        lines = [f"# {file.filename}" for file in ordered]
        lines.append(f"{pin.name}=={pin.version} \\")
        lines += [f"    --hash=sha256:{file.sha256} \\" for file in ordered]
        lines[-1] = lines[-1][: -len(" \\")]
        blocks.append("\n".join(lines))
    header = (
        f"# Written by tools/python/lock.py for CPython {python_version} on linux/{', linux/'.join(architectures)} "
        f"(glibc {glibc[0]}.{glibc[1]}); do not edit.\n"
        "# One --hash per wheel: the best wheel of each requirement for each platform.\n"
    )
    return header + "\n".join(blocks) + "\n"


def fetch_url(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": ACCEPT})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as error:
        if error.code == 404:
            raise LockToolError(f"{url}: the index has no such project (HTTP 404); check the name") from error
        raise LockToolError(f"{url}: HTTP {error.code}") from error
    except (urllib.error.URLError, OSError) as error:
        raise LockToolError(f"{url}: {error}") from error


@cli.tool("lock", LockToolError, IndexUrlError, OSError, ValueError)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requirements", type=Path, required=True, help="NAME==VERSION lines")
    parser.add_argument("--output", type=Path, required=True, help="the lock to write")
    parser.add_argument("--python-version", required=True, help="the images' Python, e.g. 3.13")
    parser.add_argument("--architecture", action="append", required=True, help="amd64, arm64 (repeatable)")
    parser.add_argument("--glibc", default="2.17", help="the images' glibc, e.g. 2.41: the newest manylinux tag allowed")
    args = parser.parse_args(argv)
    # `bazel run` starts in the runfiles; relative paths are the user's, in the workspace.
    workspace = Path(os.environ.get("BUILD_WORKSPACE_DIRECTORY", "."))
    requirements, output = workspace / args.requirements, workspace / args.output
    pins = read_pins(requirements.read_text(encoding="utf-8"), str(args.requirements))
    index = configured_index_url(dict(os.environ), pip_config_listing())
    text = lock(pins, fetch_url, index, args.python_version, args.architecture, parse_glibc("glibc " + args.glibc))
    output.write_text(text, encoding="utf-8")
    print(f"lock: wrote {args.output}: {len(pins)} requirements for {', '.join(args.architecture)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
