"""The dependency resolver: the Pre-Depends/Depends closure of a manifest's packages for one architecture,
one version per package name, honouring the manifest's excludes."""

from __future__ import annotations

import operator
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from debian.deb822 import PkgRelation
from debian.debian_support import Version

from tools.debian.errors import LockError
from tools.debian.indexes import Candidate
from tools.debian.manifest import Manifest

# One alternative of a dependency as python-debian parses it: name, archqual, version (op, version) or None.
Alternative = dict[str, Any]
Group = list[Alternative]


@dataclass
class ArchIndex:
    """All candidates for one arch, by name (highest version first) and by the virtual names they provide."""

    arch: str
    packages: dict[str, list[Candidate]] = field(default_factory=dict)
    providers: dict[str, list[tuple[Candidate, str | None]]] = field(default_factory=dict)

    @classmethod
    def build(cls, arch: str, candidates: Iterable[Candidate]) -> "ArchIndex":
        index = cls(arch)
        for candidate in candidates:
            index.packages.setdefault(candidate.name, []).append(candidate)
            for virtual, version in candidate.provides:
                index.providers.setdefault(virtual, []).append((candidate, version))
        # Stable sorts: equal versions keep the manifest's source order, so the first source wins ties.
        for versions in index.packages.values():
            versions.sort(key=lambda c: Version(c.version), reverse=True)
        for providers in index.providers.values():
            providers.sort(key=lambda p: Version(p[0].version), reverse=True)
            providers.sort(key=lambda p: p[0].name)
        return index


def describe(group: Group) -> str:
    return PkgRelation.str([group])


# Debian's relation operators; the obsolete "<" and ">" mean "<=" and ">=".
VERSION_OPERATORS: dict[str, Callable[[Version, Version], bool]] = {
    "<<": operator.lt, "<=": operator.le, "<": operator.le,
    "=": operator.eq,
    ">=": operator.ge, ">>": operator.gt, ">": operator.ge,
}


def satisfies(version: str, constraint: tuple[str, str] | None) -> bool:
    if constraint is None:
        return True
    op, wanted = constraint
    return VERSION_OPERATORS[op](Version(version), Version(wanted))


