"""Tests for tools/bench/report.py: ratios and goals, the Markdown tables, the JSON, and the README section."""

from __future__ import annotations

import json

import pytest

from tools.bench import report
from tools.bench.console import BenchError
from tools.bench.pythons import MeasuredPython
from tools.bench.results import (Builds, FilesystemSize, ImageSize, LayerSize, Machine, ProcessSummary, Pruning,
                                 Report)
from tools.bench.startup import startup_stats

BULLSEYE = MeasuredPython("3.9", "amd64", "bullseye", "python3.9")


# --- Ratios and goals -------------------------------------------------------------------------------

def test_ratio() -> None:
    assert report.ratio(1.0, 4.0) == 0.25
    assert report.ratio(None, 4.0) is None
    assert report.ratio(1.0, 0) is None


def test_goals_all_met() -> None:
    goals = report.evaluate_goals(0.2, 0.98, 0.8, 1.0, ["sha256:aa", "sha256:aa"])
    assert [g.met for g in goals] == [True] * 5
    assert goals[0].value == "0.20x" and goals[2].value == "0.80 s" and goals[3].value == "100%"


def test_goals_missed_at_the_boundaries() -> None:
    goals = report.evaluate_goals(0.36, 1.06, 2.01, 0.99, ["sha256:aa", "sha256:bb"])
    assert [g.met for g in goals] == [False] * 5
    assert goals[4].value == "differ: aa, bb"


def test_goals_met_exactly_at_the_target() -> None:
    goals = report.evaluate_goals(0.35, 1.05, 2.0, 1.0, ["sha256:aa"] * 3)
    assert all(g.met for g in goals)


def test_unmeasured_goals() -> None:
    goals = report.evaluate_goals(None, None, None, None, None)
    assert [g.met for g in goals] == [None] * 5
    assert {g.value for g in goals} == {"not measured"}


# --- Tables -----------------------------------------------------------------------------------------

def test_format_table_escapes_pipes() -> None:
    table = report.format_table(["a", "b"], [["1", "x|y"], ["2", "multi\nline"]])
    assert table.splitlines() == ["| a | b |", "| --- | --- |", "| 1 | x\\|y |", "| 2 | multi line |"]


def test_format_table_rejects_ragged_rows() -> None:
    with pytest.raises(ValueError):
        report.format_table(["a", "b"], [["1"]])


def test_human_bytes() -> None:
    assert report.human_bytes(512) == "512 B"
    assert report.human_bytes(2_500) == "2.5 kB"
    assert report.human_bytes(23_400_000) == "23.4 MB"
    assert report.human_bytes(1_700_000_000) == "1.7 GB"


def sample_report() -> Report:
    size = FilesystemSize
    return Report(
        machine=Machine("2025-01-01 00:00 UTC", "x86_64", 2, 8 * 10**9, "abc1234"),
        runs=3,
        python_versions={"ours": "3.9.2", "peer": "3.9.2-1"},
        sizes={"ours": size(60_000_000, 20_000_000, 15_000_000, 3000),
               "peer": size(160_000_000, 60_000_000, 40_000_000, 7000),
               "ours-no-pyc": size(53_000_000, 17_500_000, 13_000_000, 2500),
               "peer-slim": size(110_000_000, 40_000_000, 30_000_000, 5000)},
        layers=[LayerSize("base_files.tar.gz", "sha256:1", 500, 10_240),
                LayerSize("3.9_amd64_pyc.tar.gz", "sha256:2", 1500, 7_000_000)],
        pruning=Pruning(9_000_000, 8_900_000, 26_300_000, 26_100_000, ["usr/lib/python3.9/turtle.py"],
                        "3.9_amd64_src_python3.9"),
        startup={"ours": startup_stats([30.0, 31.0, 32.0]), "peer": startup_stats([30.0, 30.0, 30.0]),
                 "ours-no-pyc": startup_stats([90.0, 91.0, 92.0])},
        builds=Builds(clean_seconds=100.0, clean_processes=ProcessSummary(40, {"internal": 12}),
                      noop_seconds=0.5, touch_seconds=1.0, touch_actions=["Writing script x"], lock_seconds=9.0,
                      lock_unchanged=True),
        cache=None,
        repro=None,
        images=[ImageSize("//python:3.9_amd64", "3.9.2", "amd64", 23_400_000, 66_800_000),
                ImageSize("//python:3.13_arm64", "3.13.5", "arm64", 21_000_000, 60_000_000)],
        goals=report.evaluate_goals(1 / 3, 31 / 30, 0.5, None, None),
        not_measured=["cache (--skip cache)"],
    )


