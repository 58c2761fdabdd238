"""Runs Bazel inside a pinned Debian root that this module builds once and caches.

Bazel, its rule sets and every tool the build calls come from Debian packages pinned in
tools/build_root.packages, so the build needs nothing but a Debian mirror. The root lives in a cache
directory named by the hash of that file: editing the list builds a new root, leaving it reuses the old one.
Bazel runs in a private mount namespace entered with pivot_root, so no mount is ever visible on the host.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import lzma
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

# The package list's parser, shared with the build actions that read the list. tools/bazel runs this file as a
# script, with tools/ first on sys.path; the tests and the bench import it as tools.build_root.
if __package__:
    from tools.build_root_packages import PACKAGE_LIST, PIN, BuildRootError, PackageList, read_package_list  # noqa: F401
else:
    from build_root_packages import PACKAGE_LIST, PIN, BuildRootError, PackageList, read_package_list  # noqa: F401

PROJECT_DIR = PACKAGE_LIST.parent.parent

# Modules that Bazel's own bazel_tools module asks the registry for; nothing here uses them, so empty
# stand-ins let module resolution finish offline.
STUB_MODULES = ("apple_support", "buildozer", "protobuf", "zlib")
STUB_DIR = "/usr/local/share/bazel-stubs"
# Debian's module packages beyond the ones Debian's /etc/bazel/bazelrc already overrides. Bazel rejects an
# override of a module nothing depends on, so only those the project's MODULE.bazel names are overridden.
EXTRA_MODULE_OVERRIDES = {
    "aspect_bazel_lib": "/usr/share/bazel/tools/aspect_bazel_lib",
    "bazel_lib": "/usr/share/bazel/tools/bazel_lib",
    "rules_shell": "/usr/share/bazel/rules/shell",
}
# The archive table: each archive's mirror variable, and the snapshot service's variable and layout (the
# fallback for pins the mirror no longer serves, for the build root and for the images' .debs alike).
ARCHIVES = json.loads((PACKAGE_LIST.parent / "debian" / "archives.json").read_text())
# The project's mirror variables, and the archive each names.
MIRROR_VARIABLES = {variable: archive for archive, variable in ARCHIVES["mirror_variables"].items()}
SNAPSHOT_VARIABLE: str = ARCHIVES["snapshot_variable"]
# The command that re-locks the releases and re-pins this root, as the lock format declares it.
UPDATE_COMMAND: str = json.loads((PACKAGE_LIST.parent / "debian" / "lock_format.json").read_text())["update_command"]
# Written into a root that was built with substitutes for pins the mirror no longer served.
SUBSTITUTIONS_FILE = "etc/distroless-python-substitutions"
# Debian's names for the machine's architecture, for the build root's Packages index.
DEBIAN_ARCHS = {"x86_64": "amd64", "aarch64": "arm64"}
# Variables passed from the caller into the root; everything else is dropped so builds do not depend on it.
PASSED_VARIABLES = (
    "TERM", "CI", "DOCKER_HOST", "USER", "LOGNAME", "COLUMNS", SNAPSHOT_VARIABLE,
    "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
    "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CERT", "PIP_DEFAULT_TIMEOUT",
)
# Set inside the root to the cache directory of tools/remote/cluster (BuildGrid's venv, the cluster's state).
REMOTE_CACHE_VARIABLE = "DISTROLESS_REMOTE_CACHE"
# Variables tools/bazel itself reads on the machine (they choose the cache, not what runs in the root).
HOST_VARIABLES = ("DISTROLESS_PYTHON_CACHE", "XDG_CACHE_HOME", "HOME")
# A root with Bazel, the engine and qemu takes about 2.4 GB; the output base needs several more.
REQUIRED_FREE_BYTES = 6 * 1024**3
# Copied from the machine into the root on every run: name resolution, and the CA bundle, so downloads
# (pip's included) trust what the machine trusts, e.g. a proxy's own certificate authority.
HOST_FILES = ("/etc/resolv.conf", "/etc/hosts", "/etc/ssl/certs/ca-certificates.crt")
DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock"
# Build roots kept in the cache, the current one included: switching between two branches with different
# package lists then needs no rebuild, and older roots do not pile up.
KEPT_ROOTS = 2
APT_SOURCES = ("/etc/apt/sources.list", "/etc/apt/sources.list.d")


def log(message: str) -> None:
    print(f"[tools/bazel] {message}", file=sys.stderr, flush=True)


# --- The mirror -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AptSource:
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    signed_by: str


def parse_deb822_sources(text: str) -> list[AptSource]:
    sources = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes").lower() != "no":
            sources.append(AptSource(tuple(fields.get("uris", "").split()), tuple(fields.get("suites", "").split()),
                                     fields.get("signed-by", "")))
    return sources


def parse_one_line_sources(text: str) -> list[AptSource]:
    sources = []
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            options = re.search(r"\[([^]]*)\]", line)
            sources.append(AptSource((words[1],), (words[2],), options.group(1) if options else ""))
    return sources


def read_apt_sources(locations: Sequence[str] = APT_SOURCES) -> list[AptSource]:
    sources: list[AptSource] = []
    for location in locations:
        paths = sorted(glob.glob(os.path.join(location, "*"))) if os.path.isdir(location) else [location]
        for path in paths:
            with contextlib.suppress(OSError):
                text = Path(path).read_text()
                if path.endswith(".sources"):
                    sources += parse_deb822_sources(text)
                elif path.endswith(".list"):
                    sources += parse_one_line_sources(text)
    return sources


def is_debian_source(source: AptSource) -> bool:
    """Debian's own archives, told apart from third-party repositories by keyring or URI path."""
    return bool(source.uris) and ("debian-archive-keyring" in source.signed_by or any(
        re.search(r"/debian(-security)?/?$", uri) for uri in source.uris))


