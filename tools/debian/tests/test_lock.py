"""Tests for tools/debian/lock.py against small signed archives built here and served from file:// or loopback."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import json
import lzma
import shutil
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tools.debian import indexes, lock, lock_file
from tools.debian import mirror as mirror_module
from tools.debian.errors import LockError

ARCHS = ("amd64", "arm64")
Capture = pytest.CaptureFixture[str]
EXCLUDE_DEBCONF = [{"name": "debconf", "why": "maintainer scripts never run"}]


# ---------------------------------------------------------------------------------------------- signing keys


@dataclass(frozen=True)
class Signer:
    home: Path
    keyring: Path  # the public key of the first user only, as gpgv reads it
    users: tuple[str, ...]  # everyone whose key signs


Signers = dict[str, Signer]


def gpg(home: Path) -> list[str]:
    return ["gpg", "--batch", "--homedir", str(home), "--pinentry-mode", "loopback", "--passphrase", ""]


def make_signer(*names: str) -> Signer:
    """A key for each name, all signing; only the first one's public key is in the keyring."""
    # gpg-agent's socket lives in the home directory, whose path must stay short.
    home = Path(tempfile.mkdtemp(prefix=f"gpg-{names[0]}-", dir="/tmp"))
    users = tuple(f"{name}@example.invalid" for name in names)
    for name, user in zip(names, users):
        subprocess.run([*gpg(home), "--quick-gen-key", f"{name} <{user}>", "ed25519", "sign", "never"],
                       check=True, capture_output=True)
    keyring = home / "keyring.gpg"
    keyring.write_bytes(subprocess.run([*gpg(home), "--export", users[0]], check=True, capture_output=True).stdout)
    return Signer(home, keyring, users)


@pytest.fixture(scope="session")
def signers() -> Iterator[Signers]:
    if not (shutil.which("gpg") and shutil.which("gpgconf")):
        pytest.fail("gpg, gpg-agent and gpgconf are needed to sign the test archives; install them in the build root")
    made = {
        "archive": make_signer("archive"),
        "intruder": make_signer("intruder"),
        # Signs with a key the keyring has and one it lacks, as archives do while rotating keys.
        "rotating": make_signer("rotating", "unknown"),
    }
    yield made
    for signer in made.values():
        subprocess.run(["gpgconf", "--homedir", str(signer.home), "--kill", "gpg-agent"], capture_output=True)
        shutil.rmtree(signer.home, ignore_errors=True)


def clearsign(signer: Signer, text: str) -> bytes:
    local_users = [arg for user in signer.users for arg in ("--local-user", user)]
    return subprocess.run(
        [*gpg(signer.home), *local_users, "--clearsign"], input=text.encode(), check=True, capture_output=True
    ).stdout


# ---------------------------------------------------------------------------------------------- fake archives


def stanza(name: str, version: str, arch: str, **relations: str) -> str:
    """One Packages paragraph; relations are Depends=, Pre_Depends=, Provides=."""
    filename = f"pool/main/{name[0]}/{name}/{name}_{version.replace(':', '%3a')}_{arch}.deb"
    lines = [
        f"Package: {name}", f"Version: {version}", f"Architecture: {arch}", f"Filename: {filename}",
        "Size: 1234", f"SHA256: {hashlib.sha256(filename.encode()).hexdigest()}",
    ]
    lines += [f"{key.replace('_', '-')}: {value}" for key, value in relations.items()]
    return "\n".join(lines) + "\n"


@dataclass
class Suite:
    archive: str
    name: str
    indices: dict[str, list[str]]  # "main/binary-ARCH" -> stanzas
    architectures: str = "amd64 arm64"
    extra_fields: str = ""
    compressions: tuple[str, ...] = (".xz",)
    by_hash: bool = False
    date: str = "Sat, 14 Nov 2026 08:12:34 UTC"

    def publish(self, root: Path, signer: Signer) -> None:
        dists = root / self.archive / "dists" / self.name
        sums = []
        for directory, stanzas in self.indices.items():
            plain = "\n".join(stanzas).encode()
            for suffix in self.compressions:
                data = lzma.compress(plain) if suffix == ".xz" else gzip.compress(plain, mtime=0)
                sha256 = hashlib.sha256(data).hexdigest()
                # A by-hash archive here has only by-hash files, so the tests see that they are the ones used.
                target = dists / directory / ("by-hash/SHA256/" + sha256 if self.by_hash else "Packages" + suffix)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                sums.append(f" {sha256} {len(data):8} {directory}/Packages{suffix}")
        release = (
            f"Origin: Debian\nSuite: {self.name}\nCodename: {self.name}\nDate: {self.date}\n"
            f"Architectures: {self.architectures}\nComponents: main\n"
            f"Acquire-By-Hash: {'yes' if self.by_hash else 'no'}\n{self.extra_fields}"
            "SHA256:\n" + "\n".join(sums) + "\n"
        )
        dists.mkdir(parents=True, exist_ok=True)
        (dists / "InRelease").write_bytes(clearsign(signer, release))


