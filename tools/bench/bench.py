"""Benchmark and reproducibility report for the Python 3.9 amd64 image.

Run on the host, as root, from anywhere:

    python3 tools/bench/bench.py [--runs N] [--json OUT] [--update-readme] [--skip PHASE ...]

It drives tools/bazel itself, in output bases of its own (under the build root's output user root, which
tools/bazel binds into the root), so the workspace's own output base and bazel-* symlinks are left alone.
In one run it measures, side by side:

- size: the image's filesystem as one tar (uncompressed, gzip -6, zstd -19), ours and a peer made with
  `mmdebstrap --variant=minbase --include=python3.9 bullseye` (what a Debian slim image plus apt's python3.9
  holds), with and without our precompiled .pyc layer; our OCI layers; what stdlib pruning saved;
- startup: N cold starts of `python3.9 -c "import json, ssl, asyncio, sqlite3"`, each in a fresh private
  mount namespace chrooted into the unpacked root, interleaving ours, the peer and ours without .pyc
  (cold process, warm page cache: dropping the page cache is not required of the machine);
- build: clean build (fresh output base, warm repository cache), no-op rebuild, rebuild after touching a
  structure-test config, and the lock tool (which must leave the lock unchanged);
- cache: a clean output base building from a disk cache a first clean build filled;
- reproducibility: manifest digests of clean builds in different output bases and workspace paths.

It prints a Markdown report on stdout (progress goes to stderr) and writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime
import fnmatch
import hashlib
import io
import json
import math
import os
import platform
import posixpath
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

if TYPE_CHECKING:
    from tools.build_root import CacheLayout

PROJECT_DIR = Path(__file__).resolve().parents[2]
README = PROJECT_DIR / "README.md"
README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"

IMAGE = "3.9_amd64"
IMAGE_TARGET = "//python:" + IMAGE
ALL_IMAGES = "//python:all"
# Per-architecture images of the default variant, e.g. bazel-bin/python/3.13_arm64.
ARCH_IMAGE = re.compile(r"^(\d+\.\d+)_(amd64|arm64|riscv64)$")
PYC_LAYER_SUFFIX = "_pyc.tar.gz"
INTERPRETER = "/usr/bin/python3.9"  # the peer has no python3 (that is Debian's python3 package)
STARTUP_CODE = "import json, ssl, asyncio, sqlite3"
# What the interpreter sees in the chroot: no .pyc may be written, so every start is like a fresh container's.
STARTUP_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
PEER_SUITE = "bullseye"
PEER_PACKAGE = "python3.9"
VERSION_PACKAGE = "python3.9-minimal"  # the interpreter's own package, in both roots
TOUCHED_CONFIG = "tests/root.yaml"
LOCK_FILE = "debian_packages/bullseye/lock.json"
LOCK_ARGS = ("--manifest", "debian_packages/bullseye/manifest.yaml", "--lock", LOCK_FILE)
# No bazel-* symlinks: the workspace's own must keep pointing at its own output base.
BAZEL_FLAGS = ("--symlink_prefix=/", "--color=no", "--curses=no")
SKIPPABLE = ("touch", "lock", "images", "cache", "repro")

GZIP_RATIO_GOAL = 0.35
STARTUP_RATIO_GOAL = 1.05
NOOP_GOAL_SECONDS = 2.0
CACHE_HIT_GOAL = 1.0

VARIANTS = ("ours", "peer", "ours-no-pyc")
PEER_SLIM = "peer-slim"
# What Docker's debian:*-slim images leave out (debuerreotype's slimify exclude and include lists, which
# become dpkg path-exclude/path-include rules): the peer is measured again without them, as slim would hold it.
SLIM_EXCLUDES = ("usr/share/doc/*", "usr/share/info/*", "usr/share/linda/*", "usr/share/lintian/overrides/*",
                 "usr/share/locale/*", "usr/share/man/*", "usr/share/doc/kde/HTML/*/*", "usr/share/gnome/help/*/*",
                 "usr/share/omf/*/*-*.emf")
SLIM_INCLUDES = ("usr/share/doc/*/copyright", "usr/share/doc/kde/HTML/C/*", "usr/share/gnome/help/*/C/*",
                 "usr/share/locale/all_languages", "usr/share/locale/currency/*", "usr/share/locale/l10n/*",
                 "usr/share/locale/languages", "usr/share/locale/locale.alias", "usr/share/omf/*/*-C.emf")


class BenchError(Exception):
    """Something the benchmark cannot work around; the message says what."""


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- Results ----------------------------------------------------------------------------------------

@dataclass
class Machine:
    date: str
    arch: str
    cpus: int
    memory_bytes: int
    commit: str


@dataclass
class FilesystemSize:
    """The filesystem as one deterministic tar, and that tar compressed."""

    tar: int
    gzip: int
    zstd: int
    files: int


@dataclass
class LayerSize:
    name: str
    digest: str
    compressed: int
    uncompressed: int


@dataclass
class Pruning:
    before_compressed: int
    after_compressed: int
    before_uncompressed: int
    after_uncompressed: int
    removed: list[str]  # topmost removed paths


@dataclass
class Startup:
    samples_ms: list[float]
    median_ms: float
    p90_ms: float


@dataclass
class ProcessSummary:
    """Bazel's 'INFO: N processes: X disk cache hit, Y internal, Z linux-sandbox.' line."""

    total: int
    kinds: dict[str, int]