def find_mirrors(environ: dict[str, str], sources: list[AptSource]) -> dict[str, str]:
    """The DEBIAN_MIRROR and DEBIAN_SECURITY_MIRROR base URLs: from the environment, else the apt sources."""
    mirrors = {name: environ[name].rstrip("/") for name in MIRROR_VARIABLES if environ.get(name)}
    if "DEBIAN_MIRROR" not in mirrors:
        for source in filter(is_debian_source, sources):
            security = any(suite.endswith(("-security", "/updates")) for suite in source.suites)
            mirrors.setdefault("DEBIAN_SECURITY_MIRROR" if security else "DEBIAN_MIRROR", source.uris[0].rstrip("/"))
    if "DEBIAN_MIRROR" not in mirrors:
        raise BuildRootError(
            "No Debian mirror: this machine's apt sources list no Debian archive and DEBIAN_MIRROR is not set. "
            "Set DEBIAN_MIRROR to a Debian mirror's base URL (the directory holding dists/ and pool/), and "
            "DEBIAN_SECURITY_MIRROR to its security archive if it is not DEBIAN_MIRROR with '-security' "
            "appended, then run tools/bazel again.")
    # Mirrors conventionally serve the security archive beside the main one.
    mirrors.setdefault("DEBIAN_SECURITY_MIRROR", mirrors["DEBIAN_MIRROR"] + "-security")
    snapshot = environ.get(SNAPSHOT_VARIABLE, "").strip()
    for name, url in [*mirrors.items(), *([(SNAPSHOT_VARIABLE, snapshot)] if snapshot else [])]:
        if not re.match(r"(https?|file)://[^/]", url) and not url.startswith("file:///"):
            origin = "" if name in environ else " (from the machine's apt sources)"
            raise BuildRootError(
                f"{name}={url}{origin} is not an http://, https:// or file:// URL, the only kinds Bazel's downloader "
                f"fetches; set {name} to the archive's base URL (the directory holding dists/ and pool/).")
    return mirrors


def check_mirror(mirror: str, suite: str, timeout: float = 20) -> None:
    url = f"{mirror}/dists/{suite}/InRelease"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read(1)
    except (urllib.error.URLError, OSError) as error:
        raise BuildRootError(
            f"The Debian mirror is unreachable: fetching {url} failed ({error}). Check the network, or set "
            "DEBIAN_MIRROR to a reachable mirror's base URL.") from None


def snapshot_mirror(environ: dict[str, str], packages: PackageList) -> str:
    """The snapshot service's view of the archive at the pins' timestamp, or "" without one of the two."""
    service = environ.get(SNAPSHOT_VARIABLE, "").strip().rstrip("/")
    if not (service and packages.snapshot):
        return ""
    return f"{service}/" + ARCHIVES["snapshot_path"].format(archive="debian", timestamp=packages.snapshot)


def parse_package_versions(index: str) -> dict[str, set[str]]:
    """Package name -> the versions a Packages index lists."""
    versions: dict[str, set[str]] = {}
    for stanza in index.split("\n\n"):
        fields = dict(re.findall(r"^(Package|Version): (\S+)$", stanza, re.MULTILINE))
        if "Package" in fields and "Version" in fields:
            versions.setdefault(fields["Package"], set()).add(fields["Version"])
    return versions