def per_arch(*stanza_args: tuple) -> dict[str, list[str]]:
    """The same packages for every arch, as `main/binary-ARCH` indices."""
    return {
        f"main/binary-{arch}": [stanza(name, version, arch, **relations) for name, version, relations in stanza_args]
        for arch in ARCHS
    }


def bullseye() -> Suite:
    indices = per_arch(
        ("app", "1.0", {
            "Pre_Depends": "libc6 (>= 2.28)",
            "Depends": "mime-support | media-types, awk, python3:any (>= 3.9), libold (>= 2), tool, extra",
        }),
        ("libc6", "2.31-13", {"Depends": "libgcc-s1", "Source": "glibc"}),
        # A dependency cycle with libc6; a Source with the package's own version, as a binNMU's is not.
        ("libgcc-s1", "10.2.1-6", {"Depends": "libc6 (>= 2.30)", "Source": "gcc-10 (10.2.1-6)"}),
        ("gawk", "1:5.1.0-1", {"Provides": "awk", "Depends": "libc6"}),
        ("mawk", "1.3.4-1", {"Provides": "awk"}),
        ("python3", "3.9.2-3", {}),
        ("libold", "1.0", {}),
        ("tool", "1.0", {"Depends": "debconf (>= 0.5) | debconf-2.0"}),
        ("debconf", "1.5.77", {"Provides": "debconf-2.0"}),
        ("cdebconf", "0.260", {"Provides": "debconf-2.0"}),
        ("extra", "1.0", {"Depends": "libz | libc6"}),  # libc6 is already chosen, so libz is not
        ("libz", "1.0", {}),
        ("ssl-user", "1.0", {"Depends": "libssl (>= 1.1)"}),
        ("libssl", "1.0", {}),
        ("libssl", "1.1.1", {}),
        ("old-user", "1.0", {"Depends": "libfoo (<< 2)"}),
        ("needs-new", "1.0", {"Depends": "libfoo (>= 2)"}),
        ("libfoo", "1.5", {}),
        ("libfoo", "2.0", {}),
        ("broken", "1.0", {"Depends": "libssl (>= 3)"}),
        ("vuser", "1.0", {"Depends": "virt (>= 2)"}),
        ("pa", "1.0", {"Provides": "virt (= 1)"}),
        ("pb", "1.0", {"Provides": "virt (= 2)"}),
    )
    # Without No-Support-for-Architecture-all, Architecture: all packages are only in binary-all.
    indices["main/binary-all"] = [stanza("media-types", "4.0.0", "all")]
    return Suite("debian", "bullseye", indices, architectures="all amd64 arm64", by_hash=True)


def bullseye_updates() -> Suite:
    indices = per_arch(("libold", "2.0", {}))
    for arch in ARCHS:  # with No-Support-for-Architecture-all, they are in every arch's index
        indices[f"main/binary-{arch}"].append(stanza("tzdata", "2024a-1", "all"))
    return Suite("debian", "bullseye-updates", indices, architectures="all amd64 arm64",
                 extra_fields="No-Support-for-Architecture-all: Packages\n")


def bullseye_security() -> Suite:
    indices = per_arch(("libc6", "2.31-13+deb11u5", {"Depends": "libgcc-s1", "Source": "glibc"}))
    return Suite("debian-security", "bullseye-security", indices, compressions=(".gz",))  # no .xz: the .gz fallback


@dataclass
class Mirror:
    root: Path
    suites: list[Suite]

    def publish(self, signer: Signer) -> None:
        for suite in self.suites:
            suite.publish(self.root, signer)

    def inrelease(self, archive: str, suite: str) -> Path:
        return self.root / archive / "dists" / suite / "InRelease"