@dataclass
class Builds:
    clean_seconds: float | None = None
    clean_processes: ProcessSummary | None = None
    noop_seconds: float | None = None
    touch_seconds: float | None = None
    touch_targets: list[str] = field(default_factory=list)
    touch_actions: list[str] = field(default_factory=list)
    touch_image_actions: list[str] = field(default_factory=list)
    lock_seconds: float | None = None
    lock_unchanged: bool | None = None
    lock_matches_head: bool | None = None  # `git diff` of the lock is empty after the lock tool ran


@dataclass
class Cache:
    fill: ProcessSummary
    second: ProcessSummary
    hits: int
    non_internal: int
    ratio: float | None


@dataclass
class Repro:
    first_workspace: str
    first_digest: str
    second_workspace: str
    second_digest: str
    third_digest: str | None  # the cache-hit build, same workspace as the second
    overlaid_files: int  # uncommitted files copied onto the clone of HEAD


@dataclass
class Goal:
    name: str
    target: str
    value: str
    met: bool | None  # None: not measured


@dataclass
class ImageSize:
    target: str
    python: str
    architecture: str
    compressed: int  # the OCI layers as pushed (gzip)
    uncompressed: int


@dataclass
class Report:
    machine: Machine
    runs: int
    python_versions: dict[str, str]
    sizes: dict[str, FilesystemSize]
    layers: list[LayerSize]
    pruning: Pruning | None
    startup: dict[str, Startup]
    builds: Builds
    cache: Cache | None
    repro: Repro | None
    images: list[ImageSize] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    not_measured: list[str] = field(default_factory=list)


# --- Pure helpers -----------------------------------------------------------------------------------

SUMMARY_LINE = re.compile(r"^INFO: (\d+) process(?:es)?(?:: (.*?))?\.?\s*$", re.MULTILINE)


def parse_process_summary(output: str) -> ProcessSummary:
    """The last process summary line in Bazel's output."""
    matches = SUMMARY_LINE.findall(output)
    if not matches:
        raise BenchError("Bazel printed no 'INFO: N processes: ...' summary line")
    total, detail = matches[-1]
    kinds: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in detail.split(","))):
        number, _, kind = part.partition(" ")
        if not number.isdigit() or not kind:
            raise BenchError(f"cannot read {part!r} in Bazel's process summary")
        kinds[kind] = kinds.get(kind, 0) + int(number)
    return ProcessSummary(int(total), kinds)


def cache_hits(summary: ProcessSummary) -> tuple[int, int, float | None]:
    """(disk or remote cache hits, processes that are not internal, their ratio or None if there are none)."""
    hits = sum(n for kind, n in summary.kinds.items() if kind in ("disk cache hit", "remote cache hit"))
    non_internal = summary.total - summary.kinds.get("internal", 0)
    return hits, non_internal, (hits / non_internal if non_internal else None)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def startup_stats(samples_ms: list[float]) -> Startup:
    return Startup(samples_ms, statistics.median(samples_ms), percentile(samples_ms, 0.9))


def interleaved_order(variants: Sequence[str], runs: int) -> Iterator[str]:
    """Each round runs every variant once, the first one rotating, so drift touches all of them alike."""
    for round_ in range(runs):
        shift = round_ % len(variants)
        yield from (*variants[shift:], *variants[:shift])


def layer_names(config: dict[str, Any]) -> list[str]:
    """Each layer's file name, from the config's history (one non-empty entry per layer, in order)."""
    return [posixpath.basename(entry.get("created_by", "")) for entry in config.get("history", [])
            if not entry.get("empty_layer")]


def pyc_layer_index(names: Sequence[str]) -> int:
    found = [index for index, name in enumerate(names) if name.endswith(PYC_LAYER_SUFFIX)]
    if len(found) != 1:
        raise BenchError(f"expected exactly one layer named *{PYC_LAYER_SUFFIX} in the image's history, found "
                         f"{len(found)} among {', '.join(names) or 'none'}")
    return found[0]


def topmost(paths: set[str]) -> list[str]:
    """The paths whose parent directory is not itself in the set."""
    return sorted(p for p in paths if posixpath.dirname(p) not in paths)


EXPLAIN_ACTION = re.compile(r"^Executing action '(.*)':", re.MULTILINE)
# Runs on every build ("unconditional execution is requested"), so it says nothing about what a change costs.
ALWAYS_RUNS = "BazelWorkspaceStatusAction"


def parse_explain(text: str) -> list[str]:
    """The actions Bazel's --explain file says it executed, but for the one that runs on every build."""
    return [action for action in EXPLAIN_ACTION.findall(text) if not action.startswith(ALWAYS_RUNS)]


def image_actions(actions: Sequence[str], layer_files: Sequence[str], image: str) -> list[str]:
    """The actions among `actions` that wrote one of the image's layers or its OCI layout."""
    return [a for a in actions
            if any(("/" + name) in a for name in layer_files) or re.search(rf"/{re.escape(image)}$", a)]


def peer_cache_key(command: Sequence[str], target: str) -> str:
    """Names the cached peer root by its mmdebstrap command, with the target directory left out."""
    normalized = ["DIR" if word == target else word for word in command]
    return hashlib.sha256(json.dumps(normalized).encode()).hexdigest()[:16]


