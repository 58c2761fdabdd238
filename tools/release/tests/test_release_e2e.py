"""`//:release` end to end, on 127.0.0.1: one package of one release gets a new version whose changelog names a CVE.

1. A signed throwaway Debian archive (a throwaway gpg key; tools/debian/tests/fixture_archive.py) serves the real
   .debs of the committed bullseye lock (this test's data, from the lock hub), with Packages stanzas made from the
   debs' own control data, in the lock's suites, dated as the lock records them.
2. A copy of the workspace, trimmed so the release builds few images: python/config.bzl holds 3.9 (bullseye,
   amd64) and one more entry, 9.99 (experimental, so its tags are its own), on "frozen", a copy of bullseye's
   manifest without the bullseye-updates suite; debian_packages/ holds only those two; the build root's pin file
   is the copy's (its provenance reads it). The update is given the fixture's key (--keyring) and build root pins
   the fixture serves (--build-root-packages, one bullseye package), and the mirrors are the fixture's
   (DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR).
3. The copy's update locks "frozen" from the fixture (and must leave the committed bullseye lock byte for byte as
   it is, which proves the fixture serves what Debian served), and `//:push --key` pushes and signs every index to
   docker-registry (htpasswd; the credentials in a DOCKER_CONFIG outside the workspace).
4. bullseye-updates then gets python3-wheel (in the -dev variants only) rebuilt with a bumped version and a
   changelog entry naming CVE-2026-99999, with a newer Date, as Debian publishes a stable update.
5. tools/release/release.py's release(), driven through the nested Bazel with a cosign key, must push exactly the
   3.9 indexes (bullseye's archive state moved, so every 3.9 index has a new digest: its annotation and its dated
   tag follow the lock's newest suite date) and no 9.99 one (frozen names no suite that moved: its tags keep their
   digests); RELEASE_NOTES.md names python3-wheel old -> new and the CVE; `//:verify` ran and passed.
6. A second release says `up to date` and pushes nothing: every tag keeps its digest.

It prints its wall time and the release's ("time to patch" for one package) to stderr.

Why two releases rather than one package in only the -dev closure: an update always moves its release's archive
state (the newest Date of its suites), which every image of that release carries (the debian.archive.timestamp
annotation, the dated tag), so within one release every index is affected; "only the affected tags" is
observable across releases.
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from tools.debian.tests.fixture_archive import Server, Signer, deb_stanza, fail_without, make_signer, write_suite
from tools.oci.tests.local_registry import crane_login, running_registry
from tools.release import release as release_tool
from tools.remote.nested_bazel import NestedBazel, copy_checkout, workspace_from_runfiles

RELEASE = os.environ.get("E2E_RELEASE", "")
ARCH = "amd64"
# The release that does not see the update: RELEASE's manifest without the suite the update lands in.
FROZEN = "frozen"
# The package that moves, the suite it moves in, and the CVE its changelog names.
MOVED = "python3-wheel"
MOVED_SUITE = f"{RELEASE}-updates"
CVE = "CVE-2026-99999"
UPDATE = "//debian_packages:update"
# Besides what is not source: a release's scratch directory, which it makes in the workspace.
RELEASE_SCRATCH = ".release-*"
# Fixed: the rebuilt .deb's mtimes (and dpkg-deb's from SOURCE_DATE_EPOCH), so it is the same on every run.
EPOCH = 1795000000
COSIGN_PASSWORD = "throwaway-e2e-password"
# Packages the manifest excludes are never downloaded, so the hub has no .deb of them, but the resolver reads the
# virtual names they provide (an excluded package drops them): bullseye's mawk provides awk. Each gets a stanza
# with that Provides and no file in the pool.
EXCLUDED_PROVIDES = {"mawk": "awk"}
# One nested Bazel command; a hang fails here rather than at the test's timeout.
COMMAND_TIMEOUT_S = 900


# ---------------------------------------------------------------------------------------------- the archive


def lock_of(workspace: Path, release: str) -> dict:
    return json.loads((workspace / "debian_packages" / release / "lock.json").read_text())


def rfc2822(timestamp: str) -> str:
    when = datetime.datetime.strptime(timestamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    return email.utils.format_datetime(when, usegmt=True)


def debs_by_sha256() -> dict[str, Path]:
    listed = os.environ.get("E2E_DEBS", "").split()
    if not RELEASE or not listed:
        pytest.fail("E2E_RELEASE and E2E_DEBS are empty: run this test with `tools/bazel test "
                    "//tools/release:release_e2e_test`, whose BUILD target lists the lock's .debs")
    return {hashlib.sha256(Path(path).read_bytes()).hexdigest(): Path(path) for path in listed}


class Archive:
    """The fixture's two archives (debian, debian-security) under one loopback server, one suite per lock source."""

    def __init__(self, root: Path, lock: dict, signer: Signer) -> None:
        self.root = root
        self.signer = signer
        self.sources = lock["sources"]
        available = debs_by_sha256()
        missing = [p["name"] for p in lock["packages"] if p["sha256"] not in available]
        if missing:
            pytest.fail(f"the test's data lacks the locked .debs of {missing}: the BUILD target's list is stale")
        # Each package in the first suite of its archive (the lock takes the highest version of all suites).
        self.suites: dict[str, list[str]] = {source["suite"]: [] for source in self.sources}
        for package in lock["packages"]:
            suite = next(s["suite"] for s in self.sources if s["archive"] == package["archive"])
            deb = self.put(package["archive"], package["filename"], available[package["sha256"]].read_bytes())
            self.suites[suite].append(deb_stanza(deb, package["filename"]))
        first = self.sources[0]
        for name, provides in EXCLUDED_PROVIDES.items():
            self.suites[first["suite"]].append(
                f"Package: {name}\nVersion: 0-excluded\nArchitecture: {ARCH}\nProvides: {provides}\n"
                f"Filename: pool/main/{name[0]}/{name}/{name}_0-excluded_{ARCH}.deb\nSize: 0\n"
                f"SHA256: {hashlib.sha256(b'').hexdigest()}\n")
        self.dates = {source["suite"]: source["date"] for source in self.sources}
        for source in self.sources:
            self.publish(source["suite"])

    def put(self, archive: str, filename: str, data: bytes) -> Path:
        path = self.root / archive / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def publish(self, suite: str) -> None:
        archive = next(s["archive"] for s in self.sources if s["suite"] == suite)
        write_suite(self.root / archive, suite, ARCH, sorted(self.suites[suite]), rfc2822(self.dates[suite]),
                    self.signer)