@pytest.fixture
def mirror(tmp_path: Path, signers: Signers, monkeypatch: pytest.MonkeyPatch) -> Mirror:
    served = Mirror(tmp_path / "mirror", [bullseye(), bullseye_updates(), bullseye_security()])
    served.publish(signers["archive"])
    monkeypatch.setenv("DEBIAN_MIRROR", (served.root / "debian").as_uri())
    monkeypatch.setenv("DEBIAN_SECURITY_MIRROR", (served.root / "debian-security").as_uri())
    monkeypatch.delenv("BUILD_WORKSPACE_DIRECTORY", raising=False)
    monkeypatch.setattr(mirror_module, "RETRY_DELAY_S", 0.0)
    return served


SOURCES = [
    {"archive": "debian", "suite": "bullseye", "components": ["main"]},
    {"archive": "debian", "suite": "bullseye-updates", "components": ["main"]},
    {"archive": "debian-security", "suite": "bullseye-security", "components": ["main"]},
]


def write_manifest(path: Path, packages: list[str], exclude: list[dict[str, str]] | None = None) -> Path:
    doc = {"sources": SOURCES, "archs": list(ARCHS), "packages": packages, "exclude": exclude or []}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))  # JSON is YAML
    return path


@dataclass
class Run:
    code: int
    stderr: str

    def error(self) -> str:
        """The single error line; there must be exactly one and no traceback."""
        errors = [line for line in self.stderr.splitlines() if line.startswith("lock: error:")]
        assert self.code != 0 and len(errors) == 1 and "Traceback" not in self.stderr, self.stderr
        return errors[0]


def run_lock(capsys: Capture, tmp_path: Path, signer: Signer, *args: str) -> Run:
    code = lock.main([*args, "--cache-dir", str(tmp_path / "cache"), "--keyring", str(signer.keyring)])
    return Run(code, capsys.readouterr().err)


Locker = Callable[..., Run]


@pytest.fixture
def locker(capsys: Capture, tmp_path: Path, signers: Signers, mirror: Mirror) -> Locker:
    """Locks `packages` (minus `exclude`) from the mirror into tmp_path/lock.json."""

    def run(packages: list[str], exclude: list[dict[str, str]] | None = None) -> Run:
        manifest = write_manifest(tmp_path / "manifest.yaml", packages, exclude)
        return run_lock(capsys, tmp_path, signers["archive"], "--manifest", str(manifest),
                        "--lock", str(tmp_path / "lock.json"))

    return run


def locked(path: Path, arch: str = "amd64") -> dict[str, dict]:
    return {p["name"]: p for p in json.loads(path.read_text())["packages"] if p["arch"] == arch}


# ---------------------------------------------------------------------------------------------- resolution


def test_resolves_the_closure(locker: Locker, tmp_path: Path) -> None:
    run = locker(["app", "ssl-user", "old-user", "vuser"], EXCLUDE_DEBCONF)
    assert run.code == 0, run.stderr
    for arch in ARCHS:
        packages = locked(tmp_path / "lock.json", arch)
        assert sorted(packages) == [
            "app", "extra", "gawk", "libc6", "libfoo", "libgcc-s1", "libold", "libssl", "media-types",
            "old-user", "pb", "python3", "ssl-user", "tool", "vuser",
        ]
        assert packages["app"]["depends"] == ["extra", "gawk", "libc6", "libold", "media-types", "python3", "tool"]
        assert packages["extra"]["depends"] == ["libc6"]  # the alternative already chosen, not libz
        assert packages["tool"]["depends"] == []  # debconf (>= 0.5) | debconf-2.0 is excluded, not cdebconf
        assert packages["libc6"]["depends"] == ["libgcc-s1"] and packages["libgcc-s1"]["depends"] == ["libc6"]
        assert packages["libssl"]["version"] == "1.1.1"  # highest satisfying >= 1.1
        assert packages["libfoo"]["version"] == "1.5"  # highest satisfying << 2
        assert packages["vuser"]["depends"] == ["pb"]  # only pb provides virt (>= 2)
        assert packages["media-types"]["arch"] == arch  # Architecture: all, locked for each arch
        assert packages["media-types"]["filename"] == "pool/main/m/media-types/media-types_4.0.0_all.deb"
    assert "virtual awk for app: chose gawk (providers: gawk, mawk)" in run.stderr
    assert "skipped debconf (excluded) for tool" in run.stderr
    assert "locked 30 packages in" in run.stderr


