"""The report: goals met or not, the Markdown tables, the JSON, and the README section they replace."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable, Sequence

from tools.bench.console import BenchError
from tools.bench.pythons import MeasuredPython
from tools.bench.results import (PER_GROUP, PER_SOURCE, PEER_SLIM, TOUCHED_CONFIG, FilesystemSize, Goal, ImageSize,
                                 LayerSize, Report, Startup, UpdateCost, VariantLayers)

README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"

GZIP_RATIO_GOAL = 0.35
STARTUP_RATIO_GOAL = 1.05
NOOP_GOAL_SECONDS = 2.0
CACHE_HIT_GOAL = 1.0


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


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


# Issue 22's goals for one layer per source, over the images whose update costs are measured.
MEDIAN_REPULL_GOAL = 0.5e6
MEAN_REPULL_GOAL = 1.5e6
MAX_LAYERS_GOAL = 30
COLD_PULL_GOAL = 1.03


def update_cost_goals(costs: Sequence[UpdateCost], checks: Sequence[VariantLayers]) -> list[Goal]:
    goals = []
    baseline = {c.image: c for c in costs if c.layering == PER_GROUP}
    for c in (c for c in costs if c.layering == PER_SOURCE):
        goals.append(Goal(f"re-pull per source update, `{c.image}` (median / mean)",
                          f"<= {megabytes(MEDIAN_REPULL_GOAL)} / {megabytes(MEAN_REPULL_GOAL)}",
                          f"{megabytes(c.median)} / {megabytes(c.mean)}",
                          c.median <= MEDIAN_REPULL_GOAL and c.mean <= MEAN_REPULL_GOAL))
        before = baseline.get(c.image)
        grown = ratio(c.cold_pull, before.cold_pull if before else None)
        goals.append(Goal(f"cold pull vs one layer per group, `{c.image}`", f"<= {COLD_PULL_GOAL:.2f}x",
                          format_ratio(grown), None if grown is None else grown <= COLD_PULL_GOAL))
    for check in checks:
        goals.append(Goal(f"layers, every variant of `{check.image}`", f"<= {MAX_LAYERS_GOAL}",
                          str(check.most_layers), check.most_layers <= MAX_LAYERS_GOAL))
    return goals


def short_digest(digest: str) -> str:
    return digest.split(":")[-1][:12]


def human_bytes(count: int) -> str:
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def format_ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}x"


def format_percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def seconds(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.2f} s"


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


def render(report: Report, measured: MeasuredPython) -> str:
    m = report.machine
    package = measured.version_package
    parts = [
        f"Measured {m.date} at commit {m.commit} on {m.arch}, {m.cpus} CPUs, {human_bytes(m.memory_bytes)} memory, "
        f"with `python3 tools/bench/bench.py --runs {report.runs}`. Peer: `mmdebstrap --variant=minbase "
        f"--include={measured.python} {measured.distribution}` ({package} {report.python_versions.get('peer', '?')}); "
        f"ours: `{measured.image_target}` ({package} {report.python_versions.get('ours', '?')}).",
        "",
        format_table(["goal", "target", "measured", "met"],
                     [[g.name, g.target, g.value, met_text(g.met)] for g in report.goals]),
        "",
        format_table(["measure", "ours", "peer", "ours / peer", "peer, slim paths dropped", "ours / slim peer",
                      "ours without .pyc", "without / peer"],
                     size_rows(report.sizes) + startup_rows(report.startup)),
        "",
        format_table(["build", "result"], build_rows(report, measured)),
        "",
        format_table(["layer", "compressed (gzip)", "uncompressed", "share of compressed"], layer_rows(report.layers)),
    ]
    if report.images:
        parts += ["", format_table(["image (default variant)", "Python", "arch", "compressed (gzip layers)",
                                    "uncompressed"], image_rows(report.images))]
    if report.update_costs:
        parts += ["", update_cost_text(report.update_costs)]
    if report.variant_layers:
        parts += ["", variant_layers_text(report.variant_layers)]
    if report.pruning:
        p = report.pruning
        parts += ["", f"Pruning the standard library removed {', '.join(p.removed) or 'nothing'}: "
                      f"{human_bytes(p.before_uncompressed - p.after_uncompressed)} uncompressed, "
                      f"{human_bytes(p.before_compressed - p.after_compressed)} compressed "
                      f"(`{p.layer}_debs` {human_bytes(p.before_compressed)} -> `{p.layer}` "
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
                  "(documentation but copyright files, man and info pages, locales), as "
                  f"`debian:{measured.distribution}-slim` with `apt-get install {measured.python}` would hold it; the "
                  "goal compares with the peer itself."]
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


def build_rows(report: Report, measured: MeasuredPython) -> list[list[str]]:
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
    rows.append([f"`tools/bazel run //tools/debian:lock` ({measured.distribution})", lock])
    if report.cache:
        c = report.cache
        rows.append(["clean output base, disk cache filled by another",
                     f"{c.hits} of {c.non_internal} non-internal processes hit ({format_percent(c.ratio)})"])
    return rows


def megabytes(count: float) -> str:
    return f"{count / 10**6:.2f} MB"


def update_cost_text(costs: list[UpdateCost]) -> str:
    """The summary (per image and layering) and, per image, what each source's update re-pulls."""
    summary = format_table(
        ["image", "layering", "layers", "cold pull (gzip)", "re-pull per source update: median", "mean", "max"],
        [[f"`{c.image}`", c.layering, str(c.layer_count), megabytes(c.cold_pull), megabytes(c.median),
          megabytes(c.mean), megabytes(c.max)] for c in costs])
    parts = ["What a client holding the image re-pulls when Debian updates one source package (compressed layers "
             "that hold its packages, or are generated from its files: the .pyc layer for the standard library, the "
             "CA bundle for ca-certificates), beside the same image with one layer per package group:", "", summary]
    by_image: dict[str, dict[str, UpdateCost]] = {}
    for cost in costs:
        by_image.setdefault(cost.image, {})[cost.layering] = cost
    for image, layerings in by_image.items():
        ours, baseline = layerings.get(PER_SOURCE), layerings.get(PER_GROUP)
        if ours is None:
            continue
        before = {s.source: s.bytes for s in baseline.sources} if baseline else {}
        rows = [[s.source, megabytes(s.bytes), megabytes(before[s.source]) if s.source in before else "–",
                 ", ".join(f"`{name}`" for name in s.layers)] for s in ours.sources]
        parts += ["", format_table([f"`{image}` source", PER_SOURCE, PER_GROUP, "layers re-pulled"], rows)]
    return "\n".join(parts)


def variant_layers_text(checks: list[VariantLayers]) -> str:
    lines = []
    for c in checks:
        verdict = "identical" if not c.differing else "**differ** for " + ", ".join(c.differing)
        lines.append(f"`{c.image}`: the {c.shared} layers its variants ({', '.join(c.variants)}) share are {verdict}.")
    return " ".join(lines)


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