def evaluate_goals(gzip_ratio: float | None, startup_ratio: float | None, noop_seconds: float | None,
                   cache_ratio: float | None, digests: Sequence[str] | None) -> list[Goal]:
    def check(value: float | None, ok: Callable[[float], bool], text: str) -> tuple[str, bool | None]:
        return ("not measured", None) if value is None else (text.format(value), ok(value))

    goals = [
        ("compressed size vs peer (gzip, with .pyc)", f"<= {GZIP_RATIO_GOAL:.2f}x",
         *check(gzip_ratio, lambda v: v <= GZIP_RATIO_GOAL, "{:.2f}x")),
        ("cold start vs peer (median)", f"<= {STARTUP_RATIO_GOAL:.2f}x",
         *check(startup_ratio, lambda v: v <= STARTUP_RATIO_GOAL, "{:.2f}x")),
        ("no-op rebuild", f"<= {NOOP_GOAL_SECONDS:g} s",
         *check(noop_seconds, lambda v: v <= NOOP_GOAL_SECONDS, "{:.2f} s")),
        ("disk cache hits (non-internal processes)", "100%",
         *check(cache_ratio, lambda v: v >= CACHE_HIT_GOAL, "{:.0%}")),
    ]
    if digests is None:
        same: tuple[str, bool | None] = ("not measured", None)
    else:
        identical = len(set(digests)) == 1
        same = ("identical" if identical else "differ: " + ", ".join(short_digest(d) for d in digests), identical)
    goals.append(("manifest digests across output bases and workspace paths", "identical", *same))
    return [Goal(name, target, value, met) for name, target, value, met in goals]


def short_digest(digest: str) -> str:
    return digest.split(":")[-1][:12]


def human_bytes(count: int) -> str:
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def format_ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}x"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    if any(len(row) != len(headers) for row in rows):
        raise ValueError("every row needs one cell per header")
    return "\n".join([line(headers), line(["---"] * len(headers)), *(line(row) for row in rows)])


def met_text(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "not measured"}[met]


def replace_readme_section(text: str, section: str) -> str:
    """Replaces what lies between the bench markers with `section`."""
    if text.count(README_START) != 1 or text.count(README_END) != 1 or text.index(README_START) > text.index(README_END):
        raise BenchError(f"README.md needs exactly one '{README_START}' line and, after it, one '{README_END}' "
                         "line around the benchmark section; add them where the report belongs and run again.")
    head, rest = text.split(README_START)
    _, tail = rest.split(README_END)
    return f"{head}{README_START}\n{section.strip()}\n{README_END}{tail}"


# --- Rendering --------------------------------------------------------------------------------------

def render(report: Report) -> str:
    m = report.machine
    parts = [
        f"Measured {m.date} at commit {m.commit} on {m.arch}, {m.cpus} CPUs, {human_bytes(m.memory_bytes)} memory, "
        f"with `python3 tools/bench/bench.py --runs {report.runs}`. Peer: `mmdebstrap --variant=minbase "
        f"--include={PEER_PACKAGE} {PEER_SUITE}` ({VERSION_PACKAGE} {report.python_versions.get('peer', '?')}); ours: "
        f"`{IMAGE_TARGET}` ({VERSION_PACKAGE} {report.python_versions.get('ours', '?')}).",
        "",
        format_table(["goal", "target", "measured", "met"],
                     [[g.name, g.target, g.value, met_text(g.met)] for g in report.goals]),
        "",
        format_table(["measure", "ours", "peer", "ours / peer", "peer, slim paths dropped", "ours / slim peer",
                      "ours without .pyc", "without / peer"],
                     size_rows(report.sizes) + startup_rows(report.startup)),
        "",
        format_table(["build", "result"], build_rows(report)),
        "",
        format_table(["layer", "compressed (gzip)", "uncompressed", "share of compressed"], layer_rows(report.layers)),
    ]
    if report.images:
        parts += ["", format_table(["image (default variant)", "Python", "arch", "compressed (gzip layers)",
                                    "uncompressed"], image_rows(report.images))]
    if report.pruning:
        p = report.pruning
        parts += ["", f"Pruning the standard library removed {', '.join(p.removed) or 'nothing'}: "
                      f"{human_bytes(p.before_uncompressed - p.after_uncompressed)} uncompressed, "
                      f"{human_bytes(p.before_compressed - p.after_compressed)} compressed "
                      f"(`{IMAGE}_python_debs` {human_bytes(p.before_compressed)} -> `{IMAGE}_python` "
                      f"{human_bytes(p.after_compressed)})."]
    if report.repro:
        r = report.repro
        second = r.second_workspace + (f", HEAD plus {r.overlaid_files} uncommitted paths" if r.overlaid_files else "")
        third = f", and from the disk cache `{r.third_digest}`" if r.third_digest else ""
        parts += ["", f"Manifest digests: `{r.first_digest}` ({r.first_workspace}), `{r.second_digest}` "
                      f"({second}){third}."]
    parts += ["", "Startup is a cold process with a warm page cache: each start is a new process in a fresh mount "
                  "namespace, chrooted into the unpacked root, with `PYTHONDONTWRITEBYTECODE=1`; the three roots "
                  "are interleaved. Sizes are the unpacked filesystem as one tar, compressed the same way for all. "
                  "\"Slim paths dropped\" is the peer without what Docker's `debian:*-slim` images leave out "
                  "(documentation but copyright files, man and info pages, locales), as `debian:bullseye-slim` "
                  "with `apt-get install python3.9` would hold it; the goal compares with the peer itself."]
    if report.not_measured:
        parts += ["", "Not measured: " + "; ".join(report.not_measured) + "."]
    return "\n".join(parts) + "\n"


