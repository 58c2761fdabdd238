"""Locks a Debian package manifest to exact .deb files: `python3 -m tools.debian.lock --manifest M --lock L`.

Reads a YAML manifest (sources, archs, packages, exclude), downloads each suite's InRelease and checks its
OpenPGP signature with gpgv before trusting any byte of it, downloads the Packages indices it lists and checks
them against its SHA256 sums, resolves the Pre-Depends/Depends closure of the requested packages per arch, and
writes a JSON lockfile atomically. Mirrors come only from the environment (see MIRROR_ENV_VARS).

With DEBIAN_SNAPSHOT_MIRROR set, every archive is read from that snapshot service at one timestamp
(`<base>/archive/<archive>/<timestamp>/`, Debian's snapshot layout) instead of the live mirror, and the lock
records that timestamp: its files are then certain to be in the snapshot at that time, so builds can fall
back to it when the live mirror drops them. A lock resolved from the live mirror records each suite's
Release `Date` and, since a snapshot service imports an archive some hours after the Release it publishes
(and resolves a timestamp to its last import at or before it), the few timestamps after that Date that a
build tries in turn (SNAPSHOT_DELAYS): the first import after the Release is the one that surely holds it.
"""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import json
import operator
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml
from debian.deb822 import Packages, PkgRelation, Release
from debian.debian_support import Version

from tools import cli, tarball
from tools.atomic_file import write_atomically

# The archive table (archives.json beside this file) maps a manifest's `archive` to the environment variable
# holding its mirror base URL, and names the snapshot service's variable and layout.
ARCHIVES = json.loads((Path(__file__).resolve().parent / "archives.json").read_text())
MIRROR_ENV_VARS: dict[str, str] = ARCHIVES["mirror_variables"]
SNAPSHOT_ENV_VAR: str = ARCHIVES["snapshot_variable"]
# Debian's snapshot timestamps, e.g. 20261127T081533Z.
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
TIMESTAMP_PATTERN = re.compile(r"/(\d{8}T\d{6}Z)/")
DEFAULT_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
# The lock format's version and package fields, declared once beside this file for the extension to read too.
LOCK_FORMAT = json.loads((Path(__file__).resolve().parent / "lock_format.json").read_text())
LOCK_FORMAT_VERSION: int = LOCK_FORMAT["version"]
FETCH_TIMEOUT_S = 60
FETCH_ATTEMPTS = 3
RETRY_DELAY_S = 2.0
# Preferred first: xz is the smallest index every current Debian suite publishes.
INDEX_COMPRESSIONS = ((".xz", "xz"), (".gz", "gzip"))  # suffix, tarball.decompress's name
MANIFEST_KEYS = ("sources", "archs", "merged_usr", "groups", "packages", "exclude")
# For a suite resolved from a live mirror: how long after its Release's Date the snapshot timestamps the
# build tries lie, in order. Debian's snapshot service imports the archive four times a day and an import
# lands hours after the Release it holds, so the first import after the Date is at most about six hours
# away; the later ones cover a delayed import. A timestamp resolving to an import from before the Release
# lacks its new files (a 404), and the build then tries the next.
SNAPSHOT_DELAYS_H = (6, 12, 24, 48)
# Only the fields the resolver and the lockfile use are kept from the (large) Packages indices.
INDEX_FIELDS = ["Package", "Source", "Version", "Filename", "SHA256", "Size", "Pre-Depends", "Depends", "Provides"]
# A Packages paragraph's Source: "name" or "name (version)", the latter when the source's version differs.
SOURCE_FIELD = re.compile(r"(?P<name>[a-z0-9][a-z0-9+.-]+)(?:\s+\((?P<version>[^()\s]+)\))?")

# One alternative of a dependency as python-debian parses it: name, archqual, version (op, version) or None.
Alternative = dict[str, Any]
Group = list[Alternative]


class LockError(Exception):
    """A problem with the input or the mirror, reported as one line without a traceback."""


