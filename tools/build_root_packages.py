"""The build root's package list, tools/build_root.packages: its format and its one parser.

    suite forky                     once: the Debian suite the root is built from
    snapshot 20261120T000000Z       optional: the snapshot timestamp the pins were resolved at
    bazel-bootstrap=7.7.1+ds-8+b1   one pin per line: package=version
    # a comment, to the end of the line

tools/bazel's launcher (tools/build_root.py) builds the root from it; build actions read it too: the
provenance tool (Bazel's pin) and the update command (which rewrites the pins in place). Those import this
module, not the launcher.

Standard library only: tools/bazel runs the launcher, and so this module, with the machine's python3.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

PACKAGE_LIST = Path(__file__).resolve().parent / "build_root.packages"

# One pin of the package list: "package=version" (tools/debian/update.py rewrites them with it too).
PIN = re.compile(r"(?P<name>[a-z0-9][a-z0-9.+-]*)=(?P<version>[A-Za-z0-9.+:~-]+)")
SNAPSHOT = re.compile(r"snapshot \d{8}T\d{6}Z")


class BuildRootError(Exception):
    """A problem with the build root the user must fix; its message says what and how."""


@dataclass(frozen=True)
class PackageList:
    suite: str
    packages: tuple[str, ...]  # "name=version"
    digest: str  # sha256 of the file, which names the cache directory
    snapshot: str = ""  # the snapshot timestamp the pins were resolved at, when they were

    def pins(self) -> dict[str, str]:
        return dict(package.split("=", 1) for package in self.packages)


def read_package_list(path: Path = PACKAGE_LIST) -> PackageList:
    text = path.read_text()
    suite = snapshot = ""
    packages: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("suite "):
            suite = line.split(None, 1)[1]
        elif SNAPSHOT.fullmatch(line):
            snapshot = line.split()[1]
        elif PIN.fullmatch(line):
            packages.append(line)
        else:
            raise BuildRootError(f"{path}:{number}: '{line}' is neither 'suite NAME', 'snapshot YYYYMMDDTHHMMSSZ' "
                                 "nor 'package=version'; fix that line.")
    if not suite or not packages:
        raise BuildRootError(f"{path} needs a 'suite NAME' line and at least one 'package=version' line.")
    return PackageList(suite, tuple(packages), hashlib.sha256(text.encode()).hexdigest(), snapshot)