def size_rows(sizes: dict[str, FilesystemSize]) -> list[list[str]]:
    rows = []
    for label, attribute in (("filesystem tar, uncompressed", "tar"), ("filesystem tar, gzip -6", "gzip"),
                             ("filesystem tar, zstd -19", "zstd"), ("files", "files")):
        values = {v: getattr(size, attribute) for v, size in sizes.items()}
        show = (lambda n: str(n)) if attribute == "files" else human_bytes
        rows.append(comparison_row(label, values, show))
    return rows


def startup_rows(startup: dict[str, Startup]) -> list[list[str]]:
    return [comparison_row(f"cold start, {name}", {v: getattr(s, attribute) for v, s in startup.items()},
                           lambda ms: f"{ms:.1f} ms")
            for name, attribute in (("median", "median_ms"), ("p90", "p90_ms"))]


def comparison_row(label: str, values: dict[str, float], show: Callable[[Any], str]) -> list[str]:
    def cell(variant: str) -> str:
        return show(values[variant]) if variant in values else "–"

    return [label, cell("ours"), cell("peer"), format_ratio(ratio(values.get("ours"), values.get("peer"))),
            cell(PEER_SLIM), format_ratio(ratio(values.get("ours"), values.get(PEER_SLIM))),
            cell("ours-no-pyc"), format_ratio(ratio(values.get("ours-no-pyc"), values.get("peer")))]


def seconds(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.2f} s"


def build_rows(report: Report) -> list[list[str]]:
    b = report.builds
    clean = seconds(b.clean_seconds)
    if b.clean_processes:
        clean += f" ({b.clean_processes.total} processes)"
    rows = [["clean build, fresh output base, warm repository cache", clean],
            ["no-op rebuild", seconds(b.noop_seconds)]]
    if b.touch_seconds is not None:
        rerun = "; ".join(b.touch_actions) or "none"
        layers = "no image layer" if not b.touch_image_actions else "image actions: " + "; ".join(b.touch_image_actions)
        rows.append([f"rebuild after touching `{TOUCHED_CONFIG}`", f"{seconds(b.touch_seconds)}; re-ran: {rerun} ({layers})"])
    else:
        rows.append([f"rebuild after touching `{TOUCHED_CONFIG}`", "not measured"])
    lock = seconds(b.lock_seconds)
    if b.lock_unchanged is not None:
        lock += "; lock unchanged" if b.lock_unchanged else "; **lock changed** (restored)"
        lock += ", `git diff` empty" if b.lock_matches_head else ", but it differs from HEAD (uncommitted)"
    rows.append(["`tools/bazel run //tools/debian:lock` (bullseye)", lock])
    if report.cache:
        c = report.cache
        rows.append(["clean output base, disk cache filled by another",
                     f"{c.hits} of {c.non_internal} non-internal processes hit ({format_percent(c.ratio)})"])
    return rows


def format_percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def image_rows(images: list[ImageSize]) -> list[list[str]]:
    return [[f"`{i.target}`", i.python, i.architecture, human_bytes(i.compressed), human_bytes(i.uncompressed)]
            for i in images]


def layer_rows(layers: list[LayerSize]) -> list[list[str]]:
    total = sum(layer.compressed for layer in layers)
    rows = [[f"`{layer.name}`", human_bytes(layer.compressed), human_bytes(layer.uncompressed),
             f"{layer.compressed / total:.1%}" if total else "–"] for layer in layers]
    rows.append(["total (OCI layers as pushed)", human_bytes(total), human_bytes(sum(l.uncompressed for l in layers)),
                 "100%"])
    return rows


def report_json(report: Report) -> str:
    return json.dumps(dataclasses.asdict(report), indent=2, sort_keys=True) + "\n"


# --- Bazel ------------------------------------------------------------------------------------------

@dataclass
class BazelRun:
    seconds: float
    stdout: str  # what the command prints (query results, info)
    stderr: str  # where Bazel reports, its process summary included


class Bazel:
    """tools/bazel of one workspace with an output base of its own."""

    def __init__(self, workspace: Path, output_base: Path, started: list["Bazel"]) -> None:
        self.workspace = workspace
        self.output_base = output_base
        self.running = False
        started.append(self)  # so cleanup shuts its server down

    def run(self, *args: str) -> BazelRun:
        command = [str(self.workspace / "tools/bazel"), f"--output_base={self.output_base}", *args]
        self.running = True
        started = time.monotonic()
        result = subprocess.run(command, cwd=self.workspace, capture_output=True, text=True)
        elapsed = time.monotonic() - started
        if result.returncode != 0:
            tail = "\n".join((result.stderr or result.stdout).splitlines()[-30:])
            raise BenchError(f"{' '.join(command)} failed (exit {result.returncode}):\n{tail}")
        return BazelRun(elapsed, result.stdout, result.stderr)

    def build(self, *args: str) -> BazelRun:
        return self.run("build", *BAZEL_FLAGS, *args)

    def bazel_bin(self) -> Path:
        return Path(self.run("info", *BAZEL_FLAGS, "bazel-bin").stdout.strip())

    def shutdown(self) -> None:
        if self.running and self.output_base.is_dir():
            subprocess.run([str(self.workspace / "tools/bazel"), f"--output_base={self.output_base}", "shutdown"],
                           cwd=self.workspace, capture_output=True)
        self.running = False