def test_takes_the_highest_version_across_suites(locker: Locker, tmp_path: Path) -> None:
    assert locker(["app"], EXCLUDE_DEBCONF).code == 0
    packages = locked(tmp_path / "lock.json", "arm64")
    assert (packages["libc6"]["version"], packages["libc6"]["archive"]) == ("2.31-13+deb11u5", "debian-security")
    assert (packages["libold"]["version"], packages["libold"]["archive"]) == ("2.0", "debian")


def test_arch_all_packages_in_arch_indices(locker: Locker, tmp_path: Path) -> None:
    assert locker(["tzdata"]).code == 0
    assert locked(tmp_path / "lock.json", "arm64")["tzdata"]["version"] == "2024a-1"


def test_excluded_virtual_provider_drops_the_virtual(locker: Locker, tmp_path: Path) -> None:
    run = locker(["app"], EXCLUDE_DEBCONF + [{"name": "mawk", "why": "awk only runs in maintainer scripts"}])
    assert run.code == 0, run.stderr
    assert "gawk" not in locked(tmp_path / "lock.json") and "skipped mawk (excluded) for app" in run.stderr


def test_falls_back_to_plain_names_and_gz(locker: Locker, mirror: Mirror, signers: Signers) -> None:
    for by_hash in (mirror.root / "debian/dists/bullseye").rglob("by-hash/SHA256/*"):
        by_hash.rename(by_hash.parent.parent.parent / "Packages.xz")  # a mirror without by-hash directories
    updates = bullseye_updates()
    updates.compressions = (".xz", ".gz")
    updates.publish(mirror.root, signers["archive"])
    for xz in (mirror.root / "debian/dists/bullseye-updates").rglob("Packages.xz"):
        xz.unlink()  # listed in InRelease but missing: the .gz is used
    run = locker(["app"], EXCLUDE_DEBCONF)
    assert run.code == 0, run.stderr
    assert locked(mirror.root.parent / "lock.json")["libold"]["version"] == "2.0"


def test_lock_format(locker: Locker, tmp_path: Path) -> None:
    assert locker(["libc6"]).code == 0
    text = (tmp_path / "lock.json").read_text()
    doc = json.loads(text)
    assert text == json.dumps(doc, indent=2, sort_keys=True) + "\n"
    assert doc["version"] == lock_file.LOCK_FORMAT_VERSION == 4
    assert set(doc) == set(lock_file.LOCK_FORMAT["fields"])
    assert (doc["archs"], doc["merged_usr"]) == (list(ARCHS), False)
    # Resolved from the live mirror: each suite's Release date, no snapshot, and the snapshot times after the
    # date that a build tries in turn (an import lands hours after the Release).
    assert doc["sources"] == [{**source, "date": "20261114T081234Z", "snapshot": None, "snapshots": [
        "20261114T141234Z", "20261114T201234Z", "20261115T081234Z", "20261116T081234Z"]} for source in SOURCES]
    assert set(doc["sources"][0]) == set(lock_file.LOCK_FORMAT["source_fields"])
    assert doc["manifest_sha256"] == hashlib.sha256((tmp_path / "manifest.yaml").read_bytes()).hexdigest()
    assert [(p["arch"], p["name"]) for p in doc["packages"]] == [
        ("amd64", "libc6"), ("amd64", "libgcc-s1"), ("arm64", "libc6"), ("arm64", "libgcc-s1"),
    ]
    assert set(doc["packages"][0]) == {"name", "version", "arch", "archive", "filename", "sha256", "size", "depends",
                                       "source"}
    assert set(doc["packages"][0]) == set(lock_file.LOCK_FORMAT["package_fields"])
    assert doc["packages"][0]["filename"].startswith("pool/") and doc["packages"][0]["size"] == 1234
    # The source's version is written only when it differs from the package's.
    assert [(p["name"], p["source"], p.get("source_version")) for p in doc["packages"][:2]] == [
        ("libc6", "glibc", None), ("libgcc-s1", "gcc-10", None)]


def test_typed_lock_matches_the_declaration() -> None:
    """The reader's types name exactly the fields lock_format.json declares (the extension reads the same)."""
    declared = lock_file.LOCK_FORMAT
    assert list(lock_file.Lock.__annotations__) == declared["fields"]
    assert list(lock_file.LockedSource.__annotations__) == declared["source_fields"]
    assert list(lock_file.LockedPackage.__annotations__) == declared["package_fields"] + declared[
        "optional_package_fields"]


