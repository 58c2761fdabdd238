"""Benchmark and reproducibility report for one Python image: the oldest stable version in python/config.bzl,
built for this machine's architecture (python3.9 on amd64 today; pythons.py says how it is chosen).

Run on the host, as root, from anywhere:

    python3 tools/bench/bench.py [--runs N] [--json OUT] [--update-readme] [--skip PHASE ...]

It drives tools/bazel itself, in output bases of its own (under the build root's output user root, which
tools/bazel binds into the root), so the workspace's own output base and bazel-* symlinks are left alone.
In one run it measures, side by side:

- size: the image's filesystem as one tar (uncompressed, gzip -6, zstd -19), ours and a peer made with
  `mmdebstrap --variant=minbase --include=python3.X <its release>` (what a Debian slim image plus apt's
  python3.X holds), with and without our precompiled .pyc layer; our OCI layers; what stdlib pruning saved;
- startup: N cold starts of `python3.X -c "import json, ssl, asyncio, sqlite3"`, each in a fresh private
  mount namespace chrooted into the unpacked root, interleaving ours, the peer and ours without .pyc
  (cold process, warm page cache: dropping the page cache is not required of the machine);
- build: clean build (fresh output base, warm repository cache), no-op rebuild, rebuild after touching a
  structure-test config, and the lock tool (which must leave the lock unchanged);
- cache: a clean output base building from a disk cache a first clean build filled;
- reproducibility: manifest digests of clean builds in different output bases and workspace paths.

It prints a Markdown report on stdout (progress goes to stderr) and writes the numbers as JSON. This file runs
the phases; beside it are what is measured (pythons.py), the Bazel driver (bazel_driver.py), the peer root
(peer.py), image reading (image.py), filesystem sizes (filesystems.py), cold starts (startup.py), the results
(results.py) and the tables (report.py).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import os
import platform
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

if __name__ == "__main__" and not __package__:
    # Run as a script, Python put tools/bench first on the path; the imports below start at the project root.
    sys.path[0] = str(Path(__file__).resolve().parents[2])

from tools import build_root, cli  # noqa: E402
from tools.architectures import host_architecture  # noqa: E402
from tools.bench.bazel_driver import (BAZEL_FLAGS, Bazel, cache_hits, image_actions, parse_explain,  # noqa: E402
                                      parse_process_summary)
from tools.bench.console import BenchError, progress  # noqa: E402
from tools.bench.filesystems import debian_version, filesystem_size, unpack  # noqa: E402
from tools.bench.image import (BuiltImage, image_sizes, layer_sizes, manifest_digest, pruning,  # noqa: E402
                               pyc_layer_index, read_image, update_costs, variant_layers)
from tools.bench.peer import ensure_peer  # noqa: E402
from tools.bench.pythons import MeasuredPython, measured_python, parse_pythons, update_cost_images  # noqa: E402
from tools.bench.report import (README_END, README_START, evaluate_goals, ratio, render,  # noqa: E402
                               replace_readme_section, report_json, update_cost_goals)
from tools.bench.results import (PEER_SLIM, TOUCHED_CONFIG, Builds, Cache, FilesystemSize, ImageSize,  # noqa: E402
                                 Machine, Report, Repro, UpdateCost, VariantLayers)
from tools.bench.startup import measure_startup  # noqa: E402

PROJECT_DIR = Path(__file__).resolve().parents[2]
README = PROJECT_DIR / "README.md"
ALL_IMAGES = "//python:all"
PYTHONS_JSON = "//tools/bench:pythons_json"
PYTHONS_JSON_PATH = "tools/bench/pythons.json"  # under bazel-bin
SKIPPABLE = ("touch", "lock", "images", "cache", "repro")


# --- What is measured -------------------------------------------------------------------------------

def read_measured_python(work: Path, started: list[Bazel]) -> tuple[MeasuredPython, list[str]]:
    """The Python to measure, from PYTHONS as Bazel evaluated it, built in an output base of its own so that
    the clean build that follows still starts its own server; and the images whose update costs are measured."""
    arch = host_architecture()
    if arch is None:
        raise BenchError(f"this machine's architecture ({platform.machine()}) is none the images are built for; "
                         "run the bench on one of them (tools/architectures.py)")
    bazel = Bazel(PROJECT_DIR, work / "ob-config", started)
    progress(f"reading python/config.bzl's PYTHONS ({PYTHONS_JSON})")
    bazel.build(PYTHONS_JSON)
    path = bazel.bazel_bin() / PYTHONS_JSON_PATH
    text = path.read_text()
    bazel.shutdown()
    pythons = parse_pythons(text, str(path))
    measured = measured_python(pythons, arch.name)
    progress(f"measuring {measured.image_target} against {measured.python} from Debian {measured.distribution}")
    return measured, update_cost_images(pythons, arch.name)


# --- Build phases -----------------------------------------------------------------------------------

def measure_clean_and_noop(bazel: Bazel, builds: Builds, measured: MeasuredPython) -> Path:
    progress(f"clean build of {measured.image_target} in a fresh output base")
    clean = bazel.build(measured.image_target)
    builds.clean_seconds, builds.clean_processes = clean.seconds, parse_process_summary(clean.stderr)
    progress(f"clean build: {clean.seconds:.1f} s; no-op rebuild")
    builds.noop_seconds = bazel.build(measured.image_target).seconds
    return bazel.bazel_bin() / "python" / measured.image


def config_tests(bazel: Bazel, measured: MeasuredPython) -> list[str]:
    """The image's structure tests that read tests/root.yaml.

    By attribute rather than rdeps(), which would load the whole transitive closure, stub modules included.
    """
    label = "//" + posixpath.dirname(TOUCHED_CONFIG) + ":" + posixpath.basename(TOUCHED_CONFIG)
    image = re.escape(measured.image)
    query = f'attr(configs, "{re.escape(label)}", attr(image, ":{image}$", kind(test, //python:all)))'
    output = bazel.run("query", "--color=no", "--curses=no", query).stdout
    return sorted(line for line in output.splitlines() if line.startswith("//"))


def measure_touch(bazel: Bazel, builds: Builds, measured: MeasuredPython, layer_files: Sequence[str],
                  explain: Path) -> None:
    targets = config_tests(bazel, measured)
    if not targets:
        raise BenchError(f"no test of {measured.image_target} reads {TOUCHED_CONFIG}")
    builds.touch_targets = targets
    progress(f"building {', '.join(targets)} once, then again after touching {TOUCHED_CONFIG}")
    bazel.build(measured.image_target, *targets)
    config = PROJECT_DIR / TOUCHED_CONFIG
    original = config.read_bytes()
    config.write_bytes(original + b"\n")
    try:
        run = bazel.build(f"--explain={explain}", "--verbose_explanations", measured.image_target, *targets)
    finally:
        restore_appended(config, original, b"\n")
    builds.touch_seconds = run.seconds
    builds.touch_actions = parse_explain(explain.read_text())
    builds.touch_image_actions = image_actions(builds.touch_actions, layer_files, measured.image)


def restore_appended(path: Path, original: bytes, appended: bytes) -> None:
    """Takes back what we appended, unless someone else changed the file meanwhile."""
    if path.read_bytes() == original + appended:
        path.write_bytes(original)
    else:
        progress(f"warning: {path} changed while it was touched; left as it is")


def measure_lock(bazel: Bazel, builds: Builds, measured: MeasuredPython) -> None:
    lock = PROJECT_DIR / measured.lock_file
    before = lock.read_bytes()
    bazel.build("//tools/debian:lock")
    progress(f"running the lock tool for {measured.distribution}")
    lock_args = ("--manifest", measured.manifest_file, "--lock", measured.lock_file)
    try:
        builds.lock_seconds = bazel.run("run", *BAZEL_FLAGS, "//tools/debian:lock", "--", *lock_args).seconds
    finally:
        builds.lock_unchanged = lock.read_bytes() == before
        if not builds.lock_unchanged:
            lock.write_bytes(before)
    diff = git(PROJECT_DIR, "diff", "--quiet", "HEAD", "--", measured.lock_file, check=False)
    builds.lock_matches_head = diff.returncode == 0
    if builds.lock_unchanged and not builds.lock_matches_head:
        progress(f"note: {measured.lock_file} differs from HEAD, but did before the lock tool ran too")


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


def measure_cache_and_repro(workspace: Path, work: Path, started: list[Bazel], measured: MeasuredPython,
                            first_digest: str, skip: set[str], build_root_dir: Path) -> tuple[Cache | None, Repro | None]:
    clone = Path(tempfile.mkdtemp(prefix="distroless-bench-")) / "workspace"
    overlaid = clone_workspace(workspace, clone)
    progress(f"cloned HEAD into {clone} ({overlaid} uncommitted paths copied over)")
    disk_cache = work / "disk-cache"
    try:
        fill = Bazel(clone, work / "ob-fill", started)
        progress(f"clean build in {clone} with an empty disk cache")
        fill_run = fill.build(f"--disk_cache={disk_cache}", measured.image_target)
        second_digest = manifest_digest(fill.bazel_bin() / "python" / measured.image)
        fill.shutdown()
        cache = third = None
        if "cache" not in skip:
            hit = Bazel(clone, work / "ob-hit", started)
            progress("clean build in another output base from that disk cache")
            hit_run = hit.build(f"--disk_cache={disk_cache}", measured.image_target)
            third = manifest_digest(hit.bazel_bin() / "python" / measured.image)
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
        remove_mount_points(build_root_dir, clone)


def remove_mount_points(build_root_dir: Path, clone: Path) -> None:
    """tools/bazel made empty directories in the build root to bind the clone on; they are ours to remove."""
    for directory in (clone, clone.parent):
        try:
            (build_root_dir / directory.relative_to("/")).rmdir()
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

def build_root_setup() -> tuple[build_root.CacheLayout, str]:
    """The build root's cache layout (made ready) and the Debian mirror, found as tools/bazel finds them."""
    environ = dict(os.environ)
    layout = build_root.cache_layout(environ, build_root.read_package_list())
    mirrors = build_root.find_mirrors(environ, build_root.read_apt_sources())
    build_root.ensure_root(build_root.read_package_list(), layout, mirrors, is_root=True)
    return layout, mirrors["DEBIAN_MIRROR"]