# --- The image --------------------------------------------------------------------------------------

@dataclass
class OciImage:
    directory: Path
    manifest_digest: str
    config: dict[str, Any]
    layers: list[tuple[str, Path, str, int]]  # name, blob, digest, compressed size


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def blob(layout: Path, digest: str) -> Path:
    algorithm, _, hex_digest = digest.partition(":")
    return layout / "blobs" / algorithm / hex_digest


def read_image(layout: Path) -> OciImage:
    index = read_json(layout / "index.json")
    if len(index.get("manifests", [])) != 1:
        raise BenchError(f"{layout}: expected a single-image OCI layout")
    digest = index["manifests"][0]["digest"]
    manifest = read_json(blob(layout, digest))
    config = read_json(blob(layout, manifest["config"]["digest"]))
    names = layer_names(config)
    if len(names) != len(manifest["layers"]):
        raise BenchError(f"{layout}: {len(names)} history entries for {len(manifest['layers'])} layers")
    layers = [(name, blob(layout, d["digest"]), d["digest"], d["size"]) for name, d in zip(names, manifest["layers"])]
    return OciImage(layout, digest, config, layers)


def manifest_digest(layout: Path) -> str:
    return str(read_json(layout / "index.json")["manifests"][0]["digest"])


def layer_sizes(image: OciImage) -> list[LayerSize]:
    from tools import tarball  # noqa: PLC0415  (the project's own tar reader)

    return [LayerSize(name, digest, size, len(tarball.decompress(path.read_bytes())))
            for name, path, digest, size in image.layers]


def image_size(layout: Path, target: str) -> ImageSize:
    image = read_image(layout)
    sizes = layer_sizes(image)
    return ImageSize(target, image.config.get("config", {}).get("Labels", {}).get("python.version", "?"),
                     image.config["architecture"], sum(layer.compressed for layer in sizes),
                     sum(layer.uncompressed for layer in sizes))


def image_sizes(python_dir: Path) -> list[ImageSize]:
    """Every per-architecture image of the default variant under bazel-bin/python, by version then arch."""
    found = [(match, path) for path in python_dir.iterdir() if (match := ARCH_IMAGE.match(path.name)) and path.is_dir()]
    found.sort(key=lambda item: ([int(part) for part in item[0].group(1).split(".")], item[0].group(2)))
    return [image_size(path, "//python:" + path.name) for _, path in found]


def pruning(bazel_bin: Path) -> Pruning:
    from tools import tarball  # noqa: PLC0415

    before_path = bazel_bin / "python" / f"{IMAGE}_python_debs.tar.gz"
    after_path = bazel_bin / "python" / f"{IMAGE}_python.tar.gz"
    for path in (before_path, after_path):
        if not path.is_file():
            raise BenchError(f"{path} is missing; the layer targets of {IMAGE_TARGET} have been renamed?")
    before, after = before_path.read_bytes(), after_path.read_bytes()
    before_tar, after_tar = tarball.decompress(before), tarball.decompress(after)
    removed = member_names(before_tar) - member_names(after_tar)
    return Pruning(len(before), len(after), len(before_tar), len(after_tar), topmost(removed))


def member_names(tar: bytes) -> set[str]:
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        return {posixpath.normpath(name).lstrip("/") for name in archive.getnames()} - {"."}


def python_version(config: dict[str, Any]) -> str:
    return str(config.get("config", {}).get("Labels", {}).get("python.version", "?"))


# --- Filesystems ------------------------------------------------------------------------------------

def walk_sorted(root: Path) -> Iterator[Path]:
    """Every path below `root`, depth first in name order, not following symlinks."""
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        yield Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            yield from walk_sorted(Path(entry.path))


def slim_kept(paths: Sequence[str]) -> set[str]:
    """The paths a slim image keeps: those slim does not exclude, and the directories holding them."""
    def matches(path: str, patterns: Sequence[str]) -> bool:
        return any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)  # "*" spans "/", as in dpkg

    kept = {p for p in paths if not matches(p, SLIM_EXCLUDES) or matches(p, SLIM_INCLUDES)}
    for path in list(kept):
        parent = posixpath.dirname(path)
        while parent and parent not in kept:
            kept.add(parent)
            parent = posixpath.dirname(parent)
    return kept


def filesystem_tar(root: Path, slim: bool = False) -> tuple[bytes, int]:
    """The tree as one tar (sorted, mtime 0; devices, fifos and sockets left out), and its file count."""
    paths = [(path, str(path.relative_to(root))) for path in walk_sorted(root)]
    if slim:
        kept = slim_kept([relative for _, relative in paths])
        paths = [(path, relative) for path, relative in paths if relative in kept]
    buffer = io.BytesIO()
    files = 0
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, relative in paths:
            info = tar.gettarinfo(str(path), arcname=relative)
            if info.type not in (tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE):
                continue
            info.mtime, info.uname, info.gname = 0, "", ""
            if info.isreg():
                files += 1
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    return buffer.getvalue(), files