def bumped_deb(original: Path, work: Path, version: str, cve: str, when: str) -> Path:
    """The .deb again, with `version` and a changelog entry naming `cve` on top of its own changelog."""
    root = work / "tree"
    work.mkdir(parents=True)
    unpacked = subprocess.run(["dpkg-deb", "-R", str(original), str(root)], capture_output=True, text=True)
    assert unpacked.returncode == 0, f"dpkg-deb -R {original.name}: {unpacked.stderr}"
    control = (root / "DEBIAN/control").read_text()
    package = re.search(r"^Package: (\S+)$", control, re.M)[1]
    source = re.search(r"^Source: (\S+)", control, re.M)
    (root / "DEBIAN/control").write_text(re.sub(r"^Version: .*$", f"Version: {version}", control, flags=re.M))
    changelog = root / "usr/share/doc" / package / "changelog.Debian.gz"
    if not changelog.is_file() or changelog.is_symlink():
        pytest.fail(f"{original.name} has no {changelog.relative_to(root)} to add the entry to; pick another MOVED")
    entry = (f"{source[1] if source else package} ({version}) {MOVED_SUITE}; urgency=high\n\n"
             f"  * Fixture security update: fixes {cve} (a throwaway id, for the release test).\n\n"
             f" -- Fixture Maintainers <fixture@example.invalid>  {when}\n\n")
    changelog.write_bytes(gzip.compress(entry.encode() + gzip.decompress(changelog.read_bytes()), mtime=0))
    md5sums = root / "DEBIAN/md5sums"
    if md5sums.is_file():
        lines = []
        for line in md5sums.read_text().splitlines():
            digest, path = line.split(None, 1)
            if path == str(changelog.relative_to(root)):
                digest = hashlib.md5(changelog.read_bytes()).hexdigest()
            lines.append(f"{digest}  {path}")
        md5sums.write_text("\n".join(lines) + "\n")
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            os.utime(path, (EPOCH, EPOCH))
    out = work / f"{package}_{version}.deb"
    built = subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(out)],
                           capture_output=True, text=True, env={**os.environ, "SOURCE_DATE_EPOCH": str(EPOCH)})
    assert built.returncode == 0, f"dpkg-deb --build {out.name}: {built.stderr}"
    return out


# ---------------------------------------------------------------------------------------------- the workspace


