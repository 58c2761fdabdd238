"""A release's manifest (debian_packages/<release>/manifest.yaml): its sources, architectures, merged-/usr,
package groups and excludes, parsed and checked with one message per mistake."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tools.debian.archives import MIRROR_ENV_VARS
from tools.debian.errors import LockError

MANIFEST_KEYS = ("sources", "archs", "merged_usr", "groups", "packages", "exclude")


@dataclass(frozen=True)
class Source:
    archive: str
    suite: str
    components: tuple[str, ...]

    def label(self) -> str:
        return f"{self.archive} {self.suite}"


@dataclass(frozen=True)
class Manifest:
    path: Path
    sha256: str
    sources: tuple[Source, ...]
    archs: tuple[str, ...]
    packages: tuple[str, ...]  # every package the groups name, or the plain `packages` list
    excludes: dict[str, str]  # package name -> why it is left out
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # group name -> its packages
    merged_usr: bool = False  # /bin, /sbin and /lib* are symlinks into /usr (bookworm and later)

    def group_of(self, package: str) -> str:
        return next((name for name, members in self.groups.items() if package in members), "packages")


def load_manifest(path: Path) -> Manifest:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise LockError(f"{path}: cannot read the manifest ({error.strerror})") from None
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise LockError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from None
    if not isinstance(doc, dict):
        raise LockError(f"{path}: the manifest must be a mapping with keys {', '.join(MANIFEST_KEYS)}")
    unknown = sorted(set(doc) - set(MANIFEST_KEYS))
    if unknown:
        raise LockError(f"{path}: unknown key {unknown[0]!r}; the keys are {', '.join(MANIFEST_KEYS)}")
    sources = doc.get("sources")
    if not isinstance(sources, list) or not sources:
        raise LockError(f"{path}: 'sources' must be a non-empty list of {{archive, suite, components}}")
    groups = _parse_groups(path, doc["groups"]) if "groups" in doc else {}
    manifest = Manifest(
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        sources=tuple(_parse_source(path, index, source) for index, source in enumerate(sources)),
        archs=_string_list(path, "archs", doc.get("archs")),
        packages=_requested(path, doc, groups),
        excludes=_parse_excludes(path, doc.get("exclude", [])),
        groups=groups,
        merged_usr=_merged_usr(path, doc.get("merged_usr", False)),
    )
    both = sorted(set(manifest.packages) & set(manifest.excludes))
    if both:
        raise LockError(f"{path}: {both[0]!r} is both in 'packages' and in 'exclude'; remove it from one of them")
    return manifest


def _requested(path: Path, doc: dict[str, Any], groups: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The packages to resolve: the members of every group, or the plain `packages` list."""
    if "groups" in doc and "packages" in doc:
        raise LockError(f"{path}: use 'groups' or 'packages', not both (a plain list is one unnamed group)")
    if groups:
        return tuple(dict.fromkeys(name for members in groups.values() for name in members))
    return _string_list(path, "packages", doc.get("packages"))


def _parse_groups(path: Path, groups: object) -> dict[str, tuple[str, ...]]:
    if not isinstance(groups, dict) or not all(isinstance(name, str) and name for name in groups):
        raise LockError(f"{path}: 'groups' must map each group's name to a non-empty list of packages")
    return {name: _string_list(path, f"groups.{name}", members) for name, members in groups.items()}


def _merged_usr(path: Path, value: object) -> bool:
    if not isinstance(value, bool):
        raise LockError(f"{path}: 'merged_usr' must be true or false: whether the release is merged-/usr "
                        "(/bin, /sbin and /lib* symlinks into /usr; Debian 12 bookworm and later), which the "
                        "image layers follow")
    return value


def _string_list(path: Path, key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise LockError(f"{path}: {key!r} must be a non-empty list of names")
    return tuple(value)


def _parse_source(path: Path, index: int, source: object) -> Source:
    where = f"sources[{index}]"
    if not isinstance(source, dict) or set(source) != {"archive", "suite", "components"}:
        raise LockError(f"{path}: {where} must have exactly the keys archive, suite and components")
    archive, suite = source["archive"], source["suite"]
    if archive not in MIRROR_ENV_VARS:
        raise LockError(f"{path}: {where}.archive {archive!r} is unknown; use one of {', '.join(MIRROR_ENV_VARS)}")
    if not isinstance(suite, str) or not suite:
        raise LockError(f"{path}: {where}.suite must be a suite name such as bullseye")
    return Source(archive, suite, _string_list(path, f"{where}.components", source["components"]))


def _parse_excludes(path: Path, excludes: object) -> dict[str, str]:
    if not isinstance(excludes, list):
        raise LockError(f"{path}: 'exclude' must be a list of {{name, why}}")
    parsed: dict[str, str] = {}
    for index, entry in enumerate(excludes):
        if (
            not isinstance(entry, dict)
            or set(entry) != {"name", "why"}
            or not all(isinstance(v, str) and v.strip() for v in entry.values())
        ):
            raise LockError(f"{path}: exclude[{index}] must have a non-empty 'name' and 'why' (say why it is left out)")
        parsed[entry["name"]] = entry["why"]
    return parsed