class Resolver:
    """Resolves the Pre-Depends + Depends closure for one arch, one version per package name.

    Excluded packages count as already present: a dependency they could satisfy (by name or by Provides,
    in any alternative) is dropped rather than satisfied by something else.
    """

    def __init__(self, index: ArchIndex, excludes: dict[str, str], where: str, source_labels: str) -> None:
        self.index = index
        self.excludes = excludes
        self.where = where  # the manifest and arch, to start error messages
        self.source_labels = source_labels
        self.selected: dict[str, Candidate] = {}
        self.chains: dict[str, tuple[str, ...]] = {}  # how each package was first reached
        self.depends: dict[str, set[str]] = {}
        self.notes: set[str] = set()  # virtual/alternative picks and skipped excludes, printed sorted
        self.dropped: list[tuple[str, tuple[str, ...]]] = []  # excluded packages a dependency named, and by whom

    def resolve(self, requested: Iterable[str]) -> dict[str, Candidate]:
        queue: deque[str] = deque()
        # Sorted, so the outcome does not depend on the order of the manifest's list.
        for name in sorted(set(requested)):
            if name not in self.index.packages and name not in self.index.providers:
                raise LockError(
                    f"{self.where}: unknown package {name!r} in {self.source_labels}; "
                    "check the name and the manifest's suites and components"
                )
            requested_group = [{"name": name, "archqual": None, "version": None}]
            self._add(self._choose(requested_group, ("manifest",)), ("manifest",), queue)
        while queue:
            name = queue.popleft()
            for group in self._groups(self.selected[name]):
                choice = self._choose(group, self.chains[name])
                if choice is not None:
                    self.depends[name].add(choice.name)
                    self._add(choice, self.chains[name], queue)
        return self.selected

    def _add(self, candidate: Candidate | None, parent_chain: tuple[str, ...], queue: deque[str]) -> None:
        if candidate is None or candidate.name in self.selected:
            return
        self.selected[candidate.name] = candidate
        self.chains[candidate.name] = parent_chain + (candidate.name,)
        self.depends[candidate.name] = set()
        queue.append(candidate.name)

    def _groups(self, candidate: Candidate) -> list[Group]:
        return PkgRelation.parse_relations(candidate.relations) if candidate.relations else []

    def _choose(self, group: Group, chain: tuple[str, ...]) -> Candidate | None:
        """What satisfies `group`: a package already chosen, else nothing if excluded, else the best new one."""
        for alternative in group:
            for candidate in self._satisfiers(alternative):
                if self.selected.get(candidate.name) is candidate:
                    return candidate
        excluded = self._excluded_satisfier(group)
        if excluded:
            self.notes.add(f"skipped {excluded} (excluded) for {chain[-1]}")
            self.dropped.append((excluded, chain))
            return None
        for alternative in group:
            # Another version of an already chosen package cannot be used: one version per name.
            fresh = [c for c in self._satisfiers(alternative) if c.name not in self.selected]
            if fresh:
                self._note_pick(group, alternative, fresh, chain)
                return fresh[0]
        raise self._unsatisfiable(group, chain)

    def _satisfiers(self, alternative: Alternative) -> list[Candidate]:
        """Candidates for one alternative, best first: the real package's versions, else providers by name."""
        if alternative["archqual"] not in (None, "any", "native", self.index.arch):
            return []
        name, constraint = alternative["name"], alternative["version"]
        real = [c for c in self.index.packages.get(name, []) if satisfies(c.version, constraint)]
        if real:
            return real
        # A versioned dependency on a virtual name is only met by a versioned Provides.
        return [
            candidate
            for candidate, provided in self.index.providers.get(name, [])
            if constraint is None or (provided is not None and satisfies(provided, constraint))
        ]

    def _excluded_satisfier(self, group: Group) -> str | None:
        for alternative in group:
            name = alternative["name"]
            names = [name] + [candidate.name for candidate, _ in self.index.providers.get(name, [])]
            for candidate_name in names:
                if candidate_name in self.excludes:
                    return candidate_name
        return None

    def _note_pick(
        self, group: Group, alternative: Alternative, fresh: list[Candidate], chain: tuple[str, ...]
    ) -> None:
        choice = fresh[0]
        if choice.name != alternative["name"]:
            providers = ", ".join(sorted({c.name for c in fresh}))
            virtual = alternative["name"]
            self.notes.add(f"virtual {virtual} for {chain[-1]}: chose {choice.name} (providers: {providers})")
        elif len(group) > 1:
            self.notes.add(f"alternative '{describe(group)}' for {chain[-1]}: chose {choice.name}")

    def _unsatisfiable(self, group: Group, chain: tuple[str, ...]) -> LockError:
        path = " -> ".join(chain + (describe(group),))
        for alternative in group:
            holder = self.selected.get(alternative["name"])
            if holder is not None:
                return LockError(
                    f"{self.where}: conflicting versions: {path} is not met by {holder.label()}, "
                    f"already chosen for {' -> '.join(self.chains[holder.name])}; the suites carry no version "
                    "that satisfies both, so change the requested packages or exclude one side"
                )
        offered = [
            f"{alternative['name']} {c.version}"
            for alternative in group
            for c in self.index.packages.get(alternative["name"], [])
        ]
        found = f"only {', '.join(offered)} exist" if offered else "no such package or provider exists"
        return LockError(
            f"{self.where}: unsatisfiable dependency {path}: {found} in {self.source_labels}; "
            "add the suite that carries it to the manifest or exclude the package"
        )


def check_no_library_dropped(manifest: Manifest, arch: str, resolver: Resolver) -> None:
    """Refuses an exclude that drops a shared library a group's package depends on.

    Excludes exist to drop what only maintainer scripts use (dpkg, debconf, perl-base, ...). A library
    package (Debian names them lib*) that something depends on holds a shared object that program loads, so
    excluding it makes images whose programs cannot start: the lock must not be written.
    """
    for excluded, chain in resolver.dropped:
        if excluded.startswith("lib"):
            group = manifest.group_of(chain[1])
            raise LockError(
                f"{manifest.path} [{arch}]: the {group!r} group needs {excluded} "
                f"({' -> '.join(chain[1:])} -> {excluded}), but 'exclude' drops it: it is a shared library "
                f"the images' programs load, so images built from this lock could not run. Remove {excluded} "
                "from 'exclude'; the old lock is left as it was"
            )