def test_read_lock_names_the_file_and_the_fix(locker: Locker, tmp_path: Path) -> None:
    assert locker(["libc6"]).code == 0
    path = tmp_path / "lock.json"
    doc = lock_file.read_lock(path)
    assert doc["archs"] == list(ARCHS) and lock_file.archive_state(doc) == "20261114T081234Z"
    older = {**doc, "version": 3}
    path.write_text(json.dumps(older))
    with pytest.raises(LockError, match=f"{path} has lock format version 3, but this checkout reads version 4"):
        lock_file.read_lock(path)
    broken = {**doc, "packages": [{k: v for k, v in doc["packages"][0].items() if k != "sha256"}]}
    del broken["archs"]
    path.write_text(json.dumps(broken))
    with pytest.raises(LockError, match=r"is not a complete lock: it lacks archs, libc6.sha256; restore it with "
                                        r"`git checkout -- .*`, or re-lock it with `tools/bazel run //debian_packages:update`"):
        lock_file.read_lock(path)
    path.write_text(path.read_text()[:40])
    with pytest.raises(LockError, match="not JSON, or truncated"):
        lock_file.read_lock(path)


def test_source_field_forms() -> None:
    assert indexes.parse_source_field("zlib1g", "1:1.2.13.dfsg-1", None) == ("zlib1g", None)
    assert indexes.parse_source_field("zlib1g", "1:1.2.13.dfsg-1", "zlib") == ("zlib", None)
    assert indexes.parse_source_field("busybox-static", "1:1.35.0-4+b1", "busybox (1:1.35.0-4)") == (
        "busybox", "1:1.35.0-4")
    assert indexes.parse_source_field("libgcc-s1", "12.2.0-14", "gcc-12 (12.2.0-14)") == ("gcc-12", None)
    with pytest.raises(ValueError, match="unreadable Source field"):
        indexes.parse_source_field("foo", "1", "Foo Bar (1")


def test_binnmu_source_version_in_lock(locker: Locker, mirror: Mirror, signers: Signers, tmp_path: Path) -> None:
    updates = bullseye_updates()
    for arch in ARCHS:  # a binNMU: the package's version gains +b1, its source's does not
        updates.indices[f"main/binary-{arch}"].append(
            stanza("libgcc-s1", "10.2.1-6+b1", arch, Depends="libc6", Source="gcc-10 (10.2.1-6)"))
    updates.publish(mirror.root, signers["archive"])
    assert locker(["libc6"]).code == 0
    entry = locked(tmp_path / "lock.json")["libgcc-s1"]
    assert (entry["version"], entry["source"], entry["source_version"]) == ("10.2.1-6+b1", "gcc-10", "10.2.1-6")


# ---------------------------------------------------------------------------------------------- bad input


def test_unknown_package(locker: Locker) -> None:
    error = locker(["no-such-package"]).error()
    assert "unknown package 'no-such-package'" in error and "check the name" in error


def test_unsatisfiable_dependency_names_the_chain(locker: Locker) -> None:
    error = locker(["broken"]).error()
    assert "unsatisfiable dependency manifest -> broken -> libssl (>= 3)" in error and "libssl 1.1.1" in error


def test_conflicting_versions(locker: Locker) -> None:
    error = locker(["needs-new", "old-user"]).error()
    assert "conflicting versions" in error and "old-user -> libfoo (<< 2)" in error and "libfoo 2.0" in error


def test_excluded_and_requested(locker: Locker) -> None:
    assert "both in 'packages' and in 'exclude'" in locker(["debconf"], EXCLUDE_DEBCONF).error()