def test_render_report() -> None:
    text = report.render(sample_report(), BULLSEYE)
    assert "2025-01-01 00:00 UTC" in text and "x86_64, 2 CPUs, 8.0 GB memory" in text
    assert ("Peer: `mmdebstrap --variant=minbase --include=python3.9 bullseye` (python3.9-minimal 3.9.2-1); "
            "ours: `//python:3.9_amd64` (python3.9-minimal 3.9.2).") in text
    assert "| compressed size vs peer (gzip, with .pyc) | <= 0.35x | 0.33x | yes |" in text
    assert "| cold start vs peer (median) | <= 1.05x | 1.03x | yes |" in text
    assert "| disk cache hits (non-internal processes) | 100% | not measured | not measured |" in text
    assert "| filesystem tar, gzip -6 | 20.0 MB | 60.0 MB | 0.33x | 40.0 MB | 0.50x | 17.5 MB | 0.29x |" in text
    assert "| cold start, median | 31.0 ms | 30.0 ms | 1.03x | – | – | 91.0 ms | 3.03x |" in text
    assert "| rebuild after touching `tests/root.yaml` | 1.00 s; re-ran: Writing script x (no image layer) |" in text
    assert "| `tools/bazel run //tools/debian:lock` (bullseye) | 9.00 s; lock unchanged," in text
    assert "| `3.9_amd64_pyc.tar.gz` | 1.5 kB | 7.0 MB | 75.0% |" in text
    assert "removed usr/lib/python3.9/turtle.py" in text
    assert "(`3.9_amd64_src_python3.9_debs` 9.0 MB -> `3.9_amd64_src_python3.9` 8.9 MB)" in text
    assert "| `//python:3.13_arm64` | 3.13.5 | arm64 | 21.0 MB | 60.0 MB |" in text
    assert "as `debian:bullseye-slim` with `apt-get install python3.9` would hold it" in text
    assert "Not measured: cache (--skip cache)" in text


def test_render_names_whatever_python_was_measured() -> None:
    text = report.render(sample_report(), MeasuredPython("3.11", "arm64", "bookworm", "python3.11"))
    assert "`mmdebstrap --variant=minbase --include=python3.11 bookworm` (python3.11-minimal 3.9.2-1)" in text
    assert "ours: `//python:3.11_arm64`" in text
    assert "`tools/bazel run //tools/debian:lock` (bookworm)" in text
    assert "`debian:bookworm-slim` with `apt-get install python3.11`" in text
    assert "bullseye" not in text and "python3.9-minimal" not in text


def test_report_json_round_trips() -> None:
    data = json.loads(report.report_json(sample_report()))
    assert data["sizes"]["peer"]["gzip"] == 60_000_000
    assert data["startup"]["ours"]["samples_ms"] == [30.0, 31.0, 32.0]
    assert data["goals"][0]["met"] is True


# --- The README ---------------------------------------------------------------------------------------

def test_replace_readme_section() -> None:
    text = "# T\n\n## Benchmark\n\n<!-- bench:start -->\nold\nstuff\n<!-- bench:end -->\n\n## Next\n"
    replaced = report.replace_readme_section(text, "| new |\n")
    assert replaced == "# T\n\n## Benchmark\n\n<!-- bench:start -->\n| new |\n<!-- bench:end -->\n\n## Next\n"
    assert report.replace_readme_section(replaced, "| new |") == replaced


@pytest.mark.parametrize("text", [
    "no markers\n",
    "<!-- bench:start -->\nonly the start\n",
    "<!-- bench:end -->\nreversed\n<!-- bench:start -->\n",
    "<!-- bench:start -->\n<!-- bench:end -->\n<!-- bench:start -->\n<!-- bench:end -->\n",
])
def test_readme_without_proper_markers_fails_clearly(text: str) -> None:
    with pytest.raises(BenchError, match="bench:start"):
        report.replace_readme_section(text, "x")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