def trimmed_copy(source: Path, target: Path) -> None:
    copy_checkout(source, target, RELEASE_SCRATCH)
    releases = target / "debian_packages"
    for path in releases.iterdir():
        if path.is_dir() and path.name != RELEASE:
            shutil.rmtree(path)
    manifest = yaml.safe_load((releases / RELEASE / "manifest.yaml").read_text())
    kept = [s for s in manifest["sources"] if s["suite"] != MOVED_SUITE]
    if len(kept) == len(manifest["sources"]):
        pytest.fail(f"{RELEASE}'s manifest names no {MOVED_SUITE} suite for the update to land in")
    (releases / FROZEN).mkdir()
    (releases / FROZEN / "manifest.yaml").write_text(
        "# bullseye's manifest without its -updates suite: a release the test's update does not touch.\n"
        + yaml.safe_dump({**manifest, "sources": kept}, sort_keys=False))
    config = target / "python/config.bzl"
    text = config.read_text()
    entry = re.search(rf'^    "(\d+\.\d+)": _python\("{RELEASE}", "(\d+\.\d+)".*$', text, re.M)
    if not entry:
        pytest.fail(f"python/config.bzl has no entry on {RELEASE}; update this test")
    version = entry[2]
    # The architectures come from the releases' manifests (bullseye's, copied into FROZEN's): amd64 only.
    pythons = (f'PYTHONS = {{\n    "{entry[1]}": _python("{RELEASE}", "{version}"),\n'
               f'    "9.99": _python("{FROZEN}", "{version}", experimental = True),\n}}')
    text, count = re.subn(r"^PYTHONS = \{\n.*?^\}", pythons, text, flags=re.M | re.S)
    assert count == 1, "python/config.bzl has no `PYTHONS = { ... }` block; update this test"
    config.write_text(text)


class Nested:
    """The `bazel` callable release() takes: the nested Bazel in the copy, every command recorded."""

    def __init__(self, bazel: NestedBazel, env: dict[str, str], update_flags: list[str], log: Path) -> None:
        self.bazel = bazel
        self.env = env
        self.update_flags = update_flags
        self.log = log
        self.calls: list[tuple[tuple[str, ...], int]] = []

    def __call__(self, *args: str, capture: bool = False) -> tuple[int, str]:
        command, rest = args[0], list(args[1:])
        if command == "run" and rest[:1] == [UPDATE]:
            # The fixture's key, as a user of another archive passes theirs; and build root pins the fixture serves
            # (the copy's own pin forky's packages, which the provenance reads, so they stay).
            rest = [*rest, "--"] if "--" not in rest else rest
            index = rest.index("--") + 1
            rest[index:index] = self.update_flags
        quiet = ["--noshow_progress", "--color=no", "--curses=no"]
        argv = self.bazel.argv(command, *quiet, *rest)
        print(f"e2e: $ bazel {command} {' '.join(rest)}", file=sys.stderr, flush=True)
        started = time.monotonic()
        with open(self.log, "a") as log:
            done = subprocess.run(argv, cwd=self.bazel.workspace, env=self.env, stdout=subprocess.PIPE, stderr=log,
                                  text=True, timeout=COMMAND_TIMEOUT_S)
        self.bazel.started = True
        print(f"e2e:   exit {done.returncode} in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
        self.calls.append((args, done.returncode))
        if done.returncode != 0:
            print(self.log.read_text()[-6000:], file=sys.stderr)
        sys.stdout.write(done.stdout)
        return done.returncode, done.stdout if capture else ""

    def pushed(self, since: int = 0) -> list[str]:
        return [args[1] for args, _ in self.calls[since:] if args[0] == "run" and args[1].endswith("_push")]


def release_indexes(bazel: Nested) -> list[release_tool.Index]:
    """//:release's --index table, as the copy's BUILD file gives it."""
    status, build = bazel("query", "--output=build", "//:release", capture=True)
    assert status == 0, "cannot query //:release in the copy"
    return [release_tool.parse_index(spec) for spec in re.findall(r'"--index=([^"]+)"', build)]


def registry_digests(registry: str, tags: dict[str, list[str]], extra: list[str] = ()) -> dict[str, str]:
    """Tag -> the digest the registry serves under it (every tag of the table, and `extra`)."""
    found = {}
    for tag in sorted({t for index_tags in tags.values() for t in index_tags} | set(extra)):
        done = subprocess.run(["crane", "digest", f"{registry}/python:{tag}"], capture_output=True, text=True)
        assert done.returncode == 0, f"{registry}/python:{tag}: {done.stderr}"
        found[tag] = done.stdout.strip()
    return found


def run_release(bazel: Nested, workspace: Path, indexes, registry: str, key: Path, today: str) -> tuple[int, str, float]:
    out = io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(out):
        code = release_tool.release(bazel, workspace, indexes, registry, str(key), "release", today)
    seconds = time.monotonic() - started
    print(out.getvalue(), file=sys.stderr)
    return code, out.getvalue(), seconds


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict]:
    for tool, why in (("bazel", "run the nested Bazel"), ("dpkg-deb", "read and rebuild the .debs"),
                      ("gpg", "sign the fixture archive"), ("gpgconf", "stop the signing agent"),
                      ("gpgv", "let the update verify the archive"), ("docker-registry", "serve the registry"),
                      ("crane", "read the registry's digests"), ("cosign", "sign the images")):
        fail_without(tool, why)
    signer = make_signer("gpg-e2e-")
    servers: list[Server] = []
    nested: NestedBazel | None = None
    try:
        workspace = tmp_path / "workspace"
        trimmed_copy(workspace_from_runfiles(dict(os.environ)), workspace)
        archive = Archive(tmp_path / "archive", lock_of(workspace, RELEASE), signer)
        servers.append(Server(tmp_path / "archive"))
        keys = tmp_path / "keys"
        keys.mkdir()
        made = subprocess.run(["cosign", "generate-key-pair"], cwd=keys, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, env={**os.environ, "COSIGN_PASSWORD": COSIGN_PASSWORD})
        assert made.returncode == 0, made.stderr
        scratch = Path(os.environ.get("TEST_TMPDIR", tmp_path))
        nested = NestedBazel(workspace, scratch, "e2e")
        (scratch / "home").mkdir(exist_ok=True)
        with running_registry(with_auth=True) as registry:
            docker = tmp_path / "docker"  # outside the workspace, as a user's credentials are
            os.environ["DOCKER_CONFIG"] = str(docker)
            crane_login(registry)
            os.environ["COSIGN_PASSWORD"] = COSIGN_PASSWORD  # release() reads the key's public half with it
            env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "HOME": str(scratch / "home"),
                   "LANG": "C.UTF-8", "DOCKER_CONFIG": str(docker), "COSIGN_PASSWORD": COSIGN_PASSWORD,
                   "DEBIAN_MIRROR": f"{servers[0].url}/debian",
                   "DEBIAN_SECURITY_MIRROR": f"{servers[0].url}/debian-security"}
            # The build root's pins for the update: one package the fixture serves, outside the workspace.
            base = next(p for p in lock_of(workspace, RELEASE)["packages"] if p["archive"] == "debian")
            pins = tmp_path / "build_root.packages"
            pins.write_text(f"suite {RELEASE}\n{base['name']}={base['version']}\n")
            flags = [f"--keyring={signer.keyring}", f"--build-root-packages={pins}"]
            bazel = Nested(nested, env, flags, tmp_path / "bazel.log")
            yield {"workspace": workspace, "archive": archive, "registry": registry, "key": keys / "cosign.key",
                   "bazel": bazel, "tmp": tmp_path}
    finally:
        # Nothing may outlive the test: the nested server, the HTTP server, the gpg agent (the registry is
        # stopped by its context manager).
        if nested is not None:
            nested.shutdown()
        for server in servers:
            server.stop()
        signer.stop()