class NotFound(LockError):
    """The mirror answered that a file does not exist (so another name may be tried)."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- manifest


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


# ---------------------------------------------------------------------------------------------- fetching


def mirror_url(archive: str, snapshot: str | None = None) -> str:
    """The base URL of `archive`: its live mirror, or the snapshot service's view of it at `snapshot`."""
    if snapshot:
        return f"{snapshot_service()}/" + ARCHIVES["snapshot_path"].format(archive=archive, timestamp=snapshot)
    env_var = MIRROR_ENV_VARS[archive]
    url = os.environ.get(env_var, "").strip()
    if not url:
        raise LockError(
            f"{env_var} is not set; it must be the base URL of the {archive} archive (http://MIRROR/{archive}); "
            "tools/bazel sets it from the machine's apt sources"
        )
    return url.rstrip("/")


def snapshot_service() -> str:
    """The snapshot service's base URL from DEBIAN_SNAPSHOT_MIRROR, or "" when none is configured."""
    return os.environ.get(SNAPSHOT_ENV_VAR, "").strip().rstrip("/")


def fetch(url: str, env_var: str) -> bytes:
    """Downloads `url`, retrying transient failures; a missing file raises NotFound at once."""
    return fetch_final(url, env_var)[0]


def fetch_final(url: str, env_var: str) -> tuple[bytes, str]:
    """Downloads `url` like fetch, and also returns the URL it was finally served from (after redirects)."""
    reason = ""
    for attempt in range(1, FETCH_ATTEMPTS + 1):
        log(f"fetching {url}")
        try:
            with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as response:
                return response.read(), response.geturl()
        except urllib.error.HTTPError as error:
            if error.code in (404, 410):
                raise NotFound(f"{url} does not exist on the mirror ({error.code})") from None
            reason = f"HTTP {error.code}"
        except urllib.error.URLError as error:
            if isinstance(error.reason, FileNotFoundError):  # file:// mirrors
                raise NotFound(f"{url} does not exist on the mirror") from None
            reason = str(error.reason)
        except OSError as error:  # timeouts and resets while reading
            reason = str(error) or type(error).__name__
        if attempt < FETCH_ATTEMPTS:
            log(f"  failed ({reason}); retrying")
            time.sleep(RETRY_DELAY_S * attempt)
    raise LockError(
        f"cannot fetch {url} ({reason}) after {FETCH_ATTEMPTS} attempts; "
        f"check that {env_var} names a reachable mirror (tools/bazel sets it from the machine's apt sources)"
    )


@dataclass(frozen=True)
class IndexCache:
    """Verified downloads stored under their SHA256, so unchanged indices are never downloaded twice."""

    directory: Path

    def get(self, sha256: str) -> bytes | None:
        path = self.directory / sha256
        try:
            data = path.read_bytes()
        except OSError:
            return None
        # A damaged cache entry is simply downloaded again.
        return data if hashlib.sha256(data).hexdigest() == sha256 else None

    def put(self, sha256: str, data: bytes) -> None:
        try:
            write_atomically(self.directory / sha256, data)
        except OSError as error:
            raise LockError(
                f"cannot write to the index cache {self.directory} ({error.strerror}); pass a writable --cache-dir"
            ) from None


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "distroless-python" / "debian-indices"


# ---------------------------------------------------------------------------------------------- InRelease


@dataclass(frozen=True)
class ReleaseInfo:
    """What a verified InRelease says: the files it vouches for and how to fetch them."""

    url: str  # of the dists/SUITE directory
    architectures: frozenset[str]
    files: dict[str, tuple[str, int]]  # path below dists/SUITE -> (sha256, size)
    by_hash: bool
    all_in_arch_indices: bool  # Architecture: all packages are listed in each arch's Packages
    date: str  # the Release's Date, as a snapshot timestamp
    snapshot: str | None  # the snapshot timestamp it was read at, when read through a snapshot service


