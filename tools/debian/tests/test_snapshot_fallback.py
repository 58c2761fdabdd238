"""End to end: a nested Bazel build of a tiny image falls back to the snapshot service for a moved pin.

The fixture builds three real .debs, publishes them as a signed Debian archive and as a snapshot service's
view of that archive (both served on 127.0.0.1 only), copies the project's tools/ into a new workspace,
locks a manifest there with the project's own lock tool through the snapshot, and builds an image from the
lock with the project's rules. Then one pinned .deb is moved on the live mirror, as Debian does when a suite
moves on, and the build must fail with the message that says what to do, succeed with the identical image
when DEBIAN_SNAPSHOT_MIRROR is set, and the update command must report and re-pin the moved package.

Each build that must not see an earlier download runs in its own output base and repository cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from tools.debian.tests.fixture_archive import Server, Signer, closed_port, fail_without, make_signer, write_suite

SUITE = "fixture"
ARCH = "amd64"
# The snapshot the lock is resolved at; the service below holds one import at exactly this time.
TIMESTAMP = "20261120T060000Z"
RELEASE_DATE = "Fri, 20 Nov 2026 05:00:00 UTC"
# Every file in the .debs gets this mtime, and dpkg-deb its ar timestamps from SOURCE_DATE_EPOCH.
EPOCH = 1795000000
UPDATE_COMMAND = "tools/bazel run //debian_packages:update"
# The lock format this checkout writes and reads (a data file of this test, as every file under tools/ is).
LOCK_FORMAT_VERSION = json.loads((Path(__file__).parent.parent / "lock_format.json").read_text())["version"]
LOCK = "debian_packages/fixture/lock.json"
MOVED = "fixture-lib"
# A nested build is a cold Bazel server in a new output base: generous, but bounded so a hang fails here.
BAZEL_TIMEOUT_S = 180
# A server left behind by a crashed test exits on its own this soon after its last command.
MAX_IDLE_S = 60


@dataclass(frozen=True)
class DebSpec:
    name: str
    version: str
    files: dict[str, tuple[int, str]]  # path in the image -> (mode, content)
    depends: str = ""

    @property
    def filename(self) -> str:
        return f"pool/main/{self.name[0]}/{self.name}/{self.name}_{self.version}_{ARCH}.deb"


def copyright_file(name: str) -> dict[str, tuple[int, str]]:
    return {f"usr/share/doc/{name}/copyright": (0o644, f"{name}: test fixture, no rights reserved\n")}


BASE = DebSpec("fixture-base", "1.0-1", {
    "etc/fixture-release": (0o644, "fixture 1\n"),
    **copyright_file("fixture-base"),
})
LIB_OLD = DebSpec(MOVED, "1.0-1", {
    "usr/lib/fixture/greeting": (0o644, "hello from 1.0-1\n"),
    **copyright_file(MOVED),
})
# What the live mirror serves once the suite has moved on: the old version is gone from it.
LIB_NEW = DebSpec(MOVED, "1.0-2", {
    "usr/lib/fixture/greeting": (0o644, "hello from 1.0-2\n"),
    **copyright_file(MOVED),
})
APP = DebSpec("fixture-app", "2.0-1", {
    "usr/bin/fixture-app": (0o755, "#!/bin/sh\ncat /usr/lib/fixture/greeting\n"),
    **copyright_file("fixture-app"),
}, depends=f"{MOVED} (>= 1.0), fixture-base")

MANIFEST = f"""\
# The nested workspace's one release: the fixture archive's suite, locked by tools/debian/lock.py.
sources:
  - archive: debian
    suite: {SUITE}
    components: [main]
archs: [{ARCH}]
packages: [fixture-app]
exclude: []
"""

IMAGE_BUILD = """\
load("@debian_releases//:releases.bzl", "RELEASES")
load("//tools/debian:defs.bzl", "deb_closure", "deb_layer")
load("//tools/oci:defs.bzl", "oci_image")

