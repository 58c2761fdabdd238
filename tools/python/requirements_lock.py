"""Reads a hash-pinned requirements lock, the subset of pip's `--require-hashes` format the rules accept.

    # comments, and blank lines
    orjson==3.11.3 \\
        --hash=sha256:0123... \\
        --hash=sha256:4567...

Every requirement pins one exact version with `==` and carries at least one sha256 hash (one per wheel:
one for each platform the images need). Extras (`name[extra]==...`) are accepted; the packages an extra
pulls in must be in the lock themselves, as pip's --require-hashes also demands. Not accepted, each with
an error that says what to do instead: environment markers, options lines (--index-url and the like: the
index comes from PIP_INDEX_URL), URLs and paths, other hash algorithms, and a project listed twice.

Run as `python3 -m tools.python.requirements_lock LOCK`, it prints the requirements as JSON, for the
module extension (tools/python/private/wheels.bzl).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from tools import cli
from tools.python.wheel_tags import normalize_name

_COMMENT = re.compile(r"(^|\s+)#.*$")
_REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[(?P<extras>[^\]]*)\])?\s*(?P<op>===|==|~=|!=|<=|>=|<|>)?\s*"
    r"(?P<version>[^\s;,]*)\s*(?P<rest>.*)$"
)
_HASH = re.compile(r"^--hash[=\s]\s*(?P<algorithm>[A-Za-z0-9]+):(?P<digest>\S*)$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
FIX = "write it as NAME==VERSION --hash=sha256:HEX (tools/python's lock tool writes such a lock)"


class LockError(Exception):
    """The lock is not one the rules can use; the message names the line and says how to fix it."""


@dataclass(frozen=True)
class Requirement:
    name: str  # as written
    project: str  # normalized (PEP 503), the index's name for it
    version: str
    hashes: tuple[str, ...]  # sha256 hex digests, in the lock's order
    line: int


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each requirement: comments removed, `\\` continuations joined, as pip does."""
    result: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _COMMENT.sub("", raw) if _COMMENT.search(raw) else raw
        continued = line.rstrip().endswith("\\") and not _COMMENT.search(raw)
        if not pending:
            start = number
        if continued:
            pending.append(line.rstrip()[:-1])
            continue
        pending.append(line)
        joined = " ".join(part.strip() for part in pending).strip()
        pending = []
        if joined:
            result.append((start, joined))
    if pending:
        joined = " ".join(part.strip() for part in pending).strip()
        if joined:
            result.append((start, joined))
    return result


def parse_requirement(line: int, text: str, where: str) -> Requirement:
    at = f"{where}:{line}"
    if text.startswith("-"):
        option = text.split()[0]
        raise LockError(
            f"{at}: option {option} is not supported in a requirements lock: the index comes from PIP_INDEX_URL "
            "(or pip's own configuration), and every line must be a pinned requirement with its hashes"
        )
    match = _REQUIREMENT.match(text)
    if not match or "://" in text.split("--hash")[0] or text.split()[0].startswith((".", "/")):
        raise LockError(f"{at}: {text!r} is not a requirement the rules can lock; {FIX}")
    name, op, version, rest = match.group("name"), match.group("op"), match.group("version"), match.group("rest")
    if rest.startswith(";") or ";" in version:
        raise LockError(
            f"{at}: {name} has an environment marker; the lock is for one interpreter (the image's), so list "
            "the requirement without a marker, or leave it out"
        )
    if op != "==" or not version or "*" in version:
        raise LockError(f"{at}: {name} is not pinned to one version ({text.split('--hash')[0].strip()!r}); {FIX}")
    hashes: list[str] = []
    for option in re.split(r"\s+(?=--)", rest.strip()) if rest.strip() else []:
        hash_match = _HASH.match(option.strip())
        if not hash_match:
            raise LockError(f"{at}: {name}=={version}: unexpected {option.strip()!r} after the version; {FIX}")
        algorithm, digest = hash_match.group("algorithm"), hash_match.group("digest")
        if algorithm != "sha256":
            raise LockError(
                f"{at}: {name}=={version}: hash algorithm {algorithm} is not supported; Bazel's downloader checks "
                "sha256: lock sha256 hashes (--hash=sha256:HEX)"
            )
        if not _SHA256.match(digest):
            raise LockError(f"{at}: {name}=={version}: {digest!r} is not a sha256 hex digest (64 lower-case hex digits)")
        hashes.append(digest)
    if not hashes:
        raise LockError(
            f"{at}: {name}=={version} has no --hash: every requirement needs the sha256 of each wheel it may "
            "install (one per platform); re-run the lock tool, or add --hash=sha256:HEX for each wheel"
        )
    return Requirement(name, normalize_name(name), version, tuple(hashes), line)


def parse_lock(text: str, where: str = "requirements lock") -> list[Requirement]:
    requirements: list[Requirement] = []
    seen: dict[str, int] = {}
    for line, content in logical_lines(text):
        requirement = parse_requirement(line, content, where)
        if requirement.project in seen:
            raise LockError(
                f"{where}:{line}: {requirement.name} is already listed at line {seen[requirement.project]}; list each "
                "project once, with the hashes of all its wheels"
            )
        seen[requirement.project] = line
        requirements.append(requirement)
    if not requirements:
        raise LockError(f"{where}: no requirements; list at least one NAME==VERSION --hash=sha256:HEX")
    return requirements


@cli.tool("requirements lock", LockError, OSError, UnicodeDecodeError)
def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: requirements_lock.py LOCK", file=sys.stderr)
        return 2
    path = Path(args[0])
    requirements = parse_lock(path.read_text(encoding="utf-8"), path.name)
    print(json.dumps([asdict(requirement) for requirement in requirements], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