def served_versions(mirror: str, suite: str, arch: str, timeout: float = 60) -> dict[str, set[str]]:
    url = f"{mirror}/dists/{suite}/main/binary-{arch}/Packages.xz"
    log(f"checking the pins against {url}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return parse_package_versions(lzma.decompress(response.read()).decode("utf-8", "replace"))
    except (urllib.error.URLError, OSError, lzma.LZMAError) as error:
        raise BuildRootError(f"Cannot read the package index {url} ({error}). Check the network, or set "
                             "DEBIAN_MIRROR to a reachable Debian mirror's base URL.") from None


def substitute_missing_pins(packages: PackageList, served: dict[str, set[str]]) -> tuple[PackageList, list[str]]:
    """The pins with each version the mirror no longer serves replaced by the one it does, and notices.

    A fresh machine must be able to build the root, since the root runs the update command that re-pins;
    so a moved pin is substituted loudly rather than failing the bootstrap.
    """
    pins, notices, gone = [], [], []
    for name, version in packages.pins().items():
        offered = served.get(name, set())
        if not offered:
            gone.append(f"{name}={version}")
            continue
        if version in offered:
            pins.append(f"{name}={version}")
            continue
        newest = max(offered, key=debian_version_key)
        pins.append(f"{name}={newest}")
        notices.append(f"{name} {version} is no longer served; using {newest}")
    if gone:
        raise BuildRootError(
            f"{PACKAGE_LIST} pins {', '.join(gone)}, which Debian {packages.suite} no longer has at all. Replace or "
            f"remove {'that line' if len(gone) == 1 else 'those lines'} in {PACKAGE_LIST.name}, then run tools/bazel "
            "again.")
    return PackageList(packages.suite, tuple(pins), packages.digest, packages.snapshot), notices


def debian_version_key(version: str) -> list[object]:
    """A sort key that orders Debian versions as dpkg does, for choosing the newest a mirror serves."""
    epoch, _, rest = version.rpartition(":") if ":" in version else ("0", "", version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "0")
    return [int(epoch or 0), _dpkg_part_key(upstream), _dpkg_part_key(revision)]


def _dpkg_part_key(part: str) -> list[object]:
    key: list[object] = []
    for letters, digits in re.findall(r"(\D*)(\d*)", part):
        # dpkg: '~' sorts before everything, even the end of the string; letters before non-letters.
        key.append([(0 if c == "~" else 1 if c.isalpha() else 2, ord(c)) for c in letters] + [(1, 0)])
        key.append(int(digits or 0))
    return key


# --- The cache --------------------------------------------------------------------------------------

def cache_home(environ: dict[str, str]) -> Path:
    if environ.get("DISTROLESS_PYTHON_CACHE"):
        return Path(environ["DISTROLESS_PYTHON_CACHE"])
    base = environ.get("XDG_CACHE_HOME") or os.path.join(environ.get("HOME") or "/root", ".cache")
    return Path(base) / "distroless-python"


@dataclass(frozen=True)
class CacheLayout:
    home: Path
    key: str  # the first hex digits of the package list's hash

    @property
    def root(self) -> Path:
        return self.home / f"root-{self.key}"

    @property
    def output_user_root(self) -> Path:
        # Per root: another root's Bazel server and install base must never be reused.
        return self.home / f"bazel-{self.key}"

    @property
    def repository_cache(self) -> Path:
        # Shared by all roots: downloads are keyed by sha256 and stay valid.
        return self.home / "repository-cache"

    @property
    def remote_cache(self) -> Path:
        # Per root: tools/remote/cluster's BuildGrid venv (built for the root's Python) and its state.
        return self.home / f"remote-{self.key}"

    @property
    def host_tools(self) -> Path:
        # Per root: the machine-side wrappers that run this root's crane, cosign and docker (HOST_LAUNCHER).
        return self.home / f"host-tools-{self.key}"

    @property
    def lock_file(self) -> Path:
        return self.home / f"root-{self.key}.lock"


def check_cache_home(home: Path) -> None:
    """The cache directory must be a writable directory; says which variable moves it when it is not."""
    where = f"The cache directory {home} (DISTROLESS_PYTHON_CACHE, else ~/.cache/distroless-python)"
    if home.exists() and not home.is_dir():
        raise BuildRootError(f"{where} is a file, not a directory; remove it, or set DISTROLESS_PYTHON_CACHE to a "
                             "directory.")
    try:
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=home):
            pass
    except OSError as error:
        raise BuildRootError(f"{where} cannot be written ({error.strerror}); set DISTROLESS_PYTHON_CACHE to a "
                             "writable directory with 6 GB free.") from None


def check_bazel_path(path: Path, what: str, fix: str) -> None:
    """Bazel's server decodes paths as Latin-1 and mangles anything beyond ASCII (then the client's directory is
    "not inside workspace" and even `shutdown` fails), so such a path is refused before a server starts."""
    if not str(path).isascii():
        raise BuildRootError(f"{what} {path} holds characters outside ASCII, which Bazel cannot use; {fix}.")


def cache_layout(environ: dict[str, str], packages: PackageList) -> CacheLayout:
    return CacheLayout(cache_home(environ), packages.digest[:16])


# --- Building the root ------------------------------------------------------------------------------

def check_user(euid: int) -> None:
    """Refuses a non-root user at once: see the README's Quick start for why the root needs root."""
    if euid != 0:
        raise BuildRootError(
            "tools/bazel must run as root: it builds its Debian build root with mmdebstrap and runs Bazel in a "
            "private mount namespace, and a root built without root privileges is owned by subordinate ids that "
            "this user can neither write nor remove. Run it as root (`sudo -E tools/bazel ...`; -E keeps "
            "DOCKER_CONFIG, COSIGN_KEY and the mirror variables), or in a container or VM where you are root.")


def check_can_bootstrap(home: Path) -> None:
    if not shutil.which("mmdebstrap"):
        raise BuildRootError(
            "mmdebstrap is not installed; tools/bazel needs it once to build the build root. Install it with "
            "'sudo apt-get install mmdebstrap' (Debian 12 bookworm or Ubuntu 22.04 and later), then run "
            "tools/bazel again.")
    home.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(home).free
    if free < REQUIRED_FREE_BYTES:
        raise BuildRootError(
            f"Not enough disk space in {home}: {free / 1024**3:.1f} GiB free, {REQUIRED_FREE_BYTES / 1024**3:.0f} "
            "GiB needed for the build root and Bazel's outputs. Free some space, or set DISTROLESS_PYTHON_CACHE "
            "to a directory on a larger disk.")