def test_release_pushes_only_what_the_update_moved(world: dict) -> None:
    started = time.monotonic()
    workspace, archive, registry, key, bazel = (world[k] for k in ("workspace", "archive", "registry", "key", "bazel"))
    committed = (workspace / "debian_packages" / RELEASE / "lock.json").read_bytes()

    # Initial state: frozen locked from the fixture; the committed lock is what the fixture resolves to.
    status, _ = bazel("run", UPDATE)
    assert status == 0, "the initial update against the fixture failed; its log is above"
    assert (workspace / "debian_packages" / RELEASE / "lock.json").read_bytes() == committed, (
        f"the fixture re-locked {RELEASE} differently from the committed lock: it does not serve what Debian did")
    frozen = lock_of(workspace, FROZEN)
    assert {p["sha256"] for p in frozen["packages"]} == {p["sha256"] for p in json.loads(committed)["packages"]}
    status, _ = bazel("run", "//:push", "--", "--repository", registry, "--key", str(key))
    assert status == 0, "the initial signed push failed; its log is above"
    indexes = release_indexes(bazel)
    tags_before = release_tool.image_tags(bazel)
    before = registry_digests(registry, tags_before)
    ours = [i.label for i in indexes if not i.label.startswith("//python:9.99")]
    theirs = [i.label for i in indexes if i.label.startswith("//python:9.99")]
    assert ours and theirs, f"the trimmed matrix has no indexes of both releases: {[i.label for i in indexes]}"
    initial_s = time.monotonic() - started

    # The update: MOVED, rebuilt with a bumped version and a changelog naming CVE, lands in MOVED_SUITE.
    pin = next(p for p in json.loads(committed)["packages"] if p["name"] == MOVED)
    assert pin["archive"] == "debian", f"{MOVED} is not from the debian archive, where {MOVED_SUITE} is"
    new_version = pin["version"] + "+fixture1"
    newest = max(source["date"] for source in archive.sources)
    moved_date = (datetime.datetime.strptime(newest, "%Y%m%dT%H%M%SZ") + datetime.timedelta(days=1)).strftime(
        "%Y%m%dT%H%M%SZ")
    original = archive.root / "debian" / pin["filename"]
    deb = bumped_deb(original, world["tmp"] / "bump", new_version, CVE, rfc2822(moved_date))
    filename = pin["filename"].replace(f"_{pin['version'].split(':')[-1]}_", f"_{new_version.split(':')[-1]}_")
    assert filename != pin["filename"]
    path = archive.put("debian", filename, deb.read_bytes())
    archive.suites[MOVED_SUITE].append(deb_stanza(path, filename))
    archive.dates[MOVED_SUITE] = moved_date
    archive.publish(MOVED_SUITE)
    today = moved_date[:4] + "-" + moved_date[4:6] + "-" + moved_date[6:8]

    # The first release: only bullseye's indexes, signed, verified, with the notes.
    code, output, release_s = run_release(bazel, workspace, indexes, registry, key, today)
    assert code == 0, "the release failed; its output is above"
    assert sorted(bazel.pushed()) == sorted(i.push for i in indexes if i.label in ours), (
        f"the release must push exactly the {RELEASE} indexes; it pushed {bazel.pushed()}")
    affected_line = next(line for line in output.splitlines() if "affected (" in line)
    for label in theirs:
        assert label in affected_line.split("unaffected")[1], f"{label} not named unaffected: {affected_line}"
    verify = [rc for args, rc in bazel.calls if args[:2] == ("run", "//:verify")]
    assert verify == [0], f"the rebuild check must have run once and passed: {verify}"
    relocked = {p["name"]: p["version"] for p in lock_of(workspace, RELEASE)["packages"]}
    assert relocked[MOVED] == new_version
    tags_after = release_tool.image_tags(bazel)
    old_dated = sorted({t for label in ours for t in tags_before[label]} - {t for label in ours for t in tags_after[label]})
    after = registry_digests(registry, tags_after, extra=old_dated)
    for label in theirs:
        assert tags_after[label] == tags_before[label]
        for tag in tags_before[label]:
            assert after[tag] == before[tag], f"{tag} ({label}, unaffected) moved: {before[tag]} -> {after[tag]}"
    for label in ours:
        for tag in tags_after[label]:
            assert after[tag] != before.get(tag), f"{tag} ({label}) still serves the image before the update"
    for tag in old_dated:  # the dated tags never move
        assert after[tag] == before[tag], f"the dated tag {tag} moved"
    assert old_dated, "the update moved the archive state, so each index has a new dated tag"
    notes = (workspace / release_tool.NOTES).read_text()
    newest_entry = notes.split("\n## ")[1]
    assert newest_entry.startswith(today), newest_entry[:200]
    row = f"| {RELEASE} | {MOVED} | {ARCH} | {pin['version']} | {new_version} | {CVE} |"
    assert row in newest_entry, f"the notes' newest entry lacks `{row}`:\n{newest_entry}"
    assert newest_entry.count(f"| {RELEASE} |") == 1, f"only {MOVED} moved:\n{newest_entry}"

    # The second release: nothing moved.
    since = len(bazel.calls)
    code, output, again_s = run_release(bazel, workspace, indexes, registry, key, today)
    assert code == 0 and "up to date" in output.splitlines(), output
    assert bazel.pushed(since) == [], f"the second release pushed {bazel.pushed(since)}"
    assert registry_digests(registry, tags_after, extra=old_dated) == after, "a tag moved in the second release"
    assert (workspace / release_tool.NOTES).read_text() == notes

    print(f"e2e: initial lock, build and signed push of {len(indexes)} indexes: {initial_s:.0f} s; release of one "
          f"package ({MOVED} {pin['version']} -> {new_version}, {CVE}; pushed {len(ours)} indexes, "
          f"{len(theirs)} unaffected) — time to patch: {release_s:.0f} s; second release (up to date): "
          f"{again_s:.0f} s; test wall time {time.monotonic() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    scratch = os.environ.get("TEST_TMPDIR")
    basetemp = [f"--basetemp={Path(scratch) / 'pytest'}"] if scratch else []
    raise SystemExit(pytest.main([__file__, "-q", "-s", "-p", "no:cacheprovider", *basetemp]))
