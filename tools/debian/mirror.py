"""Reading an archive from its mirror or a snapshot service: fetching with retries, the cache of verified
indices, and the ArchiveReader that gives the resolver every candidate of a suite."""

from __future__ import annotations

import hashlib
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tools import tarball
from tools.atomic_file import write_atomically
from tools.debian.archives import ARCHIVES, MIRROR_ENV_VARS, SNAPSHOT_ENV_VAR
from tools.debian.errors import LockError, NotFound, log
from tools.debian.indexes import Candidate, ReleaseInfo, parse_packages, parse_release, verify_signed_text
from tools.debian.manifest import Source

TIMESTAMP_PATTERN = re.compile(r"/(\d{8}T\d{6}Z)/")
FETCH_TIMEOUT_S = 60
FETCH_ATTEMPTS = 3
RETRY_DELAY_S = 2.0
# Preferred first: xz is the smallest index every current Debian suite publishes.
INDEX_COMPRESSIONS = ((".xz", "xz"), (".gz", "gzip"))  # suffix, tarball.decompress's name


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