@dataclass
class ImagesPhase:
    """What building every image gives: each version's size, and the update costs of the cost images."""

    sizes: list[ImageSize] = field(default_factory=list)
    update_costs: list[UpdateCost] = field(default_factory=list)
    variant_layers: list[VariantLayers] = field(default_factory=list)


def measure_images(bazel: Bazel, cost_images: Sequence[str]) -> ImagesPhase:
    progress(f"building {ALL_IMAGES} for the image size table (arm64 steps run under qemu)")
    bazel.build(ALL_IMAGES)
    progress(f"building the one-layer-per-group baseline of {', '.join(cost_images)}")
    bazel.build(*(f"//python:{image}_grouped_layers" for image in cost_images))
    python_bin = bazel.bazel_bin() / "python"
    phase = ImagesPhase(image_sizes(python_bin))
    for image in cost_images:
        phase.update_costs += update_costs(python_bin, image)
        phase.variant_layers.append(variant_layers(python_bin, image))
    return phase


def measure_builds(measured: MeasuredPython, skip: set[str], work: Path, started: list[Bazel],
                   cost_images: Sequence[str]) -> tuple[Builds, BuiltImage, Path, ImagesPhase]:
    """The build phases in the workspace, in an output base of their own; returns the image they built, its
    bazel-bin, and (after building every image) each version's size and the update costs."""
    builds = Builds()
    bazel = Bazel(PROJECT_DIR, work / "ob-clean", started)
    image = read_image(measure_clean_and_noop(bazel, builds, measured))
    if "touch" not in skip:
        measure_touch(bazel, builds, measured, [layer.name for layer in image.layers], work / "explain.txt")
    if "lock" not in skip:
        measure_lock(bazel, builds, measured)
    images = measure_images(bazel, cost_images) if "images" not in skip else ImagesPhase()
    bazel_bin = bazel.bazel_bin()
    bazel.shutdown()  # nothing of ours runs while startup is measured
    return builds, image, bazel_bin, images