_PACKAGES = RELEASES["fixture"].packages["amd64"]

deb_layer(
    name = "debs",
    debs = [_PACKAGES[name]["deb"] for name in deb_closure(_PACKAGES, ["fixture-app"])],
)

oci_image(
    name = "image",
    tars = [":debs"],
    entrypoint = ["/usr/bin/fixture-app"],
)
"""


# ---------------------------------------------------------------------------------------------- the archive


def build_deb(spec: DebSpec, work: Path) -> bytes:
    """A real .deb from dpkg-deb, byte for byte the same on every run."""
    root = work / f"{spec.name}_{spec.version}"
    (root / "DEBIAN").mkdir(parents=True)
    control = (f"Package: {spec.name}\nVersion: {spec.version}\nArchitecture: {ARCH}\n"
               "Maintainer: Fixture Maintainers <fixture@example.invalid>\n"
               + (f"Depends: {spec.depends}\n" if spec.depends else "")
               + f"Description: {spec.name}, a test fixture\n")
    (root / "DEBIAN/control").write_text(control)
    for path, (mode, content) in spec.files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        target.chmod(mode)
    # Directory modes and every mtime are fixed, so neither the umask nor the clock shows in the .deb.
    for path in [root, *root.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
        os.utime(path, (EPOCH, EPOCH))
    out = work / f"{spec.name}_{spec.version}.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(out)],
        check=True, capture_output=True, env={**os.environ, "SOURCE_DATE_EPOCH": str(EPOCH)},
    )
    return out.read_bytes()


def packages_stanza(spec: DebSpec, deb: bytes) -> str:
    lines = [f"Package: {spec.name}", f"Version: {spec.version}", f"Architecture: {ARCH}",
             "Maintainer: Fixture Maintainers <fixture@example.invalid>"]
    if spec.depends:
        lines.append(f"Depends: {spec.depends}")
    lines += [f"Filename: {spec.filename}", f"Size: {len(deb)}", f"SHA256: {hashlib.sha256(deb).hexdigest()}",
              f"Description: {spec.name}, a test fixture"]
    return "\n".join(lines) + "\n"


def publish(archive: Path, specs: list[DebSpec], debs: dict[str, bytes], signer: Signer) -> None:
    """A Debian archive at `archive` (dists/ and pool/) indexing exactly `specs`, with a signed InRelease."""
    shutil.rmtree(archive / "dists", ignore_errors=True)
    stanzas = []
    for spec in sorted(specs, key=lambda spec: spec.name):
        deb = debs[spec.filename]
        target = archive / spec.filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(deb)
        stanzas.append(packages_stanza(spec, deb))
    write_suite(archive, SUITE, ARCH, stanzas, RELEASE_DATE, signer)


# ---------------------------------------------------------------------------------------------- nested Bazel


@dataclass
class BazelResult:
    code: int
    output: str  # stdout and stderr together, as a user sees them

    def tail(self) -> str:
        return "\n".join(self.output.splitlines()[-60:])


@dataclass
class NestedBazel:
    """Bazel in the nested workspace, one output base per name, all under the test's own directory."""

    bazel: str
    workspace: Path
    scratch: Path
    home: Path
    output_bases: list[Path] = field(default_factory=list)

    def build(self, base: str, mirror: str, snapshot: str | None = None) -> BazelResult:
        """`bazel build //image` in output base `base`, with a repository cache of its own."""
        output_base = self.scratch / f"out-{base}"
        if output_base not in self.output_bases:
            self.output_bases.append(output_base)
        # Only what Bazel needs: no TEST_* variable (with TEST_TMPDIR Bazel would pick its own output root),
        # and no mirror from the outer environment; the mirrors are passed as --repo_env alone.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home), "LANG": "C.UTF-8",
               "TMPDIR": str(self.scratch / "tmp")}
        argv = [*self.startup(output_base), "build", "--noshow_progress", "--color=no", "--curses=no",
                # Per output base, so no earlier download of a moved .deb can stand in for the mirror.
                f"--repository_cache={self.scratch / ('repository-cache-' + base)}",
                f"--repo_env=DEBIAN_MIRROR={mirror}",
                *([f"--repo_env=DEBIAN_SNAPSHOT_MIRROR={snapshot}"] if snapshot else []),
                "//image"]
        try:
            done = subprocess.run(argv, cwd=self.workspace, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, timeout=BAZEL_TIMEOUT_S)
        except subprocess.TimeoutExpired as timeout:
            pytest.fail(f"`{' '.join(argv)}` did not finish in {BAZEL_TIMEOUT_S} s:\n{timeout.output}")
        return BazelResult(done.returncode, done.stdout)

    def startup(self, output_base: Path) -> list[str]:
        return [self.bazel, f"--output_user_root={self.scratch / 'user-root'}", f"--output_base={output_base}",
                f"--max_idle_secs={MAX_IDLE_S}"]

    def image_digest(self) -> str:
        """The manifest digest of the image the last successful build wrote (its layout's index.json)."""
        index = json.loads((self.workspace / "bazel-bin/image/image/index.json").read_text())
        [manifest] = index["manifests"]
        return manifest["digest"]

    def shutdown(self) -> None:
        for output_base in self.output_bases:
            if output_base.exists():
                subprocess.run([*self.startup(output_base), "shutdown"], cwd=self.workspace,
                               env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home)},
                               capture_output=True, timeout=120)