def filesystem_size(root: Path, slim: bool = False) -> FilesystemSize:
    from tools import tarball  # noqa: PLC0415  (gzip -6 without timestamp, zstd -19 single-threaded)

    data, files = filesystem_tar(root, slim)
    return FilesystemSize(len(data), len(tarball.compress(data, "gzip")), len(tarball.compress(data, "zstd")), files)


def unpack(layers: Sequence[Path], dest: Path) -> Path:
    from tools.image.unpack import unpack_layers  # noqa: PLC0415

    unpack_layers(list(layers), dest)
    return dest


def peer_command(target: Path, mirror: str) -> list[str]:
    # Snapshot mirrors serve bullseye's Release past its Valid-Until date (as tools/build_root.py allows).
    return ["mmdebstrap", "--variant=minbase", "--aptopt=Acquire::Check-Valid-Until \"false\"",
            f"--include={PEER_PACKAGE}", PEER_SUITE, str(target), mirror]


def ensure_peer(layout: "CacheLayout", mirror: str) -> Path:
    """The peer root, built once per command and cached beside the build root."""
    from tools.build_root import exclusive_lock  # noqa: PLC0415

    placeholder = Path("/nonexistent")
    key = peer_cache_key(peer_command(placeholder, mirror), str(placeholder))
    root = layout.home / f"bench-peer-{key}"
    with exclusive_lock(root.with_name(root.name + ".lock")):
        if root.is_dir():
            progress(f"peer root: cached in {root}")
            return root
        partial = root.with_name(root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        progress(f"peer root: running mmdebstrap into {root} (once; about a minute)")
        result = subprocess.run(peer_command(partial, mirror), capture_output=True, text=True)
        if result.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            raise BenchError(f"mmdebstrap failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
        os.replace(partial, root)
    return root


def debian_version(root: Path, package: str) -> str:
    """The package's version, from dpkg's status file or, in a distroless image, its status.d entry."""
    for status in (root / "var/lib/dpkg/status.d" / package, root / "var/lib/dpkg/status"):
        if status.is_file():
            match = re.search(rf"^Package: {re.escape(package)}\n(?:.+\n)*?Version: (.+)$", status.read_text(),
                              re.MULTILINE)
            if match:
                return match.group(1)
    return "?"


# --- Startup ----------------------------------------------------------------------------------------

def start_once(root: Path) -> float:
    """Milliseconds for one interpreter start in a fresh private mount namespace chrooted into `root`."""
    command = ["unshare", "--mount", "--propagation", "private", "chroot", str(root), INTERPRETER, "-c", STARTUP_CODE]
    started = time.perf_counter()
    result = subprocess.run(command, env=STARTUP_ENV, capture_output=True, text=True)
    elapsed = (time.perf_counter() - started) * 1000
    if result.returncode != 0:
        raise BenchError(f"{' '.join(command)} failed (exit {result.returncode}): {result.stderr.strip()}")
    return elapsed


def measure_startup(roots: dict[str, Path], runs: int) -> dict[str, Startup]:
    for root in roots.values():
        start_once(root)  # warm the page cache; not counted
    samples: dict[str, list[float]] = {name: [] for name in roots}
    for name in interleaved_order(list(roots), runs):
        samples[name].append(start_once(roots[name]))
    return {name: startup_stats(values) for name, values in samples.items()}


# --- Build phases -----------------------------------------------------------------------------------

def measure_clean_and_noop(bazel: Bazel, builds: Builds) -> Path:
    progress(f"clean build of {IMAGE_TARGET} in a fresh output base")
    clean = bazel.build(IMAGE_TARGET)
    builds.clean_seconds, builds.clean_processes = clean.seconds, parse_process_summary(clean.stderr)
    progress(f"clean build: {clean.seconds:.1f} s; no-op rebuild")
    builds.noop_seconds = bazel.build(IMAGE_TARGET).seconds
    return bazel.bazel_bin() / "python" / IMAGE


def config_tests(bazel: Bazel) -> list[str]:
    """The image's structure tests that read tests/root.yaml.

    By attribute rather than rdeps(), which would load the whole transitive closure, stub modules included.
    """
    label = "//" + posixpath.dirname(TOUCHED_CONFIG) + ":" + posixpath.basename(TOUCHED_CONFIG)
    query = f'attr(configs, "{re.escape(label)}", attr(image, ":{re.escape(IMAGE)}$", kind(test, //python:all)))'
    output = bazel.run("query", "--color=no", "--curses=no", query).stdout
    return sorted(line for line in output.splitlines() if line.startswith("//"))


def measure_touch(bazel: Bazel, builds: Builds, layer_files: Sequence[str], explain: Path) -> None:
    targets = config_tests(bazel)
    if not targets:
        raise BenchError(f"no test of {IMAGE_TARGET} reads {TOUCHED_CONFIG}")
    builds.touch_targets = targets
    progress(f"building {', '.join(targets)} once, then again after touching {TOUCHED_CONFIG}")
    bazel.build(IMAGE_TARGET, *targets)
    config = PROJECT_DIR / TOUCHED_CONFIG
    original = config.read_bytes()
    config.write_bytes(original + b"\n")
    try:
        run = bazel.build(f"--explain={explain}", "--verbose_explanations", IMAGE_TARGET, *targets)
    finally:
        restore_appended(config, original, b"\n")
    builds.touch_seconds = run.seconds
    builds.touch_actions = parse_explain(explain.read_text())
    builds.touch_image_actions = image_actions(builds.touch_actions, layer_files, IMAGE)


def restore_appended(path: Path, original: bytes, appended: bytes) -> None:
    """Takes back what we appended, unless someone else changed the file meanwhile."""
    if path.read_bytes() == original + appended:
        path.write_bytes(original)
    else:
        progress(f"warning: {path} changed while it was touched; left as it is")


def measure_lock(bazel: Bazel, builds: Builds) -> None:
    lock = PROJECT_DIR / LOCK_FILE
    before = lock.read_bytes()
    bazel.build("//tools/debian:lock")
    progress("running the lock tool for bullseye")
    try:
        builds.lock_seconds = bazel.run("run", *BAZEL_FLAGS, "//tools/debian:lock", "--", *LOCK_ARGS).seconds
    finally:
        builds.lock_unchanged = lock.read_bytes() == before
        if not builds.lock_unchanged:
            lock.write_bytes(before)
    builds.lock_matches_head = git(PROJECT_DIR, "diff", "--quiet", "HEAD", "--", LOCK_FILE, check=False).returncode == 0
    if builds.lock_unchanged and not builds.lock_matches_head:
        progress(f"note: {LOCK_FILE} differs from HEAD, but did before the lock tool ran too")


# --- Workspaces -------------------------------------------------------------------------------------

def git(workspace: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(workspace), *args], capture_output=True, text=True, check=check)


def clone_workspace(source: Path, dest: Path) -> int:
    """Clones HEAD into `dest`, then copies the uncommitted changes over; returns how many paths it overlaid."""
    subprocess.run(["git", "clone", "--quiet", str(source), str(dest)], check=True)
    changed = git(source, "ls-files", "-z", "--modified", "--others", "--exclude-standard").stdout.split("\0")
    paths = sorted(set(filter(None, changed)))
    for relative in paths:
        origin, target = source / relative, dest / relative
        if target.is_symlink() or target.is_file():
            target.unlink()
        if origin.is_symlink() or origin.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target, follow_symlinks=False)
    return len(paths)