def unpack_roots(image: BuiltImage, peer: Path, work: Path) -> dict[str, Path]:
    progress("unpacking our image, with and without its .pyc layer")
    blobs = [layer.blob for layer in image.layers]
    pyc = pyc_layer_index([layer.name for layer in image.layers])
    return {"ours": unpack(blobs, work / "ours"), "peer": peer,
            "ours-no-pyc": unpack(blobs[:pyc] + blobs[pyc + 1:], work / "ours-no-pyc")}


def measure_sizes(roots: dict[str, Path]) -> dict[str, FilesystemSize]:
    progress("measuring filesystem sizes (zstd -19 takes a few minutes)")
    jobs = [(name, root, False) for name, root in roots.items()] + [(PEER_SLIM, roots["peer"], True)]
    # zstd runs as a process and zlib lets go of the GIL, so threads keep every CPU busy.
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(os.sched_getaffinity(0))) as pool:
        results = pool.map(lambda job: filesystem_size(job[1], job[2]), jobs)
        return {name: size for (name, _, _), size in zip(jobs, results)}


def measure(runs: int, skip: set[str], work: Path, layout: build_root.CacheLayout, mirror: str,
            started: list[Bazel]) -> tuple[Report, MeasuredPython]:
    measured, cost_images = read_measured_python(work, started)
    peer = ensure_peer(measured, layout, mirror)
    builds, image, bazel_bin, images = measure_builds(measured, skip, work, started, cost_images)
    roots = unpack_roots(image, peer, work)
    sizes = measure_sizes(roots)
    progress(f"measuring {runs} cold starts of each root, interleaved")
    startup = measure_startup(roots, measured.interpreter, runs)
    cache = repro = None
    if not {"cache", "repro"} <= skip:
        cache, repro = measure_cache_and_repro(PROJECT_DIR, work, started, measured, image.manifest_digest, skip,
                                               layout.root)
    versions = {name: debian_version(roots[name], measured.version_package) for name in ("ours", "peer")}
    report = Report(machine(), runs, versions, sizes, layer_sizes(image), pruning(bazel_bin / "python", measured.image),
                    startup, builds, cache, repro, images.sizes, images.update_costs, images.variant_layers,
                    not_measured=[f"{phase} (--skip {phase})" for phase in SKIPPABLE if phase in skip])
    report.not_measured.append("page-cache-cold starts (dropping the page cache is not required of the machine)")
    report.goals = evaluate_goals(
        ratio(sizes["ours"].gzip, sizes["peer"].gzip),
        ratio(startup["ours"].median_ms, startup["peer"].median_ms),
        builds.noop_seconds,
        cache.ratio if cache else None,
        repro_digests(repro),
    ) + update_cost_goals(images.update_costs, images.variant_layers)
    return report, measured


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
                        help="leave out a phase (repeatable): touch, lock, images, cache, repro")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


@cli.tool("bench", BenchError, status=2)
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
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
        report, measured = measure(args.runs, set(args.skip), work, layout, mirror, started)
    finally:
        progress("cleaning up")
        cleanup(work, started)
    text = render(report, measured)
    print(text, end="")
    if args.json:
        args.json.write_text(report_json(report))
    if args.update_readme:
        README.write_text(replace_readme_section(README.read_text(), text))
        progress(f"updated {README}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