@pytest.mark.parametrize(("manifest", "message"), [
    ("sources: [", "not valid YAML"),
    ("- a list", "must be a mapping"),
    (json.dumps({"sources": SOURCES, "archs": ["amd64"]}), "'packages' must be a non-empty list"),
    (json.dumps({"sources": SOURCES, "archs": "amd64", "packages": ["app"]}), "'archs' must be"),
    (json.dumps({"sources": [], "archs": ["amd64"], "packages": ["app"]}), "'sources' must be"),
    (json.dumps({"sources": [{"archive": "debian", "suite": "bullseye", "components": "main"}],
                 "archs": ["amd64"], "packages": ["app"]}), "sources[0].components"),
    (json.dumps({"sources": [{"archive": "ubuntu", "suite": "jammy", "components": ["main"]}],
                 "archs": ["amd64"], "packages": ["app"]}), "sources[0].archive 'ubuntu' is unknown"),
    (json.dumps({"sources": SOURCES, "archs": ["amd64"], "packages": ["app"], "exclude": [{"name": "x"}]}),
     "exclude[0] must have a non-empty 'name' and 'why'"),
    (json.dumps({"sources": SOURCES, "archs": ["amd64"], "packages": ["app"], "pakages": []}),
     "unknown key 'pakages'"),
])
def test_malformed_manifest(
    capsys: Capture, tmp_path: Path, signers: Signers, mirror: Mirror, manifest: str, message: str
) -> None:
    path = tmp_path / "manifest.yaml"
    path.write_text(manifest)
    run = run_lock(capsys, tmp_path, signers["archive"], "--manifest", str(path), "--lock", str(tmp_path / "lock.json"))
    assert str(path) in run.error() and message in run.error()


def test_signature_by_another_key(locker: Locker, mirror: Mirror, signers: Signers) -> None:
    bullseye_security().publish(mirror.root, signers["intruder"])
    error = locker(["app"]).error()
    assert "bullseye-security/InRelease: bad or untrusted OpenPGP signature" in error


def test_one_good_signature_among_unknown_ones_is_enough(
    capsys: Capture, tmp_path: Path, signers: Signers, mirror: Mirror
) -> None:
    mirror.publish(signers["rotating"])
    manifest = write_manifest(tmp_path / "manifest.yaml", ["libc6"])
    lock_path = tmp_path / "lock.json"
    run = run_lock(capsys, tmp_path, signers["rotating"], "--manifest", str(manifest), "--lock", str(lock_path))
    assert run.code == 0, run.stderr
    assert "bullseye/InRelease (signed by rotating <rotating@example.invalid>)" in run.stderr


def test_tampered_inrelease(locker: Locker, mirror: Mirror) -> None:
    inrelease = mirror.inrelease("debian", "bullseye-updates")
    inrelease.write_text(inrelease.read_text().replace("Codename: bullseye-updates", "Codename: bullseye-evil"))
    assert "bad or untrusted OpenPGP signature" in locker(["app"]).error()


def test_index_hash_mismatch(locker: Locker, mirror: Mirror) -> None:
    index = mirror.root / "debian-security/dists/bullseye-security/main/binary-amd64/Packages.gz"
    index.write_bytes(gzip.compress(b"Package: evil\n", mtime=0))
    error = locker(["app"]).error()
    assert "Packages.gz: SHA256" in error and "the signed InRelease says" in error