def mmdebstrap_command(packages: PackageList, target: Path, mirror: str, *fallbacks: str) -> list[str]:
    return [
        "mmdebstrap", "--variant=apt", "--mode=root",
        # Snapshot mirrors serve Release files past their Valid-Until date.
        "--aptopt=Acquire::Check-Valid-Until \"false\"",
        "--include=" + ",".join(packages.packages),
        packages.suite, str(target), mirror, *fallbacks,
    ]


def bootstrap(packages: PackageList, layout: CacheLayout, mirrors: dict[str, str], snapshot: str = "") -> None:
    check_can_bootstrap(layout.home)
    check_mirror(mirrors["DEBIAN_MIRROR"], packages.suite)
    arch = DEBIAN_ARCHS.get(platform.machine(), platform.machine())
    served = served_versions(mirrors["DEBIAN_MIRROR"], packages.suite, arch)
    if snapshot:
        for name, versions in served_versions(snapshot, packages.suite, arch).items():
            served.setdefault(name, set()).update(versions)
    packages, notices = substitute_missing_pins(packages, served)
    for notice in notices:
        log(f"NOTICE: {notice}")
    if notices:
        log(f"NOTICE: {len(notices)} pins of {PACKAGE_LIST.name} are gone from the mirror"
            + ("" if snapshot else f" (set {SNAPSHOT_VARIABLE} to a Debian snapshot service to get them)")
            + f"; the root is built with the versions above. Run `{UPDATE_COMMAND}` to re-pin.")
    partial = layout.root.with_name(layout.root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    log(f"building the build root (Debian {packages.suite}, {len(packages.packages)} pinned packages) in "
        f"{layout.root}; this happens once per package list and takes about a minute")
    started = time.monotonic()
    fallbacks = [snapshot] if snapshot else []
    result = subprocess.run(mmdebstrap_command(packages, partial, mirrors["DEBIAN_MIRROR"], *fallbacks))
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise BuildRootError(f"mmdebstrap failed (exit {result.returncode}); its messages are above.")
    if notices:
        (partial / SUBSTITUTIONS_FILE).write_text("".join(notice + "\n" for notice in notices))
    os.replace(partial, layout.root)
    log(f"build root ready in {time.monotonic() - started:.0f} s")


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def ensure_root(packages: PackageList, layout: CacheLayout, mirrors: dict[str, str], snapshot: str = "") -> None:
    if not layout.root.is_dir():
        with exclusive_lock(layout.lock_file):
            if not layout.root.is_dir():  # another tools/bazel may have built it while we waited
                bootstrap(packages, layout, mirrors, snapshot)
                remove_stale_roots(layout)
    substitutions = layout.root / SUBSTITUTIONS_FILE
    if substitutions.exists():
        # Said on every run until the pins are updated, which names a new root.
        log(f"NOTICE: this build root substitutes pins of {PACKAGE_LIST.name} the mirror no longer serves: "
            + "; ".join(substitutions.read_text().splitlines()) + f". Run `{UPDATE_COMMAND}` to re-pin.")
    # The lock file's mtime records when the root was last used.
    layout.lock_file.touch()


def remove_stale_roots(layout: CacheLayout, keep: int = KEPT_ROOTS) -> None:
    """Deletes the least recently used roots (and their Bazel output roots) beyond the `keep` newest.

    Each root with its outputs takes several GB, and every edit of the package list makes a new one. A root
    whose lock another tools/bazel holds (it is being built) is never touched.
    """
    others = [CacheLayout(layout.home, lock.name[len("root-"):-len(".lock")])
              for lock in layout.home.glob("root-*.lock") if lock != layout.lock_file]
    others.sort(key=lambda other: other.lock_file.stat().st_mtime, reverse=True)
    for stale in others[keep - 1:]:
        if bazel_server_running(stale.output_user_root):
            continue  # in use by a Bazel server (a long test run, another checkout): removed another time
        with open(stale.lock_file, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            log(f"removing the unused build root {stale.root.name} and its Bazel outputs")
            for directory in (stale.root, stale.output_user_root, stale.remote_cache, stale.host_tools):
                shutil.rmtree(directory, ignore_errors=True)
        stale.lock_file.unlink(missing_ok=True)


# --- Configuring the root for this run --------------------------------------------------------------

def declared_modules(module_file: Path) -> set[str]:
    return set(re.findall(r'bazel_dep\(\s*name\s*=\s*"([^"]+)"', module_file.read_text()))


def system_bazelrc(layout: CacheLayout, project_modules: set[str]) -> str:
    """The root's /etc/bazel.bazelrc: what makes Debian's Bazel work offline, kept out of the project."""
    lines = ["# Written by tools/bazel on every run; edit tools/build_root.py instead.",
             f"startup --output_user_root={layout.output_user_root}",
             # A server idle this long exits, so nothing keeps running long after the last command.
             "startup --max_idle_secs=1800",
             # Module resolution must not need a registry, and the WORKSPACE suffix would download rules_cc.
             "common --noenable_workspace",
             "common --lockfile_mode=off",
             f"common --repository_cache={layout.repository_cache}",
             *(f"common --repo_env={name}" for name in (*MIRROR_VARIABLES, SNAPSHOT_VARIABLE)),
             "build --nosandbox_debug"]
    lines += [f"common --override_module={name}={STUB_DIR}/{name}" for name in STUB_MODULES]
    lines += [f"common --override_module={name}={path}" for name, path in sorted(EXTRA_MODULE_OVERRIDES.items())
              if name in project_modules]
    return "\n".join(lines) + "\n"


def write_if_changed(path: Path, content: str) -> None:
    # tools/atomic_file.py's job, done here again: tools/bazel runs this file as a script with the machine's
    # python3, where the `tools` package is not importable (so are tools/cli.py and tools/architectures.py).
    if path.exists() and path.read_text() == content:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique temporary name: several tools/bazel may configure the same root at once.
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    os.chmod(partial, 0o644)
    os.replace(partial, path)


def configure_root(layout: CacheLayout, project: Path) -> None:
    root = layout.root
    write_if_changed(root / "etc/bazel.bazelrc", system_bazelrc(layout, declared_modules(project / "MODULE.bazel")))
    for name in STUB_MODULES:
        write_if_changed(root / STUB_DIR.lstrip("/") / name / "MODULE.bazel", f'module(name = "{name}")\n')
        write_if_changed(root / STUB_DIR.lstrip("/") / name / "BUILD.bazel", "")
    for path in HOST_FILES:
        with contextlib.suppress(OSError):
            write_if_changed(root / path.lstrip("/"), Path(path).read_text())


# --- Entering the root ------------------------------------------------------------------------------

# Runs in a fresh private mount namespace: make the root a mount point, bind the kernel file systems,
# the project and the caches into it at their own paths, pivot into it and drop the old root.
ENTER_SCRIPT = r"""
set -e
root=$1 cwd=$2; shift 2
mount --rbind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys"
while [ "$1" != "--" ]; do
  if [ -d "$1" ]; then
    mkdir -p "$root$1"
  else
    mkdir -p "$root$(dirname "$1")" && touch "$root$1"
  fi
  mount --bind "$1" "$root$1"
  shift
done
shift
mkdir -p "$root/.old-root"
cd "$root"
pivot_root . .old-root
umount -l /.old-root
cd "$cwd"
exec "$@"
"""


def enter_command(layout: CacheLayout, project: Path, environment: dict[str, str], argv: Sequence[str],
                  extra_binds: Sequence[str] = (), program: str = "bazel", cwd: Path | None = None) -> list[str]:
    """The command that enters the root and runs `program` there, in `cwd` (inside the project; default its top)."""
    namespace = ["unshare", "--mount", "--propagation", "private"]
    binds = [str(project), str(layout.output_user_root), str(layout.repository_cache), str(layout.remote_cache),
             *engine_sockets(environment),
             *extra_binds]
    env = ["env", "-i", *(f"{key}={value}" for key, value in sorted(environment.items()))]
    return [*namespace, "/bin/sh", "-c", ENTER_SCRIPT, "enter-root", str(layout.root), str(cwd or project), *binds, "--",
            *env, program, *argv]


# Bazel options whose value is a directory on the machine: bound into the root at the same path, so that
# `--output_base=/tmp/x` means the host's /tmp/x (and bazel-bin points somewhere that exists), not a
# directory inside the root.
HOST_PATH_OPTIONS = ("--output_base", "--output_user_root", "--repository_cache", "--disk_cache", "--distdir")
# Options whose value is a file on the machine (remote execution's credentials): bound when it exists.
HOST_FILE_OPTIONS = ("--tls_certificate", "--tls_client_certificate", "--tls_client_key", "--google_credentials")
# Options whose value may be a Unix socket on the machine (unix:/path or unix:///path): the socket is bound.
SOCKET_OPTIONS = ("--remote_executor", "--remote_cache", "--bes_backend")
VALUE_OPTIONS = HOST_PATH_OPTIONS + HOST_FILE_OPTIONS + SOCKET_OPTIONS


def host_value(option: str, value: str, cwd: Path) -> tuple[str, list[str]]:
    """An option's value as Bazel in the root must see it, and the machine paths to bind for it."""
    if option in SOCKET_OPTIONS:
        path = re.sub(r"^unix:(//)?", "", value) if value.startswith("unix:") else ""
        return value, [path] if path and os.path.exists(path) else []
    if not value:  # e.g. --disk_cache= turns the cache off
        return value, []
    path = (cwd / value).resolve()
    if option in HOST_FILE_OPTIONS:
        return str(path), [str(path)] if path.is_file() else []
    path.mkdir(parents=True, exist_ok=True)
    return str(path), [str(path)]


# Options whose value is NAME=PATH, PATH a directory on the machine.
NAMED_PATH_OPTIONS = ("--override_module", "--override_repository")


def named_path(argument: str, cwd: Path) -> str:
    """The machine path an option argument (`--opt=/p`, a lone `/p` after `--opt`, NAME=/p, file:///p) names, or ''.

    The rule: every absolute path given to Bazel before `--`, and every path starting `./` or `../`, is a path on
    the machine (relative ones from `cwd`, where Bazel runs in the root too). `//...` is a label.
    """
    option, _, value = argument.partition("=") if argument.startswith("--") else ("", "", argument)
    if option in NAMED_PATH_OPTIONS and "=" in value:
        value = value.split("=", 1)[1]
    value = value.removeprefix("file://")
    if value.startswith(("./", "../")):
        return str((cwd / value).resolve())
    return value if value.startswith("/") and not value.startswith("//") else ""


def machine_path_binds(path: str, root: Path | None) -> list[str]:
    """What to bind so Bazel in the root reads and writes the machine's `path` there, at the same place.

    An existing file or directory is bound itself. A path that does not exist yet is an output (a profile, an
    execution log): its directory is bound, except where that directory is one of the root's own (/tmp, say,
    which must stay the root's), where the file is created empty on the machine and bound. A directory that
    exists in the root but not on the machine is refused: the output would vanish into the root.
    """
    target = Path(path)
    if target.exists():
        return [path]
    parent = target.parent
    if not parent.is_dir():
        if root is not None and (root / str(parent).lstrip("/")).is_dir():
            raise BuildRootError(f"{path}: the directory {parent} does not exist on this machine (only in the build "
                                 "root, where the file would be lost); create it, or give a path in an existing "
                                 "directory.")
        return []  # neither here nor in the root: Bazel itself says it cannot write there
    if root is not None and (root / str(parent).lstrip("/")).is_dir():
        target.touch()
        return [path]
    return [str(parent)]


def host_path_arguments(argv: Sequence[str], cwd: Path, root: Path | None = None) -> tuple[list[str], list[str]]:
    """The arguments with each host path option made absolute, and the paths to bind for them.

    Directory options (HOST_PATH_OPTIONS) are made absolute and created; every other absolute path before `--`
    is bound by machine_path_binds; everything else, Bazel's remote options included, passes unchanged.
    """
    arguments: list[str] = []
    binds: list[str] = []
    pending = ""
    for index, argument in enumerate(argv):
        if argument == "--" and not pending:
            arguments += argv[index:]
            break
        if pending:
            value, paths = host_value(pending, argument, cwd)
            pending = ""
            arguments.append(value)
        elif argument in VALUE_OPTIONS:
            pending = argument
            arguments.append(argument)
            continue
        elif "=" in argument and argument.split("=", 1)[0] in VALUE_OPTIONS:
            option, raw = argument.split("=", 1)
            value, paths = host_value(option, raw, cwd)
            arguments.append(f"{option}={value}")
        elif named_path(argument, cwd):
            paths = machine_path_binds(named_path(argument, cwd), root)
            arguments.append(argument)
        else:
            arguments.append(argument)
            continue
        binds += [path for path in paths if path not in binds]
    return arguments, binds


def engine_sockets(environment: dict[str, str], default: str = DEFAULT_DOCKER_SOCKET) -> list[str]:
    """The machine's Docker socket, bound into the root so `bazel run` targets (oci_load) reach its engine."""
    host = environment.get("DOCKER_HOST", "unix://" + default)
    path = host.removeprefix("unix://")
    return [path] if host.startswith("unix://") and os.path.exists(path) else []


# Commands that fetch repositories and so take --repo_env (others reject it on the command line).
FETCHING_COMMANDS = ("build", "test", "run", "coverage", "query", "cquery", "aquery", "fetch", "sync", "mod", "vendor",
                     "info", "print_action")


def with_mirror_variables(argv: Sequence[str], mirrors: dict[str, str], environ: dict[str, str]) -> list[str]:
    """argv with this command's mirror variables given to Bazel as values, set or empty.

    `--repo_env=NAME` alone (in the root's bazelrc) takes the value a running server started with, so a mirror
    changed or unset between two commands would go unseen; an explicit NAME=VALUE is this command's own, and
    a changed value makes Bazel fetch what depends on it again. Empty means unset to the repository rules.
    """
    index = command_index(argv)
    if index is None or argv[index] not in FETCHING_COMMANDS:
        return list(argv)
    values = {**{name: "" for name in MIRROR_VARIABLES}, SNAPSHOT_VARIABLE: environ.get(SNAPSHOT_VARIABLE, ""),
              **mirrors}
    return [*argv[:index + 1], *(f"--repo_env={name}={values[name]}" for name in sorted(values)), *argv[index + 1:]]


def root_environment(environ: dict[str, str], mirrors: dict[str, str]) -> dict[str, str]:
    environment = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
    environment.update({name: environ[name] for name in PASSED_VARIABLES if name in environ})
    environment.update(mirrors)
    return environment


def find_project(start: Path) -> Path:
    """The workspace containing `start` (bazel may be run from a subdirectory)."""
    for directory in (start, *start.parents):
        if (directory / "MODULE.bazel").is_file():
            return directory
    return PROJECT_DIR


def git_directories(project: Path) -> list[str]:
    """The git directories of a worktree checkout, to bind into the root beside the project.

    A `git worktree` checkout's .git is a file naming its git directory under the main checkout's .git; the
    build reads HEAD and its ref from there as plain files (python/private/source_commit.bzl), so those
    directories must be visible in the root too. A plain clone's .git is inside the project already.
    """
    try:
        text = (project / ".git").read_text() if (project / ".git").is_file() else ""
    except OSError:
        return []
    if not text.startswith("gitdir:"):
        return []
    git_directory = (project / text[len("gitdir:"):].strip()).resolve()
    common = git_directory
    with contextlib.suppress(OSError):
        common = (git_directory / (git_directory / "commondir").read_text().strip()).resolve()
    needed = [common] if git_directory.is_relative_to(common) else [git_directory, common]
    return [str(path) for path in needed if path.is_dir() and not path.is_relative_to(project)]


def bazel_server_running(output_user_root: Path) -> bool:
    """Whether any Bazel server of this root is alive (each output base records its server's pid)."""
    for pid_file in output_user_root.glob("*/server/server.pid.txt"):
        with contextlib.suppress(OSError, ValueError):
            if Path(f"/proc/{int(pid_file.read_text().strip())}").exists():
                return True
    return False


def clean_scratch(layout: CacheLayout) -> None:
    """Removes the JNI libraries each Bazel server start unpacks into the root's /tmp and never removes.

    Only while no server of this root runs: a running server still loads its own.
    """
    if bazel_server_running(layout.output_user_root):
        return
    for directory in (layout.root / "tmp").glob("bazel-jni.*"):
        shutil.rmtree(directory, ignore_errors=True)


# --- `bazel run`: launchers that run on the machine ----------------------------------------------------

# The line that marks a launcher (tools/oci/private/*.sh.tpl) tools/bazel runs on the machine after Bazel built
# it in the root: pushing, verifying and loading need the user's world, which the root does not have: the docker
# config and the credential helpers it names (programs on the machine's PATH with their own state in $HOME),
# key files anywhere, the engine's contexts. Every other `bazel run` target runs in the root, as it always did.
HOST_LAUNCHER = "# tools/bazel: runs on the machine"
# The root's programs such launchers call: crane and cosign come first on the PATH, so the pinned ones run;
# docker comes last, so the machine's own CLI (its contexts, its plugins) wins where there is one.
HOST_TOOLS_FIRST = ("crane", "cosign")
HOST_TOOLS_LAST = ("docker",)
# The root's dynamic loader and library directory, by machine: the root's binaries run on the machine through
# them, since the machine's libc may be older than the one they were built against.
ROOT_LOADERS = {"x86_64": "x86_64-linux-gnu/ld-linux-x86-64.so.2", "aarch64": "aarch64-linux-gnu/ld-linux-aarch64.so.1"}


def command_index(argv: Sequence[str]) -> int | None:
    """Where Bazel's command word is in argv (after the startup options), or None."""
    skip = False
    for index, argument in enumerate(argv):
        if skip:
            skip = False
        elif argument.startswith("-"):
            skip = argument in VALUE_OPTIONS
        else:
            return index
    return None


def with_script_path(argv: Sequence[str], script: Path) -> list[str] | None:
    """A `run` command's argv asking Bazel to write the run script instead of running it; None for others.

    Also None when the caller asked for a script themselves: theirs is what they get.
    """
    index = command_index(argv)
    if index is None or argv[index] != "run":
        return None
    options = argv[:argv.index("--")] if "--" in argv else argv
    if any(argument.startswith("--script_path") for argument in options):
        return None
    return [*argv[:index + 1], f"--script_path={script}", *argv[index + 1:]]


def host_launcher(script: str) -> Path | None:
    """The launcher a run script starts, when it is marked HOST_LAUNCHER."""
    for candidate in re.findall(r"(/[^\s'\"]+)", script):
        path = Path(candidate)
        with contextlib.suppress(OSError):
            if path.is_file() and any(line.startswith(HOST_LAUNCHER)
                                      for line in path.read_text(errors="replace")[:1024].splitlines()):
                return path
    return None


def write_host_tools(layout: CacheLayout, machine: str = platform.machine()) -> tuple[Path, Path]:
    """Wrappers that run the root's own programs on the machine; the directories to put first and last on PATH."""
    loader = ROOT_LOADERS.get(machine)
    if loader is None:
        raise BuildRootError(f"`tools/bazel run` of a push, verify or load target runs the build root's crane and "
                             f"cosign on this machine, which it cannot do on {machine}; run it on x86_64 or aarch64.")
    libraries = layout.root / "usr/lib" / loader.split("/")[0]
    directories = (layout.host_tools / "first", layout.host_tools / "last")
    for directory, names in zip(directories, (HOST_TOOLS_FIRST, HOST_TOOLS_LAST)):
        for name in names:
            wrapper = directory / name
            write_if_changed(wrapper, "#!/bin/sh\n# Written by tools/bazel: the build root's " + name + ", run on the "
                             "machine with the root's own libraries.\nexec " + " ".join(shlex.quote(str(word)) for word in (
                                 layout.root / "usr/lib" / loader, "--library-path", libraries,
                                 layout.root / "usr/bin" / name)) + ' "$@"\n')
            wrapper.chmod(0o755)
    return directories


def host_environment(environ: dict[str, str], tools: tuple[Path, Path], project: Path, cwd: Path) -> dict[str, str]:
    """The user's whole environment, with the root's tools on PATH and what `bazel run` tells its binaries."""
    first, last = tools
    environment = dict(environ)
    environment["PATH"] = os.pathsep.join(
        part for part in (str(first), environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), str(last)) if part)
    environment.setdefault("BUILD_WORKSPACE_DIRECTORY", str(project))
    environment.setdefault("BUILD_WORKING_DIRECTORY", str(cwd))
    return environment


@dataclass(frozen=True)
class Plan:
    """How to carry out one tools/bazel command: Bazel in the root, then, for `run`, the script it wrote."""

    command: list[str]  # Bazel in the root
    script: Path | None = None  # where a `run` command's script is written
    layout: CacheLayout | None = None
    project: Path = PROJECT_DIR
    root_command: Callable[[str], list[str]] | None = None  # the command that runs a script's text in the root


def run(argv: Sequence[str], environ: dict[str, str]) -> Plan:
    """Prepares the root and returns the command that runs Bazel inside it."""
    check_user(os.geteuid())
    cwd = Path.cwd().resolve()
    project = find_project(cwd)
    check_bazel_path(project, "The checkout", "clone or move it to a path of ASCII characters only")
    packages = read_package_list()
    layout = cache_layout(environ, packages)
    check_bazel_path(layout.home, "The cache directory", "set DISTROLESS_PYTHON_CACHE to a path of ASCII characters")
    check_cache_home(layout.home)
    mirrors = find_mirrors(environ, read_apt_sources())
    ensure_root(packages, layout, mirrors, snapshot_mirror(environ, packages))
    # Bazel runs where the user is, so relative target patterns and `bazel run`'s BUILD_WORKING_DIRECTORY are
    # theirs; outside any workspace (bazelisk's `bazel version`, say) it runs at the project's top.
    cwd = cwd if cwd.is_relative_to(project) else project
    configure_root(layout, project)
    clean_scratch(layout)
    for directory in (layout.output_user_root, layout.repository_cache, layout.remote_cache):
        directory.mkdir(parents=True, exist_ok=True)
    arguments, binds = host_path_arguments(argv, Path.cwd(), layout.root)
    arguments = with_mirror_variables(arguments, mirrors, environ)
    binds += [path for path in git_directories(project) if path not in binds]
    environment = root_environment(environ, mirrors)
    environment[REMOTE_CACHE_VARIABLE] = str(layout.remote_cache)
    # Inside the output root, which the root sees at the same path; one per tools/bazel process.
    script = layout.output_user_root / f"run-script-{os.getpid()}"
    scripted = with_script_path(arguments, script)
    if scripted is None:
        return Plan(enter_command(layout, project, environment, arguments, binds, cwd=cwd))
    return Plan(enter_command(layout, project, environment, scripted, binds, cwd=cwd), script, layout, project,
                lambda text: enter_command(layout, project, environment, ["-c", text, "bazel-run"], binds,
                                           program="/bin/sh", cwd=cwd))


def wait(command: list[str]) -> int:
    """Runs Bazel and returns its exit status; Ctrl-C reaches it from the terminal, other signals are passed on."""
    process = subprocess.Popen(command)
    signal.signal(signal.SIGINT, lambda *_: None)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda number, _: process.send_signal(number))
    status = process.wait()
    return 128 - status if status < 0 else status


