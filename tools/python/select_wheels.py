"""Picks, for one locked requirement and one image platform, the wheels to download from the index's page.

The module extension's wheel repository (tools/python/private/wheels.bzl) downloads the project's index
page, runs this, and downloads what it prints ([{filename, url, sha256}] as JSON) with Bazel's downloader
against the sha256. The lock's wheelhouse wheels (--local-wheels) come first, so a wheel the lock built or
was given is taken from there (without the index page when every locked hash is local). A file is picked when its sha256 is one of the lock's hashes for the requirement and
its tags fit CPython X.Y on Linux for the architecture (any glibc: the installer checks the image's own
glibc and picks the best of them). Errors name the requirement, the platform and the fix:
- no listed file has any of the locked hashes (a wrong hash, or a lock for another version);
- locked files exist, but no wheel among them fits the platform (only an sdist, which would need a
  compiler the images do not have; or wheels for other Pythons or architectures).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tools import cli
from tools.python.requirements_lock_reader import Requirement
from tools.python.simple_index import IndexError_, IndexFile, parse_page
from tools.python.wheel_tags import Interpreter, WheelName, WheelNameError

RELOCK = "re-run the lock tool (tools/python:defs.bzl's py_requirements_lock target, with `tools/bazel run`)"


class SelectError(Exception):
    pass


def select(files: list[IndexFile], requirement: Requirement, interpreter: Interpreter, architecture: str) -> list[IndexFile]:
    spec = f"{requirement.name}=={requirement.version}"
    platform = f"CPython {interpreter.major}.{interpreter.minor} on linux/{architecture}"
    locked: list[IndexFile] = []
    for file in files:
        # The first file with a hash wins: the wheelhouse's copy, when it also is on the index.
        if file.sha256 and file.sha256 in requirement.hashes and file.sha256 not in [f.sha256 for f in locked]:
            locked.append(file)
    if not locked:
        raise SelectError(
            f"{spec}: none of its {len(requirement.hashes)} locked sha256 hashes is the hash of a file the index lists "
            f"for {requirement.project} (it lists {len(files)} files): a hash in the lock is wrong or belongs to another "
            f"version; {RELOCK}"
        )
    chosen: list[IndexFile] = []
    for file in locked:
        try:
            wheel = WheelName.parse(file.filename)
        except WheelNameError:
            continue
        if interpreter.preference(wheel) is not None:
            chosen.append(file)
    if not chosen:
        names = ", ".join(sorted(file.filename for file in locked))
        if all(not file.filename.endswith(".whl") for file in locked):
            reason = (
                "only a source distribution is locked; building it needs a compiler and headers, which the images "
                "do not have (and the build does not run one)"
            )
        else:
            reason = "no locked wheel is built for this Python and architecture"
        raise SelectError(
            f"{spec}: no wheel for {platform} among the locked files ({names}): {reason}. Lock a wheel for "
            f"cp{interpreter.major}{interpreter.minor} manylinux {interpreter.machine} ({RELOCK}), or, if the project "
            "publishes none, build one and serve it from your index"
        )
    return sorted(chosen, key=lambda file: file.filename)


@cli.tool("select_wheels", SelectError, IndexError_, ValueError)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index-page", type=Path, help="the downloaded project page (none when every locked file is local)")
    parser.add_argument("--local-wheels", default="[]", help="JSON [{filename, path, sha256}]: the lock's wheelhouse")
    parser.add_argument("--page-url", required=True, help="the URL it was downloaded from")
    parser.add_argument("--requirement", required=True, help="the requirement, as JSON (requirements_lock's output)")
    parser.add_argument("--python-version", required=True, help="the image's Python, e.g. 3.13")
    parser.add_argument("--architecture", required=True, help="the image's architecture: amd64 or arm64")
    args = parser.parse_args(argv)
    data = json.loads(args.requirement)
    requirement = Requirement(data["name"], data["project"], data["version"], tuple(data["hashes"]), data["line"],
                              tuple(data.get("machines", ())))
    interpreter = Interpreter.for_architecture(args.python_version, args.architecture)
    local = [IndexFile(wheel["filename"], "file://" + wheel["path"], wheel["sha256"], False)
             for wheel in json.loads(args.local_wheels)]
    # The wheelhouse first: a wheel the lock built or was given is taken from there, not from the index.
    files = local + (parse_page(args.index_page.read_bytes(), args.page_url) if args.index_page else [])
    chosen = select(files, requirement, interpreter, args.architecture)
    print(json.dumps([{"filename": f.filename, "url": f.url, "sha256": f.sha256} for f in chosen]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