def project_files() -> list[Path]:
    """The project's files the test has as data (every file under tools/, and MODULE.bazel)."""
    listed = os.environ.get("PROJECT_FILES", "").split()
    if not listed:
        pytest.fail("PROJECT_FILES is empty: run this test with `tools/bazel test "
                    "//tools/debian:test_snapshot_fallback`, whose BUILD target lists the project's tools/ files")
    missing = [path for path in listed if not Path(path).is_file()]
    if missing:
        pytest.fail(f"{len(missing)} listed project files are not in the runfiles, e.g. {missing[0]}")
    return [Path(path) for path in listed]


def nested_module(project_module: str) -> str:
    """The project's bazel_deps (not its dev dependencies, which the fixture does not build), and the debian
    extension, which finds the fixture release as the only lock."""
    deps = [dep for dep in re.findall(r"^bazel_dep\(.*\)$", project_module, re.MULTILINE)
            if "dev_dependency" not in dep]
    if not deps:
        pytest.fail("found no bazel_dep(...) line in the project's MODULE.bazel to copy")
    return "\n".join([
        'module(name = "snapshot_fallback_fixture")',
        "",
        *deps,
        "",
        'debian = use_extension("//tools/debian:extensions.bzl", "debian")',
        'debian.releases(directory = "debian_packages")',
        'use_repo(debian, "debian_releases")',
        "",
    ])


def make_workspace(workspace: Path) -> None:
    files = project_files()
    module = next((path for path in files if path.as_posix() == "MODULE.bazel"), None)
    if module is None:
        pytest.fail("the project's MODULE.bazel is not among the test's data")
    for path in files:
        if path.parts[0] == "tools":
            target = workspace / path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)  # follows the runfiles symlink: the copy is a plain file
    (workspace / "MODULE.bazel").write_text(nested_module(module.read_text()))
    (workspace / "BUILD.bazel").write_text("")
    fixture = workspace / "debian_packages/fixture"
    fixture.mkdir(parents=True)
    (fixture / "manifest.yaml").write_text(MANIFEST)
    (workspace / "image").mkdir()
    (workspace / "image/BUILD.bazel").write_text(IMAGE_BUILD)


