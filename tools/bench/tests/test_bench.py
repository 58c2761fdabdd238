"""Tests for the pure parts of tools/bench/bench.py: parsing Bazel's output, ratios and goals, the tables and
the README section. The measuring itself needs root, Bazel and a mirror, and is exercised by running it."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from tools.bench import bench


# --- Bazel's process summary ------------------------------------------------------------------------

def test_summary_with_disk_cache_hits() -> None:
    output = "INFO: Found 1 target...\nINFO: 97 processes: 61 disk cache hit, 36 internal.\nINFO: Build completed\n"
    summary = bench.parse_process_summary(output)
    assert summary == bench.ProcessSummary(97, {"disk cache hit": 61, "internal": 36})
    assert bench.cache_hits(summary) == (61, 61, 1.0)


def test_summary_of_a_build_without_cache() -> None:
    summary = bench.parse_process_summary("INFO: 40 processes: 12 internal, 28 linux-sandbox.\n")
    assert summary.kinds == {"internal": 12, "linux-sandbox": 28}
    assert bench.cache_hits(summary) == (0, 28, 0.0)


def test_partial_hits_count_every_non_internal_kind() -> None:
    summary = bench.parse_process_summary("INFO: 10 processes: 6 disk cache hit, 2 internal, 1 linux-sandbox, 1 local.")
    assert bench.cache_hits(summary) == (6, 8, 0.75)


def test_single_internal_process_has_no_ratio() -> None:
    summary = bench.parse_process_summary("INFO: 1 process: 1 internal.\n")
    assert summary == bench.ProcessSummary(1, {"internal": 1})
    assert bench.cache_hits(summary) == (0, 0, None)


def test_no_processes_at_all() -> None:
    assert bench.parse_process_summary("INFO: 0 processes.\n") == bench.ProcessSummary(0, {})


def test_last_summary_line_wins() -> None:
    output = "INFO: 5 processes: 5 internal.\nINFO: 7 processes: 3 internal, 4 linux-sandbox.\n"
    assert bench.parse_process_summary(output).total == 7


def test_missing_summary_line_is_an_error() -> None:
    with pytest.raises(bench.BenchError, match="summary line"):
        bench.parse_process_summary("INFO: Build completed successfully\n")


def test_unreadable_summary_part_is_an_error() -> None:
    with pytest.raises(bench.BenchError, match="cannot read"):
        bench.parse_process_summary("INFO: 3 processes: lots internal.\n")


# --- --explain ---------------------------------------------------------------------------------------

EXPLAIN = """Build options: --symlink_prefix=/ --explain=/x/explain.txt --verbose_explanations
Executing action 'BazelWorkspaceStatusAction stable-status.txt': unconditional execution is requested.
Executing action 'Writing script python/3.9_amd64_test.sh': One of the files has changed.
Executing action 'Creating runfiles tree bazel-out/k8-fastbuild/bin/python/3.9_amd64_test.sh.runfiles': One of the files has changed.
Executing action 'Writing OCI image layout bazel-out/k8-fastbuild/bin/python/3.9_amd64': One of the files has changed.
Executing action 'Compiling bazel-out/k8-fastbuild/bin/python/3.9_amd64_pyc.tar.gz': One of the files has changed.
"""


def test_parse_explain_lists_executed_actions() -> None:
    actions = bench.parse_explain(EXPLAIN)
    assert actions[0] == "Writing script python/3.9_amd64_test.sh"
    assert len(actions) == 4


def test_image_actions_are_the_layers_and_the_layout_only() -> None:
    actions = bench.parse_explain(EXPLAIN)
    found = bench.image_actions(actions, ["base_files.tar.gz", "3.9_amd64_pyc.tar.gz"], "3.9_amd64")
    assert found == [actions[2], actions[3]]


def test_no_image_action_when_only_the_test_reran() -> None:
    actions = bench.parse_explain(EXPLAIN)[:2]
    assert bench.image_actions(actions, ["3.9_amd64_pyc.tar.gz"], "3.9_amd64") == []


# --- Statistics, ratios, goals ----------------------------------------------------------------------

def test_ratio() -> None:
    assert bench.ratio(1.0, 4.0) == 0.25
    assert bench.ratio(None, 4.0) is None
    assert bench.ratio(1.0, 0) is None


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 11)]
    assert bench.percentile(values, 0.9) == 9.0
    assert bench.percentile([3.0], 0.9) == 3.0
    assert bench.percentile([5.0, 1.0, 3.0], 0.5) == 3.0
    with pytest.raises(ValueError):
        bench.percentile([], 0.9)


def test_startup_stats() -> None:
    stats = bench.startup_stats([40.0, 10.0, 30.0, 20.0])
    assert (stats.median_ms, stats.p90_ms) == (25.0, 40.0)


def test_interleaving_rotates_the_first_variant() -> None:
    order = list(bench.interleaved_order(["a", "b", "c"], 4))
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b", "a", "b", "c"]
    assert all(order.count(v) == 4 for v in "abc")


def test_goals_all_met() -> None:
    goals = bench.evaluate_goals(0.2, 0.98, 0.8, 1.0, ["sha256:aa", "sha256:aa"])
    assert [g.met for g in goals] == [True] * 5
    assert goals[0].value == "0.20x" and goals[2].value == "0.80 s" and goals[3].value == "100%"


def test_goals_missed_at_the_boundaries() -> None:
    goals = bench.evaluate_goals(0.36, 1.06, 2.01, 0.99, ["sha256:aa", "sha256:bb"])
    assert [g.met for g in goals] == [False] * 5
    assert goals[4].value == "differ: aa, bb"


def test_goals_met_exactly_at_the_target() -> None:
    goals = bench.evaluate_goals(0.35, 1.05, 2.0, 1.0, ["sha256:aa"] * 3)
    assert all(g.met for g in goals)


def test_unmeasured_goals() -> None:
    goals = bench.evaluate_goals(None, None, None, None, None)
    assert [g.met for g in goals] == [None] * 5
    assert {g.value for g in goals} == {"not measured"}


# --- Image metadata ---------------------------------------------------------------------------------

def test_layer_names_come_from_non_empty_history() -> None:
    config = {"history": [{"created_by": "base_files.tar.gz"}, {"created_by": "ENV x", "empty_layer": True},
                          {"created_by": "bazel-out/k8/bin/python/3.9_amd64_pyc.tar.gz"}]}
    names = bench.layer_names(config)
    assert names == ["base_files.tar.gz", "3.9_amd64_pyc.tar.gz"]
    assert bench.pyc_layer_index(names) == 1


def test_pyc_layer_must_be_unique() -> None:
    with pytest.raises(bench.BenchError, match="exactly one"):
        bench.pyc_layer_index(["a.tar.gz"])
    with pytest.raises(bench.BenchError, match="exactly one"):
        bench.pyc_layer_index(["a_pyc.tar.gz", "b_pyc.tar.gz"])


def test_topmost_removed_paths() -> None:
    removed = {"usr/lib/python3.9/turtle.py", "usr/lib/python3.9/idlelib", "usr/lib/python3.9/idlelib/x.py"}
    assert bench.topmost(removed) == ["usr/lib/python3.9/idlelib", "usr/lib/python3.9/turtle.py"]


def test_peer_cache_key_ignores_the_target_directory() -> None:
    one = bench.peer_cache_key(bench.peer_command(Path("/a"), "http://mirror/debian"), "/a")
    two = bench.peer_cache_key(bench.peer_command(Path("/b"), "http://mirror/debian"), "/b")
    other = bench.peer_cache_key(bench.peer_command(Path("/a"), "http://other/debian"), "/a")
    assert one == two != other


def test_filesystem_tar_is_deterministic_and_skips_nothing_regular(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "f").write_bytes(b"x" * 10)
    (tmp_path / "a").write_bytes(b"y")
    (tmp_path / "link").symlink_to("a")
    (tmp_path / "hard").hardlink_to(tmp_path / "a")
    data, files = bench.filesystem_tar(tmp_path)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["a", "b", "b/f", "hard", "link"]
    assert {m.mtime for m in members} == {0}
    assert members[3].islnk() and files == 2  # the hard link is stored, and counted, once
    assert bench.filesystem_tar(tmp_path) == (data, files)


def test_slim_keeps_copyright_files_and_their_directories() -> None:
    paths = ["usr", "usr/share", "usr/share/doc", "usr/share/doc/bash", "usr/share/doc/bash/copyright",
             "usr/share/doc/bash/README.gz", "usr/share/doc/libc6", "usr/share/doc/libc6/changelog.gz",
             "usr/share/man", "usr/share/man/man1", "usr/share/man/man1/ls.1.gz", "usr/share/locale",
             "usr/share/locale/de", "usr/share/locale/de/LC_MESSAGES/x.mo", "usr/share/locale/locale.alias",
             "usr/bin", "usr/bin/python3.9", "usr/share/info"]
    assert bench.slim_kept(paths) == {
        "usr", "usr/share", "usr/share/doc", "usr/share/doc/bash", "usr/share/doc/bash/copyright", "usr/share/man",
        "usr/share/locale", "usr/share/locale/locale.alias", "usr/bin", "usr/bin/python3.9", "usr/share/info"}


def test_filesystem_tar_slim(tmp_path: Path) -> None:
    (tmp_path / "usr/share/doc/bash").mkdir(parents=True)
    (tmp_path / "usr/share/doc/bash/copyright").write_text("GPL")
    (tmp_path / "usr/share/doc/bash/NEWS").write_text("news")
    (tmp_path / "usr/share/man/man1").mkdir(parents=True)
    (tmp_path / "usr/share/man/man1/bash.1").write_text("man")
    data, files = bench.filesystem_tar(tmp_path, slim=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
    assert names == ["usr", "usr/share", "usr/share/doc", "usr/share/doc/bash", "usr/share/doc/bash/copyright",
                     "usr/share/man"]
    assert files == 1


# --- Tables and the README --------------------------------------------------------------------------

def test_format_table_escapes_pipes() -> None:
    table = bench.format_table(["a", "b"], [["1", "x|y"], ["2", "multi\nline"]])
    assert table.splitlines() == ["| a | b |", "| --- | --- |", "| 1 | x\\|y |", "| 2 | multi line |"]


def test_format_table_rejects_ragged_rows() -> None:
    with pytest.raises(ValueError):
        bench.format_table(["a", "b"], [["1"]])


def test_human_bytes() -> None:
    assert bench.human_bytes(512) == "512 B"
    assert bench.human_bytes(2_500) == "2.5 kB"
    assert bench.human_bytes(23_400_000) == "23.4 MB"
    assert bench.human_bytes(1_700_000_000) == "1.7 GB"


def sample_report() -> bench.Report:
    size = bench.FilesystemSize
    return bench.Report(
        machine=bench.Machine("2025-01-01 00:00 UTC", "x86_64", 2, 8 * 10**9, "abc1234"),
        runs=3,
        python_versions={"ours": "3.9.2", "peer": "3.9.2-1"},
        sizes={"ours": size(60_000_000, 20_000_000, 15_000_000, 3000), "peer": size(160_000_000, 60_000_000, 40_000_000, 7000),
               "ours-no-pyc": size(53_000_000, 17_500_000, 13_000_000, 2500),
               "peer-slim": size(110_000_000, 40_000_000, 30_000_000, 5000)},
        layers=[bench.LayerSize("base_files.tar.gz", "sha256:1", 500, 10_240),
                bench.LayerSize("3.9_amd64_pyc.tar.gz", "sha256:2", 1500, 7_000_000)],
        pruning=bench.Pruning(9_000_000, 8_900_000, 26_300_000, 26_100_000, ["usr/lib/python3.9/turtle.py"]),
        startup={"ours": bench.startup_stats([30.0, 31.0, 32.0]), "peer": bench.startup_stats([30.0, 30.0, 30.0]),
                 "ours-no-pyc": bench.startup_stats([90.0, 91.0, 92.0])},
        builds=bench.Builds(clean_seconds=100.0, clean_processes=bench.ProcessSummary(40, {"internal": 12}),
                            noop_seconds=0.5, touch_seconds=1.0, touch_actions=["Writing script x"], lock_seconds=9.0,
                            lock_unchanged=True),
        cache=None,
        repro=None,
        images=[bench.ImageSize("//python:3.9_amd64", "3.9.2", "amd64", 23_400_000, 66_800_000),
                bench.ImageSize("//python:3.13_arm64", "3.13.5", "arm64", 21_000_000, 60_000_000)],
        goals=bench.evaluate_goals(1 / 3, 31 / 30, 0.5, None, None),
        not_measured=["cache (--skip cache)"],
    )


def test_render_report() -> None:
    text = bench.render(sample_report())
    assert "2025-01-01 00:00 UTC" in text and "x86_64, 2 CPUs, 8.0 GB memory" in text
    assert "| compressed size vs peer (gzip, with .pyc) | <= 0.35x | 0.33x | yes |" in text
    assert "| cold start vs peer (median) | <= 1.05x | 1.03x | yes |" in text
    assert "| disk cache hits (non-internal processes) | 100% | not measured | not measured |" in text
    assert "| filesystem tar, gzip -6 | 20.0 MB | 60.0 MB | 0.33x | 40.0 MB | 0.50x | 17.5 MB | 0.29x |" in text
    assert "| cold start, median | 31.0 ms | 30.0 ms | 1.03x | – | – | 91.0 ms | 3.03x |" in text
    assert "re-ran: Writing script x (no image layer)" in text
    assert "| `3.9_amd64_pyc.tar.gz` | 1.5 kB | 7.0 MB | 75.0% |" in text
    assert "removed usr/lib/python3.9/turtle.py" in text
    assert "| `//python:3.13_arm64` | 3.13.5 | arm64 | 21.0 MB | 60.0 MB |" in text
    assert "Not measured: cache (--skip cache)" in text


def test_report_json_round_trips() -> None:
    data = json.loads(bench.report_json(sample_report()))
    assert data["sizes"]["peer"]["gzip"] == 60_000_000
    assert data["startup"]["ours"]["samples_ms"] == [30.0, 31.0, 32.0]
    assert data["goals"][0]["met"] is True


def test_image_sizes_lists_default_variants_by_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ["3.13_arm64", "3.9_amd64", "3.13_amd64", "3.9_amd64_nonroot", "3.11_amd64_debug", "base_files"]:
        (tmp_path / name).mkdir()
    (tmp_path / "3.11_amd64").write_text("a file, not an image")
    monkeypatch.setattr(bench, "image_size", lambda layout, target: target)
    assert bench.image_sizes(tmp_path) == ["//python:3.9_amd64", "//python:3.13_amd64", "//python:3.13_arm64"]


def test_replace_readme_section() -> None:
    text = "# T\n\n## Benchmark\n\n<!-- bench:start -->\nold\nstuff\n<!-- bench:end -->\n\n## Next\n"
    replaced = bench.replace_readme_section(text, "| new |\n")
    assert replaced == "# T\n\n## Benchmark\n\n<!-- bench:start -->\n| new |\n<!-- bench:end -->\n\n## Next\n"
    assert bench.replace_readme_section(replaced, "| new |") == replaced


@pytest.mark.parametrize("text", [
    "no markers\n",
    "<!-- bench:start -->\nonly the start\n",
    "<!-- bench:end -->\nreversed\n<!-- bench:start -->\n",
    "<!-- bench:start -->\n<!-- bench:end -->\n<!-- bench:start -->\n<!-- bench:end -->\n",
])
def test_readme_without_proper_markers_fails_clearly(text: str) -> None:
    with pytest.raises(bench.BenchError, match="bench:start"):
        bench.replace_readme_section(text, "x")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
