"""Reads a hash-pinned requirements lock, the subset of pip's `--require-hashes` format the rules accept.

    # comments, and blank lines
    orjson==3.11.3 \\
        --hash=sha256:0123... \\
        --hash=sha256:4567...

Every requirement pins one exact version with `==` and carries at least one sha256 hash (one per wheel:
one for each platform the images need). Extras (`name[extra]==...`) are accepted; the packages an extra
pulls in must be in the lock themselves, as pip's --require-hashes also demands. The one marker accepted is
the lock tool's `; platform_machine == "x86_64"` (or several joined with `or`): a package for some
architectures only. Not accepted, each with an error that says what to do instead: other markers, options
lines (--index-url and the like: the index comes from PIP_INDEX_URL), URLs and paths, other hash
algorithms, and a project listed twice for one architecture.

The lock tool (requirements_lock_writer.py) writes a header the build checks: `# input: FILE sha256=HEX` (the requirements it
was made from: when FILE's sha256 differs, the lock is stale and the error gives the `Update:` command) and
`# wheelhouse: DIR` (local wheels beside the lock, which the build uses instead of the index).

Run as `python3 -m tools.python.requirements_lock_reader LOCK`, it checks that the lock is not stale and prints the
requirements and the wheelhouse's wheels as JSON, for the module extension (tools/python/private/wheels.bzl).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from tools import cli
from tools.python.wheel_tags import MACHINES, normalize_name

_COMMENT = re.compile(r"(^|\s+)#.*$")
_REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[(?P<extras>[^\]]*)\])?\s*(?P<op>===|==|~=|!=|<=|>=|<|>)?\s*"
    r"(?P<version>[^\s;,]*)\s*(?P<rest>.*)$"
)
_HASH = re.compile(r"^--hash[=\s]\s*(?P<algorithm>[A-Za-z0-9]+):(?P<digest>\S*)$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MACHINE_MARKER = re.compile(r'^platform_machine\s*==\s*"(?P<machine>[A-Za-z0-9_]+)"$')
_HEADER = re.compile(r"^# (?P<key>input|wheelhouse): (?P<value>.+?)\s*$", re.MULTILINE)
_INPUT = re.compile(r"^(?P<path>\S+) sha256=(?P<digest>[0-9a-f]{64})$")
_UPDATE = re.compile(r"Update: (?P<command>.+?)\s*$", re.MULTILINE)
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
    machines: tuple[str, ...] = ()  # the kernel's machine names it is for (a platform_machine marker); () is all


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
    machines: list[str] = []
    if rest.startswith(";") or ";" in version:
        marker, _, hashes_part = (rest[1:] if rest.startswith(";") else rest).partition("--")
        for clause in marker.strip().split(" or "):
            found = _MACHINE_MARKER.match(clause.strip())
            if not found or found.group("machine") not in MACHINES.values():
                raise LockError(
                    f"{at}: {name} has the environment marker {marker.strip()!r}; the lock is for the image's interpreter, "
                    'and the only marker it may hold is the lock tool\'s platform_machine == "x86_64" (or "aarch64"): '
                    "put markers in the requirements file and re-run the lock tool"
                )
            machines.append(found.group("machine"))
        rest = ("--" + hashes_part) if hashes_part else ""
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
    return Requirement(name, normalize_name(name), version, tuple(hashes), line, tuple(machines))


def parse_lock(text: str, where: str = "requirements lock") -> list[Requirement]:
    requirements: list[Requirement] = []
    seen: dict[tuple[str, str], int] = {}
    for line, content in logical_lines(text):
        requirement = parse_requirement(line, content, where)
        for machine in requirement.machines or tuple(MACHINES.values()):
            if (requirement.project, machine) in seen:
                raise LockError(
                    f"{where}:{line}: {requirement.name} is already listed at line {seen[requirement.project, machine]}; "
                    "list each project once per architecture, with the hashes of all its wheels"
                )
            seen[requirement.project, machine] = line
        requirements.append(requirement)
    if not requirements:
        raise LockError(f"{where}: no requirements; list at least one NAME==VERSION --hash=sha256:HEX")
    return requirements


def header(text: str) -> dict[str, str]:
    """The lock tool's header fields: input, wheelhouse, update (absent in a lock another tool wrote)."""
    fields = {match.group("key"): match.group("value") for match in _HEADER.finditer(text)}
    update = _UPDATE.search(text.split("\n", 1)[0])
    if update:
        fields["update"] = update.group("command")
    return fields


def check_fresh(text: str, lock: Path) -> Path | None:
    """The input file the lock names (None for a lock without one); a LockError when it changed since."""
    fields = header(text)
    if "input" not in fields:
        return None
    found = _INPUT.match(fields["input"])
    if not found:
        raise LockError(f"{lock.name}: its '# input:' line is not 'FILE sha256=HEX'; re-run the lock tool")
    path = lock.parent / found.group("path")
    update = fields.get("update", "the lock tool (its py_requirements_lock target, with tools/bazel run)")
    if not path.is_file():
        raise LockError(f"{lock.name} was made from {found.group('path')}, which does not exist beside it; restore it, "
                        f"or make the lock again: {update}")
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != found.group("digest"):
        raise LockError(f"{lock.name} is stale: {found.group('path')} changed since it was locked (its sha256 is "
                        f"{actual[:12]}..., the lock was made from {found.group('digest')[:12]}...); update it: {update}")
    return path


def wheelhouse_wheels(text: str, lock: Path) -> list[dict[str, str]]:
    """The wheelhouse's wheels (filename, absolute path, sha256), for the wheel repositories to use first."""
    directory = header(text).get("wheelhouse")
    if not directory or not (lock.parent / directory).is_dir():
        return []
    return [
        {"filename": wheel.name, "path": str(wheel.resolve()), "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest()}
        for wheel in sorted((lock.parent / directory).glob("*.whl"))
    ]


@cli.tool("requirements lock", LockError, OSError, UnicodeDecodeError)
def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: requirements_lock_reader.py LOCK", file=sys.stderr)
        return 2
    path = Path(args[0])
    text = path.read_text(encoding="utf-8")
    requirements = parse_lock(text, path.name)
    source = check_fresh(text, path)
    print(json.dumps({
        "requirements": [asdict(requirement) for requirement in requirements],
        "input": str(source) if source else "",
        "wheelhouse": wheelhouse_wheels(text, path),
    }, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