def project_tool(workspace: Path, module: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Runs a tool from the nested copy of tools/, the way `bazel run` would but without a nested server."""
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
             "LANG": "C.UTF-8", **env}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=workspace, env=clean, capture_output=True,
                          text=True, timeout=120)


# ---------------------------------------------------------------------------------------------- the world


@dataclass
class World:
    root: Path
    workspace: Path
    live: Path  # the live mirror's archive directory (what DEBIAN_MIRROR names)
    mirror_url: str
    snapshot_url: str  # the snapshot service's base URL (what DEBIAN_SNAPSHOT_MIRROR names)
    signer: Signer
    debs: dict[str, bytes]  # pool path -> the .deb
    bazel: NestedBazel


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    bazel = fail_without("bazel", "run the nested build")
    for tool, why in (("dpkg-deb", "build the fixture .debs"), ("gpg", "sign the fixture archive"),
                      ("gpgconf", "stop the signing agent"), ("gpgv", "let the lock tool verify the archive")):
        fail_without(tool, why)
    signer = make_signer("gpg-snapshot-")
    servers: list[Server] = []
    nested: NestedBazel | None = None
    try:
        debs = {spec.filename: build_deb(spec, tmp_path / "debs") for spec in (BASE, LIB_OLD, APP, LIB_NEW)}
        assert build_deb(APP, tmp_path / "debs-again") == debs[APP.filename], "dpkg-deb is not reproducible here"
        live = tmp_path / "mirror/debian"
        publish(live, [BASE, LIB_OLD, APP], debs, signer)
        # The snapshot service's view of the archive as it was at TIMESTAMP: the same files, in its layout.
        service = tmp_path / "snapshot"
        shutil.copytree(live, service / "archive/debian" / TIMESTAMP)
        servers += [Server(tmp_path / "mirror"), Server(service)]
        workspace = tmp_path / "workspace"
        make_workspace(workspace)
        scratch = tmp_path / "bazel"
        (scratch / "tmp").mkdir(parents=True)
        (scratch / "home").mkdir()
        nested = NestedBazel(bazel, workspace, scratch, scratch / "home")
        yield World(tmp_path, workspace, live, f"{servers[0].url}/debian", servers[1].url, signer, debs, nested)
    finally:
        # Nothing may outlive the test: every nested server, the HTTP servers and the gpg agent.
        if nested is not None:
            nested.shutdown()
        for server in servers:
            server.stop()
        signer.stop()


def lock_through_snapshot(world: World) -> None:
    """Locks the nested manifest with the project's lock tool, resolved through the snapshot service."""
    done = project_tool(
        world.workspace, "tools.debian.lock",
        "--manifest", "debian_packages/fixture/manifest.yaml", "--lock", LOCK,
        "--keyring", str(world.signer.keyring), "--cache-dir", str(world.root / "index-cache"),
        "--snapshot-time", TIMESTAMP,
        # The live mirror is a closed port: a lock that records the snapshot must have been read from it.
        env={"DEBIAN_MIRROR": f"http://127.0.0.1:{closed_port()}/debian", "DEBIAN_SNAPSHOT_MIRROR": world.snapshot_url},
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads((world.workspace / LOCK).read_text())
    assert [source["snapshot"] for source in doc["sources"]] == [TIMESTAMP]
    assert {p["name"]: p["version"] for p in doc["packages"]} == {
        "fixture-app": APP.version, "fixture-base": BASE.version, MOVED: LIB_OLD.version}


def move_the_suite_on(world: World) -> None:
    """What Debian does when a suite moves on: the mirror drops the pinned fixture-lib for a newer one."""
    (world.live / LIB_OLD.filename).unlink()
    publish(world.live, [BASE, LIB_NEW, APP], world.debs, world.signer)
    assert not (world.live / LIB_OLD.filename).exists()
    assert (world.root / "snapshot/archive/debian" / TIMESTAMP / LIB_OLD.filename).is_file()


def assert_built(result: BazelResult, step: str) -> None:
    assert result.code == 0, f"{step}: the nested build failed (exit {result.code}):\n{result.tail()}"


def assert_failed_with(result: BazelResult, step: str, *expected: str) -> None:
    assert result.code != 0, f"{step}: the nested build succeeded but must fail:\n{result.tail()}"
    missing = [text for text in expected if text not in result.output]
    assert not missing, f"{step}: the output lacks {missing}:\n{result.tail()}"


# ---------------------------------------------------------------------------------------------- the test


def test_snapshot_fallback(world: World) -> None:
    started = time.monotonic()
    steps: list[str] = []

    def timed(step: str) -> None:
        steps.append(f"{step} at {time.monotonic() - started:.1f} s")

    lock_through_snapshot(world)
    pin = f"{LOCK} pins {MOVED} {LIB_OLD.version} ({ARCH}) from {LIB_OLD.filename}"
    timed("locked")

    # (i) The live mirror still serves every pin: the image builds, and its digest is the reference.
    baseline = world.bazel.build("baseline", world.mirror_url)
    assert_built(baseline, "(i) live mirror")
    digest = world.bazel.image_digest()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), digest
    timed("(i) built")

    # (v) A manifest edited without re-locking fails the build in the same server, which must notice the edit.
    manifest = world.workspace / "debian_packages/fixture/manifest.yaml"
    manifest.write_text(MANIFEST.replace("packages: [fixture-app]", "packages: [fixture-app, fixture-base]"))
    stale = world.bazel.build("baseline", world.mirror_url)
    assert_failed_with(stale, "(v) stale lock", f"{LOCK} is stale", "debian_packages/fixture/manifest.yaml",
                       UPDATE_COMMAND)
    manifest.write_text(MANIFEST)
    assert_built(world.bazel.build("baseline", world.mirror_url), "(v) manifest restored")
    timed("(v) stale lock refused")

    # (vi) A lock of an older format (2: no package names its source) is refused with the re-lock command.
    lock_path = world.workspace / LOCK
    current = lock_path.read_text()
    older = json.loads(current)
    older["version"] = 2
    for package in older["packages"]:
        package.pop("source")
    lock_path.write_text(json.dumps(older, indent=2, sort_keys=True) + "\n")
    refused = world.bazel.build("baseline", world.mirror_url)
    assert_failed_with(refused, "(vi) older lock format", f"{LOCK} has lock format version 2, but this checkout "
                       f"reads version {LOCK_FORMAT_VERSION}", UPDATE_COMMAND)
    lock_path.write_text(current)
    timed("(vi) older lock format refused")

    # (vii) A .deb the mirror serves with other bytes than the lock's sha256 is named as tampering, never as an
    # archive move (which would have the user re-lock to whatever a tampering mirror serves).
    served = world.live / BASE.filename
    genuine = served.read_bytes()
    served.write_bytes(genuine + b"tampered")
    tampered = world.bazel.build("tampered", world.mirror_url)
    assert_failed_with(tampered, "(vii) tampered .deb", f"{LOCK} pins {BASE.name} {BASE.version} ({ARCH})",
                       f"with sha256 {hashlib.sha256(genuine).hexdigest()}",
                       f"serves a file with sha256 {hashlib.sha256(genuine + b'tampered').hexdigest()}",
                       "the mirror or the lock has been tampered with; do not re-lock blindly")
    assert "no longer serves" not in tampered.output, "(vii): tampering was reported as an archive move"
    served.write_bytes(genuine)
    timed("(vii) tampering named")

    move_the_suite_on(world)

    # (ii) Without a snapshot service, the moved pin fails the build with the lock, the pin and the command.
    moved = world.bazel.build("moved", world.mirror_url)
    assert_failed_with(moved, "(ii) moved pin", pin, f"which the mirror in DEBIAN_MIRROR ({world.mirror_url}) no "
                       "longer serves", UPDATE_COMMAND, "or set DEBIAN_SNAPSHOT_MIRROR", f"snapshot {TIMESTAMP}")
    assert "is unreachable" not in moved.output, "(ii): a mirror that answers was reported as unreachable"
    timed("(ii) moved pin refused")

    # (iii) With the snapshot service, the moved pin comes from the snapshot: the very same image.
    fallback = world.bazel.build("snapshot", world.mirror_url, snapshot=world.snapshot_url)
    assert_built(fallback, "(iii) snapshot fallback")
    assert world.bazel.image_digest() == digest, "(iii): the image built through the snapshot differs from (i)'s"
    timed("(iii) built through the snapshot")

    # (iv) An unreachable mirror is named as such, with the variable to fix, rather than as a missing pin.
    port = closed_port()
    unreachable = world.bazel.build("unreachable", f"http://127.0.0.1:{port}/debian")
    assert_failed_with(unreachable, "(iv) unreachable mirror",
                       f"the Debian mirror in DEBIAN_MIRROR (http://127.0.0.1:{port}/debian) is unreachable",
                       "set DEBIAN_MIRROR to a reachable Debian mirror")
    assert "no longer serves" not in unreachable.output
    timed("(iv) unreachable mirror named")

    # (vi) The update command reports the moved pin, re-pins atomically, and then has nothing to do.
    pins = world.root / "build_root.packages"
    pins.write_text(f"suite {SUITE}\n{BASE.name}={BASE.version}\n")
    lock_path = world.workspace / LOCK
    before = lock_path.read_bytes(), lock_path.stat().st_ino

    def update(*flags: str) -> subprocess.CompletedProcess[str]:
        return project_tool(
            world.workspace, "tools.debian.update", *flags, "--releases", str(world.workspace / "debian_packages"),
            "--build-root-packages", str(pins), "--keyring", str(world.signer.keyring),
            "--cache-dir", str(world.root / "index-cache"), "--no-changelogs",
            env={"DEBIAN_MIRROR": world.mirror_url},
        )

    check = update("--check")
    assert check.returncode == 1, check.stdout + check.stderr
    rows = [line.split() for line in check.stdout.splitlines()]
    assert ["fixture", MOVED, ARCH, LIB_OLD.version, "->", LIB_NEW.version, "-"] in rows, check.stdout
    assert f"run `{UPDATE_COMMAND}`" in check.stdout
    assert (lock_path.read_bytes(), lock_path.stat().st_ino) == before, "--check must write nothing"

    written = update()
    assert written.returncode == 0, written.stdout + written.stderr
    assert f"wrote {lock_path}" in written.stderr
    # Atomic: a new file renamed over the old one (another inode), and no temporary left beside it.
    assert lock_path.stat().st_ino != before[1], "the lock was rewritten in place, not replaced by a rename"
    assert sorted(path.name for path in lock_path.parent.iterdir()) == ["lock.json", "manifest.yaml"]
    relocked = json.loads(lock_path.read_text())
    assert {p["name"]: p["version"] for p in relocked["packages"]}[MOVED] == LIB_NEW.version
    assert pins.read_text() == f"suite {SUITE}\n{BASE.name}={BASE.version}\n"

    again = update()
    assert again.returncode == 0 and again.stdout.strip() == "up to date", again.stdout + again.stderr
    assert lock_path.read_bytes() == json.dumps(relocked, indent=2, sort_keys=True).encode() + b"\n"
    timed("(vi) update re-pinned")

    # The re-pinned lock builds from the moved mirror alone, into an image that differs from the old one.
    repinned = world.bazel.build("repinned", world.mirror_url)
    assert_built(repinned, "(vi) re-pinned lock")
    assert world.bazel.image_digest() != digest
    timed("(vi) re-pinned lock built")
    print("\n".join(steps), file=sys.stderr)


if __name__ == "__main__":
    # Under Bazel the nested workspaces and output bases go below TEST_TMPDIR, in the test's own output
    # tree, rather than in /tmp, which is the build root's own and shared by every build in it.
    scratch = os.environ.get("TEST_TMPDIR")
    basetemp = [f"--basetemp={Path(scratch) / 'pytest'}"] if scratch else []
    raise SystemExit(pytest.main([__file__, "-q", "-s", "-p", "no:cacheprovider", *basetemp]))
