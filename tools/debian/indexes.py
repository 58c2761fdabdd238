"""What a Debian archive publishes, verified and parsed: an InRelease (its OpenPGP signature checked with
gpgv before any byte is trusted) and the Packages indices it vouches for, as candidates for the resolver."""

from __future__ import annotations

import email.utils
import re
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from debian.deb822 import Packages, PkgRelation, Release

from tools.debian.archives import MIRROR_ENV_VARS
from tools.debian.errors import LockError, log
from tools.debian.manifest import Source

# Debian's snapshot timestamps, e.g. 20261127T081533Z.
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
# Only the fields the resolver and the lockfile use are kept from the (large) Packages indices.
INDEX_FIELDS = ["Package", "Source", "Version", "Filename", "SHA256", "Size", "Pre-Depends", "Depends", "Provides"]
# A Packages paragraph's Source: "name" or "name (version)", the latter when the source's version differs.
SOURCE_FIELD = re.compile(r"(?P<name>[a-z0-9][a-z0-9+.-]+)(?:\s+\((?P<version>[^()\s]+)\))?")


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