def measure_cache_and_repro(workspace: Path, work: Path, started: list[Bazel], first_digest: str,
                            skip: set[str], build_root: Path) -> tuple[Cache | None, Repro | None]:
    clone = Path(tempfile.mkdtemp(prefix="distroless-bench-")) / "workspace"
    overlaid = clone_workspace(workspace, clone)
    progress(f"cloned HEAD into {clone} ({overlaid} uncommitted paths copied over)")
    disk_cache = work / "disk-cache"
    try:
        fill = Bazel(clone, work / "ob-fill", started)
        progress(f"clean build in {clone} with an empty disk cache")
        fill_run = fill.build(f"--disk_cache={disk_cache}", IMAGE_TARGET)
        second_digest = manifest_digest(fill.bazel_bin() / "python" / IMAGE)
        fill.shutdown()
        cache = third = None
        if "cache" not in skip:
            hit = Bazel(clone, work / "ob-hit", started)
            progress("clean build in another output base from that disk cache")
            hit_run = hit.build(f"--disk_cache={disk_cache}", IMAGE_TARGET)
            third = manifest_digest(hit.bazel_bin() / "python" / IMAGE)
            hit.shutdown()
            summary = parse_process_summary(hit_run.stderr)
            cache = Cache(parse_process_summary(fill_run.stderr), summary, *cache_hits(summary))
        repro = None if "repro" in skip else Repro(str(workspace), first_digest, str(clone), second_digest, third,
                                                   overlaid)
        return cache, repro
    finally:
        for bazel in [b for b in started if b.workspace == clone]:
            bazel.shutdown()
        shutil.rmtree(clone.parent, ignore_errors=True)
        remove_mount_points(build_root, clone)


def remove_mount_points(build_root: Path, clone: Path) -> None:
    """tools/bazel made empty directories in the build root to bind the clone on; they are ours to remove."""
    for directory in (clone, clone.parent):
        try:
            (build_root / directory.relative_to("/")).rmdir()
        except OSError:
            pass


# --- Machine ----------------------------------------------------------------------------------------

def machine() -> Machine:
    memory = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory = int(line.split()[1]) * 1024
    commit = git(PROJECT_DIR, "rev-parse", "--short", "HEAD").stdout.strip()
    if git(PROJECT_DIR, "status", "--porcelain", "--untracked-files=no").stdout.strip():
        commit += " (with uncommitted changes)"
    return Machine(datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), platform.machine(),
                   len(os.sched_getaffinity(0)), memory, commit)


# --- Main -------------------------------------------------------------------------------------------

def build_root_setup() -> tuple["CacheLayout", str]:
    """The build root's cache layout (made ready) and the Debian mirror, found as tools/bazel finds them."""
    from tools import build_root  # noqa: PLC0415

    environ = dict(os.environ)
    layout = build_root.cache_layout(environ, build_root.read_package_list())
    mirrors = build_root.find_mirrors(environ, build_root.read_apt_sources())
    build_root.ensure_root(build_root.read_package_list(), layout, mirrors, is_root=True)
    return layout, mirrors["DEBIAN_MIRROR"]