def run_script(plan: Plan, environ: dict[str, str]) -> tuple[list[str], dict[str, str] | None]:
    """The command that runs the script `bazel run` wrote, and its environment (None: the command sets it).

    A HOST_LAUNCHER runs on the machine with the user's environment; every other target in the root.
    """
    assert plan.script is not None and plan.layout is not None and plan.root_command is not None
    text = plan.script.read_text()
    plan.script.unlink()
    if host_launcher(text) is None:
        return plan.root_command(text), None
    environment = host_environment(environ, write_host_tools(plan.layout), plan.project, Path.cwd())
    return ["/bin/sh", "-c", text, "bazel-run"], environment


def main(argv: Sequence[str]) -> int:
    """Every argument goes to Bazel unchanged, so there is no option parsing here."""
    try:
        plan = run(argv, dict(os.environ))
        # Replacing this process keeps Bazel's stdin, stdout, signals and exit code those of the caller.
        if plan.script is None:
            os.execvp(plan.command[0], plan.command)
        status = wait(plan.command)
        if status != 0 or not plan.script.exists():
            return status
        command, environment = run_script(plan, dict(os.environ))
    except BuildRootError as error:
        print(f"tools/bazel: {error}", file=sys.stderr)
        return 2
    os.execvpe(command[0], command, os.environ if environment is None else environment)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