def test_unreachable_mirror(locker: Locker, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as unused:  # a loopback port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setenv("DEBIAN_MIRROR", f"http://127.0.0.1:{port}/debian")
    error = locker(["app"]).error()
    assert f"cannot fetch http://127.0.0.1:{port}/debian/dists/bullseye/InRelease" in error and "DEBIAN_MIRROR" in error


def test_unset_mirror_variable(locker: Locker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEBIAN_SECURITY_MIRROR")
    error = locker(["app"]).error()
    assert "DEBIAN_SECURITY_MIRROR is not set" in error and "tools/bazel sets it" in error


def test_expired_release_only_warns(locker: Locker, mirror: Mirror, signers: Signers) -> None:
    suite = bullseye_updates()
    suite.extra_fields += "Valid-Until: Sat, 01 Jan 2000 00:00:00 UTC\n"
    suite.publish(mirror.root, signers["archive"])
    run = locker(["app"], EXCLUDE_DEBCONF)
    assert run.code == 0 and "warning: " in run.stderr and "expired at Sat, 01 Jan 2000" in run.stderr


def test_failure_leaves_the_old_lock(locker: Locker, tmp_path: Path) -> None:
    (tmp_path / "lock.json").write_text("old lock\n")
    locker(["no-such-package"]).error()
    assert (tmp_path / "lock.json").read_text() == "old lock\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".lock.json")] == []  # no temporary left


# ---------------------------------------------------------------------------------------------- determinism and modes


@pytest.fixture
def http_mirror(mirror: Mirror, monkeypatch: pytest.MonkeyPatch) -> Iterator[Mirror]:
    """Serves the mirror over HTTP on loopback instead of file://."""
    handler = functools.partial(QuietHandler, directory=str(mirror.root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("DEBIAN_MIRROR", f"{base}/debian")
    monkeypatch.setenv("DEBIAN_SECURITY_MIRROR", f"{base}/debian-security")
    yield mirror
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_deterministic_and_cached(capsys: Capture, tmp_path: Path, signers: Signers, http_mirror: Mirror) -> None:
    manifest = write_manifest(tmp_path / "manifest.yaml", ["app", "ssl-user", "vuser"], EXCLUDE_DEBCONF)
    args = ["--manifest", str(manifest), "--lock"]
    first = run_lock(capsys, tmp_path, signers["archive"], *args, str(tmp_path / "1.json"))
    assert first.code == 0, first.stderr
    # Only InRelease files are left on the mirror: a second run must take every index from the cache.
    for path in http_mirror.root.rglob("*"):
        if path.is_file() and path.name != "InRelease":
            path.unlink()
    second = run_lock(capsys, tmp_path, signers["archive"], *args, str(tmp_path / "2.json"))
    assert second.code == 0, second.stderr
    assert (tmp_path / "1.json").read_bytes() == (tmp_path / "2.json").read_bytes()
    assert all(line.endswith("/InRelease") for line in second.stderr.splitlines() if line.startswith("fetching "))


def test_all_mode_in_the_workspace(
    capsys: Capture, tmp_path: Path, signers: Signers, mirror: Mirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = tmp_path / "workspace"
    write_manifest(workspace / "debian_packages/one/manifest.yaml", ["libc6"])
    write_manifest(workspace / "debian_packages/two/manifest.yaml", ["python3"])
    monkeypatch.setenv("BUILD_WORKSPACE_DIRECTORY", str(workspace))
    run = run_lock(capsys, tmp_path, signers["archive"], "--all", "debian_packages")
    assert run.code == 0, run.stderr
    assert sorted(locked(workspace / "debian_packages/one/lock.json")) == ["libc6", "libgcc-s1"]
    assert sorted(locked(workspace / "debian_packages/two/lock.json")) == ["python3"]
    assert "locked 6 packages in" in run.stderr


def test_snapshot_mode_records_the_snapshot(
    capsys: Capture, tmp_path: Path, signers: Signers, mirror: Mirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A snapshot service's layout: <base>/archive/<archive>/<timestamp>/, here one import at 20261120T060000Z.
    service = tmp_path / "snapshot"
    for archive in ("debian", "debian-security"):
        (service / "archive" / archive).mkdir(parents=True)
        shutil.copytree(mirror.root / archive, service / "archive" / archive / "20261120T060000Z")
    monkeypatch.setenv("DEBIAN_MIRROR", "http://127.0.0.1:9/not-used")  # the live mirror must not be read
    monkeypatch.setenv("DEBIAN_SNAPSHOT_MIRROR", service.as_uri())
    manifest = write_manifest(tmp_path / "manifest.yaml", ["libc6"])
    run = run_lock(capsys, tmp_path, signers["archive"], "--manifest", str(manifest), "--lock",
                   str(tmp_path / "lock.json"), "--snapshot-time", "20261120T060000Z")
    assert run.code == 0, run.stderr
    sources = json.loads((tmp_path / "lock.json").read_text())["sources"]
    assert [(s["snapshot"], s["date"]) for s in sources] == [("20261120T060000Z", "20261114T081234Z")] * 3
    assert "resolving against the snapshot service in DEBIAN_SNAPSHOT_MIRROR at 20261120T060000Z" in run.stderr
    assert "127.0.0.1:9" not in run.stderr


def test_snapshot_redirect_names_the_import(
    capsys: Capture, tmp_path: Path, signers: Signers, mirror: Mirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service that redirects a time to the import at or before it: the lock records that import."""
    served = ImportRedirects(mirror.root, "20261120T060000Z")
    monkeypatch.setenv("DEBIAN_SNAPSHOT_MIRROR", served.base)
    manifest = write_manifest(tmp_path / "manifest.yaml", ["libc6"])
    try:
        run = run_lock(capsys, tmp_path, signers["archive"], "--manifest", str(manifest), "--lock",
                       str(tmp_path / "lock.json"), "--snapshot-time", "20261121T000000Z")
    finally:
        served.stop()
    assert run.code == 0, run.stderr
    sources = json.loads((tmp_path / "lock.json").read_text())["sources"]
    assert {s["snapshot"] for s in sources} == {"20261120T060000Z"}


class ImportRedirects:
    """Serves `root` as the one import `stamp` of a snapshot service that redirects later times to it."""

    def __init__(self, root: Path, stamp: str) -> None:
        class Handler(QuietHandler):
            def do_GET(self) -> None:
                parts = self.path.split("/")  # "", "archive", archive, timestamp, ...
                if len(parts) > 4 and parts[1] == "archive" and parts[3] != stamp:
                    self.send_response(302)
                    self.send_header("Location", "/".join(parts[:3] + [stamp] + parts[4:]))
                    self.end_headers()
                    return
                if len(parts) > 4:
                    self.path = "/" + "/".join([parts[2]] + parts[4:])
                super().do_GET()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_bad_snapshot_time(capsys: Capture, tmp_path: Path, signers: Signers, mirror: Mirror,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = write_manifest(tmp_path / "manifest.yaml", ["libc6"])
    args = ["--manifest", str(manifest), "--lock", str(tmp_path / "lock.json"), "--snapshot-time", "yesterday"]
    assert "--snapshot-time needs DEBIAN_SNAPSHOT_MIRROR" in run_lock(capsys, tmp_path, signers["archive"], *args).error()
    monkeypatch.setenv("DEBIAN_SNAPSHOT_MIRROR", "http://127.0.0.1:9")
    assert "is not a snapshot timestamp" in run_lock(capsys, tmp_path, signers["archive"], *args).error()
    assert not (tmp_path / "lock.json").exists()


def test_groups_are_resolved_and_carried_by_the_lock(
    capsys: Capture, tmp_path: Path, signers: Signers, mirror: Mirror
) -> None:
    path = tmp_path / "manifest.yaml"
    path.write_text(json.dumps({"sources": SOURCES, "archs": ["amd64"],
                                "groups": {"system": ["libc6"], "python": ["python3"]}}))
    run = run_lock(capsys, tmp_path, signers["archive"], "--manifest", str(path), "--lock", str(tmp_path / "lock.json"))
    assert run.code == 0, run.stderr
    assert json.loads((tmp_path / "lock.json").read_text())["groups"] == {"system": ["libc6"], "python": ["python3"]}
    assert sorted(locked(tmp_path / "lock.json")) == ["libc6", "libgcc-s1", "python3"]


def test_excluding_a_library_a_group_needs_is_refused(
    capsys: Capture, tmp_path: Path, signers: Signers, mirror: Mirror
) -> None:
    """As moving libc6 from the packages to 'exclude' would: the images' programs could not start."""
    (tmp_path / "lock.json").write_text("good lock\n")
    path = tmp_path / "manifest.yaml"
    path.write_text(json.dumps({
        "sources": SOURCES, "archs": ["amd64"], "groups": {"system": ["extra"]},
        "exclude": [{"name": "libc6", "why": "a mistake"}]}))
    run = run_lock(capsys, tmp_path, signers["archive"], "--manifest", str(path), "--lock", str(tmp_path / "lock.json"))
    error = run.error()
    assert "the 'system' group needs libc6 (extra -> libc6), but 'exclude' drops it" in error
    assert "Remove libc6 from 'exclude'" in error
    assert (tmp_path / "lock.json").read_text() == "good lock\n"


def test_groups_and_packages_together_are_refused(
    capsys: Capture, tmp_path: Path, signers: Signers, mirror: Mirror
) -> None:
    path = tmp_path / "manifest.yaml"
    path.write_text(json.dumps({"sources": SOURCES, "archs": ["amd64"], "groups": {"a": ["libc6"]}, "packages": ["x"]}))
    run = run_lock(capsys, tmp_path, signers["archive"], "--manifest", str(path), "--lock", str(tmp_path / "lock.json"))
    assert "use 'groups' or 'packages', not both" in run.error()


def test_unpaired_manifest_and_lock(capsys: Capture, tmp_path: Path, signers: Signers, mirror: Mirror) -> None:
    run = run_lock(capsys, tmp_path, signers["archive"], "--manifest", "a.yaml")
    assert "give one --lock for each --manifest" in run.error()


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