def verify_signed_text(signed: bytes, keyring: Path, url: str) -> tuple[str, list[str]]:
    """The text gpgv verified in a clearsigned document (and nothing else of it), and who signed it."""
    if not keyring.is_file():
        raise LockError(f"keyring {keyring} does not exist; install debian-archive-keyring or pass --keyring")
    with tempfile.TemporaryDirectory(prefix="lock-gpgv-") as home:
        document = Path(home) / "InRelease"
        document.write_bytes(signed)
        try:
            # An empty --homedir keeps any user's trustedkeys out of the decision.
            result = subprocess.run(
                ["gpgv", "--homedir", home, "--keyring", str(keyring.resolve()), "--status-fd", "2",
                 "--output", "-", str(document)],
                capture_output=True,
            )
        except FileNotFoundError:
            raise LockError("gpgv is not installed; it is part of the build root (tools/build_root.packages)") from None
    status = result.stderr.decode(errors="replace").splitlines()
    signers = [line.split(" ", 3)[3] for line in status if line.startswith("[GNUPG:] GOODSIG ")]
    # Archives sign with several keys while they rotate them, and gpgv exits non-zero when the keyring lacks
    # any one of them; like apt, one good signature and no bad one are what count.
    if not signers or any(line.startswith("[GNUPG:] BADSIG ") for line in status):
        raise LockError(
            f"{url}: bad or untrusted OpenPGP signature (gpgv exit {result.returncode}); the mirror may be "
            f"tampered with or {keyring} lacks the archive's key"
        )
    return result.stdout.decode(), signers