def measure_builds(skip: set[str], work: Path, started: list[Bazel]) -> tuple[Builds, OciImage, Path, list[ImageSize]]:
    """The build phases in the workspace, in an output base of their own; returns the image they built, its
    bazel-bin, and (after building every image) the size of each version's per-architecture image."""
    builds = Builds()
    bazel = Bazel(PROJECT_DIR, work / "ob-clean", started)
    image = read_image(measure_clean_and_noop(bazel, builds))
    if "touch" not in skip:
        measure_touch(bazel, builds, [name for name, *_ in image.layers], work / "explain.txt")
    if "lock" not in skip:
        measure_lock(bazel, builds)
    images: list[ImageSize] = []
    if "images" not in skip:
        progress(f"building {ALL_IMAGES} for the image size table (arm64 steps run under qemu)")
        bazel.build(ALL_IMAGES)
        images = image_sizes(bazel.bazel_bin() / "python")
    bazel_bin = bazel.bazel_bin()
    bazel.shutdown()  # nothing of ours runs while startup is measured
    return builds, image, bazel_bin, images


def unpack_roots(image: OciImage, peer: Path, work: Path) -> dict[str, Path]:
    progress("unpacking our image, with and without its .pyc layer")
    blobs = [path for _, path, _, _ in image.layers]
    pyc = pyc_layer_index([name for name, *_ in image.layers])
    return {"ours": unpack(blobs, work / "ours"), "peer": peer,
            "ours-no-pyc": unpack(blobs[:pyc] + blobs[pyc + 1:], work / "ours-no-pyc")}


def measure_sizes(roots: dict[str, Path]) -> dict[str, FilesystemSize]:
    progress("measuring filesystem sizes (zstd -19 takes a few minutes)")
    jobs = [(name, root, False) for name, root in roots.items()] + [(PEER_SLIM, roots["peer"], True)]
    # zstd runs as a process and zlib lets go of the GIL, so threads keep every CPU busy.
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(os.sched_getaffinity(0))) as pool:
        results = pool.map(lambda job: filesystem_size(job[1], job[2]), jobs)
        return {name: size for (name, _, _), size in zip(jobs, results)}


def measure(runs: int, skip: set[str], work: Path, layout: "CacheLayout", mirror: str,
            started: list[Bazel]) -> Report:
    peer = ensure_peer(layout, mirror)
    builds, image, bazel_bin, images = measure_builds(skip, work, started)
    roots = unpack_roots(image, peer, work)
    sizes = measure_sizes(roots)
    progress(f"measuring {runs} cold starts of each root, interleaved")
    startup = measure_startup(roots, runs)
    cache = repro = None
    if not {"cache", "repro"} <= skip:
        cache, repro = measure_cache_and_repro(PROJECT_DIR, work, started, image.manifest_digest, skip, layout.root)
    report = Report(machine(), runs, {name: debian_version(roots[name], VERSION_PACKAGE) for name in ("ours", "peer")},
                    sizes, layer_sizes(image), pruning(bazel_bin), startup, builds, cache, repro, images,
                    not_measured=[f"{phase} (--skip {phase})" for phase in SKIPPABLE if phase in skip])
    report.not_measured.append("page-cache-cold starts (dropping the page cache is not required of the machine)")
    report.goals = evaluate_goals(
        ratio(sizes["ours"].gzip, sizes["peer"].gzip),
        ratio(startup["ours"].median_ms, startup["peer"].median_ms),
        builds.noop_seconds,
        cache.ratio if cache else None,
        repro_digests(repro),
    )
    return report


def repro_digests(repro: Repro | None) -> list[str] | None:
    if repro is None:
        return None
    return [repro.first_digest, repro.second_digest] + ([repro.third_digest] if repro.third_digest else [])


def cleanup(work: Path, started: list[Bazel]) -> None:
    for bazel in started:
        bazel.shutdown()
    shutil.rmtree(work, ignore_errors=True)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="cold starts per root (default 20)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the results as JSON to OUT")
    parser.add_argument("--update-readme", action="store_true",
                        help=f"replace README.md's section between {README_START} and {README_END}")
    parser.add_argument("--skip", action="append", choices=SKIPPABLE, default=[],
                        help="leave out a phase (repeatable): touch, lock, cache, repro")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))
    try:
        if args.update_readme:
            replace_readme_section(README.read_text(), "")  # fail before measuring, not after
        if os.geteuid() != 0:
            raise BenchError("run it as root: it builds a Debian root with mmdebstrap and chroots into images")
        layout, mirror = build_root_setup()
        layout.output_user_root.mkdir(parents=True, exist_ok=True)
        # Under the output user root, which tools/bazel binds into the build root at the same path.
        work = Path(tempfile.mkdtemp(prefix="bench-", dir=layout.output_user_root))
        started: list[Bazel] = []
        try:
            report = measure(args.runs, set(args.skip), work, layout, mirror, started)
        finally:
            progress("cleaning up")
            cleanup(work, started)
        text = render(report)
        print(text, end="")
        if args.json:
            args.json.write_text(report_json(report))
        if args.update_readme:
            README.write_text(replace_readme_section(README.read_text(), text))
            progress(f"updated {README}")
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