def snapshot_timestamp(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime(TIMESTAMP_FORMAT)


def release_date(release: Release, url: str) -> str:
    try:
        return snapshot_timestamp(email.utils.parsedate_to_datetime(release["Date"]))
    except (KeyError, TypeError, ValueError):
        raise LockError(f"{url} has no readable Date field; the mirror serves a broken Release file") from None


def parse_release(text: str, source: Source, url: str, snapshot: str | None = None) -> ReleaseInfo:
    release = Release(text)
    if source.suite not in (release.get("Suite"), release.get("Codename")):
        raise LockError(
            f"{url} is for suite {release.get('Codename') or release.get('Suite')!r}, not {source.suite!r}; "
            f"check the mirror in {MIRROR_ENV_VARS[source.archive]}"
        )
    _warn_if_expired(release.get("Valid-Until"), url)
    files = {entry["name"]: (entry["sha256"], int(entry["size"])) for entry in release.get("SHA256", [])}
    return ReleaseInfo(
        url=url.rsplit("/", 1)[0],
        architectures=frozenset(release.get("Architectures", "").split()),
        files=files,
        by_hash=release.get("Acquire-By-Hash", "no") == "yes",
        all_in_arch_indices=release.get("No-Support-for-Architecture-all", "") == "Packages",
        date=release_date(release, url),
        snapshot=snapshot,
    )


def _warn_if_expired(valid_until: str | None, url: str) -> None:
    # Mirrors may be snapshots whose signatures are past Valid-Until; the signed content is still genuine.
    if not valid_until:
        return
    try:
        expiry = email.utils.parsedate_to_datetime(valid_until)
    except (TypeError, ValueError):
        log(f"warning: {url} has an unreadable Valid-Until {valid_until!r}; ignoring it")
        return
    if expiry.replace(tzinfo=expiry.tzinfo or timezone.utc) < datetime.now(timezone.utc):
        log(f"warning: {url} expired at {valid_until} (Valid-Until); using it anyway, as for a snapshot mirror")


# ---------------------------------------------------------------------------------------------- Packages


@dataclass(frozen=True)
class Candidate:
    """One binary package version offered by an index."""

    name: str
    version: str
    archive: str
    suite: str
    filename: str
    sha256: str
    size: int
    relations: str  # Pre-Depends then Depends, as written in the index
    provides: tuple[tuple[str, str | None], ...]  # (virtual name, provided version)
    source: str = ""  # the Debian source package it is built from
    source_version: str | None = None  # that source's version, only when it differs from `version`

    def label(self) -> str:
        return f"{self.name} {self.version} ({self.archive} {self.suite})"


def parse_packages(data: bytes, source: Source, index_name: str) -> list[Candidate]:
    paragraphs = Packages.iter_paragraphs(data.splitlines(keepends=True), fields=INDEX_FIELDS, use_apt_pkg=False)
    try:
        return [_candidate(paragraph, source) for paragraph in paragraphs]
    except (KeyError, ValueError) as error:
        raise LockError(
            f"{source.label()} {index_name}: malformed Packages index ({error!r}); report it to the archive"
        ) from None


def parse_source_field(package: str, version: str, field: str | None) -> tuple[str, str | None]:
    """(source name, source version or None) from a Source field; absent, the source is the package itself."""
    if not field or not field.strip():
        return package, None
    match = SOURCE_FIELD.fullmatch(field.strip())
    if not match:
        raise ValueError(f"package {package} has an unreadable Source field {field!r}")
    source_version = match["version"]
    return match["name"], source_version if source_version and source_version != version else None


def _candidate(paragraph: Packages, source: Source) -> Candidate:
    source_name, source_version = parse_source_field(
        paragraph["Package"], paragraph["Version"], paragraph.get("Source"))
    relations = ", ".join(paragraph[key] for key in ("Pre-Depends", "Depends") if paragraph.get(key, "").strip())
    provides = paragraph.get("Provides", "").strip()
    return Candidate(
        name=paragraph["Package"],
        version=paragraph["Version"],
        archive=source.archive,
        suite=source.suite,
        filename=paragraph["Filename"],
        sha256=paragraph["SHA256"],
        size=int(paragraph["Size"]),
        relations=relations,
        provides=tuple(
            (group[0]["name"], group[0]["version"][1] if group[0]["version"] else None)
            for group in (PkgRelation.parse_relations(provides) if provides else [])
        ),
        source=source_name,
        source_version=source_version,
    )


class ArchiveReader:
    """Fetches and verifies InRelease files and Packages indices, remembering them for the whole run."""

    def __init__(self, keyring: Path, cache: IndexCache, snapshot: str | None = None) -> None:
        self.keyring = keyring
        self.snapshot = snapshot  # read every archive from the snapshot service at this timestamp
        self.cache = cache
        self.releases: dict[tuple[str, str], ReleaseInfo] = {}
        self.indices: dict[tuple[str, str, str, str], list[Candidate]] = {}

    def release(self, source: Source) -> ReleaseInfo:
        key = (source.archive, source.suite)
        if key not in self.releases:
            url = f"{mirror_url(source.archive, self.snapshot)}/dists/{source.suite}/InRelease"
            env_var = SNAPSHOT_ENV_VAR if self.snapshot else MIRROR_ENV_VARS[source.archive]
            signed, served_from = fetch_final(url, env_var)
            text, signers = verify_signed_text(signed, self.keyring, url)
            log(f"verified {url} (signed by {'; '.join(signers)})")
            self.releases[key] = parse_release(text, source, url, self._served_snapshot(served_from))
        return self.releases[key]

    def _served_snapshot(self, served_from: str) -> str | None:
        """The snapshot a file came from: the exact import a service redirected to, else the one asked for."""
        if not self.snapshot:
            return None
        found = TIMESTAMP_PATTERN.search(served_from)
        return found.group(1) if found else self.snapshot

    def archive_base(self, archive: str) -> str:
        """Where the pool files of `archive` come from in this run: the live mirror or the snapshot."""
        return mirror_url(archive, self.snapshot)

    def candidates(self, source: Source, arch: str) -> list[Candidate]:
        """Every package `source` offers for `arch`, over all its components."""
        release = self.release(source)
        if arch not in release.architectures:
            offered = ", ".join(sorted(release.architectures))
            raise LockError(f"{source.label()} has no {arch} packages (only {offered}); check the manifest's archs")
        # Without No-Support-for-Architecture-all, Architecture: all packages are only in binary-all.
        index_archs = [arch] if release.all_in_arch_indices or "all" not in release.architectures else [arch, "all"]
        found: list[Candidate] = []
        for component in source.components:
            for index_arch in index_archs:
                key = (source.archive, source.suite, component, index_arch)
                if key not in self.indices:
                    data = self._packages_index(source, release, component, index_arch)
                    self.indices[key] = parse_packages(data, source, f"{component}/binary-{index_arch}")
                    log(f"{source.label()} {component}/{index_arch}: {len(self.indices[key])} packages")
                found.extend(self.indices[key])
        return found

    def _packages_index(self, source: Source, release: ReleaseInfo, component: str, arch: str) -> bytes:
        """The decompressed Packages index, downloaded only if the cache lacks a file with the listed SHA256."""
        base = f"{component}/binary-{arch}/Packages"
        listed = [(base + suffix, compression) for suffix, compression in INDEX_COMPRESSIONS
                  if base + suffix in release.files]
        if not listed:
            raise LockError(
                f"{release.url}/InRelease lists no {base}.xz or .gz; "
                f"check the manifest's components for {source.label()}"
            )
        missing: list[str] = []
        for path, compression in listed:
            sha256, size = release.files[path]
            data = self.cache.get(sha256)
            if data is None:
                try:
                    data = self._download_verified(source, release, path)
                except NotFound as error:
                    missing.append(str(error))
                    continue
                self.cache.put(sha256, data)
            try:
                return tarball.decompress(data, compression)
            except tarball.CompressionError as error:
                raise LockError(f"{release.url}/{path}: {error}") from None
        raise LockError(f"no Packages index for {source.label()} {component}/{arch}: {'; '.join(missing)}")

    def _download_verified(self, source: Source, release: ReleaseInfo, path: str) -> bytes:
        sha256, size = release.files[path]
        env_var = SNAPSHOT_ENV_VAR if self.snapshot else MIRROR_ENV_VARS[source.archive]
        url, data = f"{release.url}/{path}", None
        if release.by_hash:
            # A by-hash name cannot change under us while the mirror updates; the plain name is the fallback.
            by_hash_url = f"{release.url}/{path.rsplit('/', 1)[0]}/by-hash/SHA256/{sha256}"
            try:
                url, data = by_hash_url, fetch(by_hash_url, env_var)
            except NotFound:
                pass
        if data is None:
            data = fetch(url, env_var)
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256 or len(data) != size:
            raise LockError(
                f"{url}: SHA256 {actual} / {len(data)} bytes, but the signed InRelease says {sha256} / {size}; "
                f"the mirror in {env_var} is inconsistent or tampered with, retry later"
            )
        log(f"verified {url}")
        return data


# ---------------------------------------------------------------------------------------------- resolution


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


# ---------------------------------------------------------------------------------------------- lockfile


def lock_entries(arch: str, resolver: Resolver) -> list[dict[str, Any]]:
    return [package_entry(arch, candidate, sorted(resolver.depends[candidate.name]))
            for candidate in resolver.selected.values()]


def package_entry(arch: str, candidate: Candidate, depends: list[str]) -> dict[str, Any]:
    """One package of the lock, with the fields lock_format.json declares (source_version only when set)."""
    entry: dict[str, Any] = {
        "name": candidate.name,
        "version": candidate.version,
        "arch": arch,
        "archive": candidate.archive,
        "filename": candidate.filename,
        "sha256": candidate.sha256,
        "size": candidate.size,
        "depends": depends,
        "source": candidate.source or candidate.name,
    }
    if candidate.source_version:
        entry["source_version"] = candidate.source_version
    return entry


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


def build_lock(manifest: Manifest, reader: ArchiveReader) -> dict[str, Any]:
    """The lockfile content for `manifest`: a pure function of the manifest and the verified indices."""
    labels = ", ".join(source.label() for source in manifest.sources)
    packages: list[dict[str, Any]] = []
    for arch in manifest.archs:
        index = ArchIndex.build(arch, (c for source in manifest.sources for c in reader.candidates(source, arch)))
        log(f"resolving {arch}")
        resolver = Resolver(index, manifest.excludes, f"{manifest.path} [{arch}]", labels)
        resolver.resolve(manifest.packages)
        check_no_library_dropped(manifest, arch, resolver)
        for note in sorted(resolver.notes):
            log(f"  {arch}: {note}")
        log(f"  {arch}: {len(resolver.selected)} packages")
        packages.extend(lock_entries(arch, resolver))
    return {
        "version": LOCK_FORMAT_VERSION,
        "manifest_sha256": manifest.sha256,
        "archs": list(manifest.archs),
        "merged_usr": manifest.merged_usr,
        "groups": {name: sorted(members) for name, members in manifest.groups.items()},
        "sources": [source_entry(source, reader.release(source)) for source in manifest.sources],
        "packages": sorted(packages, key=lambda p: (p["arch"], p["name"])),
    }


def source_entry(source: Source, release: ReleaseInfo) -> dict[str, Any]:
    return {
        "archive": source.archive,
        "suite": source.suite,
        "components": list(source.components),
        "date": release.date,
        "snapshot": release.snapshot,
        "snapshots": snapshot_times(release.date, release.snapshot),
    }


def snapshot_times(date: str, snapshot: str | None) -> list[str]:
    """The snapshot timestamps a build tries, in order, for files of a suite the mirror no longer serves: the
    one it was read at, or a few after its Release `date` when it was read from a live mirror."""
    if snapshot:
        return [snapshot]
    published = datetime.strptime(date, TIMESTAMP_FORMAT).replace(tzinfo=timezone.utc)
    return [snapshot_timestamp(published + timedelta(hours=hours)) for hours in SNAPSHOT_DELAYS_H]


def lock_text(lock: dict[str, Any]) -> str:
    return json.dumps(lock, indent=2, sort_keys=True) + "\n"


def write_lock(path: Path, lock: dict[str, Any]) -> None:
    try:
        write_atomically(path, lock_text(lock).encode())
    except OSError as error:
        raise LockError(f"cannot write {path} ({error.strerror}); check that its directory is writable") from None
    log(f"wrote {path}")


# ---------------------------------------------------------------------------------------------- CLI


def workspace_path(path: str) -> Path:
    """Resolves `path` against the workspace under `bazel run` (which runs us from the runfiles tree)."""
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    return Path(workspace, path) if workspace and not os.path.isabs(path) else Path(path)


def manifest_lock_pairs(args: argparse.Namespace) -> list[tuple[Path, Path]]:
    if args.all is not None:
        if args.manifest or args.lock:
            raise LockError("use either --all DIR or --manifest/--lock pairs, not both")
        directory = workspace_path(args.all)
        manifests = sorted(directory.glob("*/manifest.yaml"))
        if not manifests:
            raise LockError(f"{directory}: no */manifest.yaml found to lock")
        return [(manifest, manifest.with_name("lock.json")) for manifest in manifests]
    if not args.manifest or len(args.manifest) != len(args.lock or []):
        raise LockError("give one --lock for each --manifest (or --all DIR)")
    return [(workspace_path(m), workspace_path(lock)) for m, lock in zip(args.manifest, args.lock)]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", action="append", help="manifest YAML (repeatable, paired with --lock)")
    parser.add_argument("--lock", action="append", help="lockfile JSON to write for the matching --manifest")
    parser.add_argument("--all", metavar="DIR", help="lock every DIR/*/manifest.yaml into DIR/*/lock.json")
    add_reader_arguments(parser)
    return parser.parse_args(argv)


def add_reader_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say where indices come from; shared with the update command."""
    parser.add_argument(
        "--cache-dir",
        help="where verified indices are kept (default: distroless-python/debian-indices in the user cache)",
    )
    parser.add_argument("--keyring", default=str(DEFAULT_KEYRING), help="OpenPGP keyring that signs the archives")
    parser.add_argument(
        "--snapshot-time", metavar="YYYYMMDDTHHMMSSZ",
        help=f"with {SNAPSHOT_ENV_VAR} set: resolve against the snapshot at this time (default: now)",
    )


def archive_reader(args: argparse.Namespace) -> ArchiveReader:
    cache_dir = workspace_path(args.cache_dir) if args.cache_dir else default_cache_dir()
    snapshot = None
    if snapshot_service():
        snapshot = args.snapshot_time or snapshot_timestamp(datetime.now(timezone.utc))
        if not re.fullmatch(r"\d{8}T\d{6}Z", snapshot):
            raise LockError(f"--snapshot-time {snapshot!r} is not a snapshot timestamp; write it as 20261127T000000Z")
        log(f"resolving against the snapshot service in {SNAPSHOT_ENV_VAR} at {snapshot}")
    elif args.snapshot_time:
        raise LockError(f"--snapshot-time needs {SNAPSHOT_ENV_VAR}, the base URL of a Debian snapshot service")
    return ArchiveReader(workspace_path(args.keyring), IndexCache(cache_dir), snapshot)


@cli.tool("lock", LockError, note="no lock was written")
def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    args = parse_args(argv)
    pairs = manifest_lock_pairs(args)
    reader = archive_reader(args)
    # Every lock is computed before any is written, so an error leaves all lockfiles as they were.
    locks = [(path, build_lock(load_manifest(manifest), reader)) for manifest, path in pairs]
    for path, lock in locks:
        write_lock(path, lock)
    total = sum(len(lock["packages"]) for _, lock in locks)
    log(f"locked {total} packages in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
