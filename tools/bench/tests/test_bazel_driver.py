"""Tests for tools/bench/bazel_driver.py: reading Bazel's process summary and --explain file, and driving a
workspace's tools/bazel (here a stand-in script that records how it was called)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools.bench import bazel_driver
from tools.bench.console import BenchError
from tools.bench.results import ProcessSummary

# --- Bazel's process summary ------------------------------------------------------------------------


def test_summary_with_disk_cache_hits() -> None:
    output = "INFO: Found 1 target...\nINFO: 97 processes: 61 disk cache hit, 36 internal.\nINFO: Build completed\n"
    summary = bazel_driver.parse_process_summary(output)
    assert summary == ProcessSummary(97, {"disk cache hit": 61, "internal": 36})
    assert bazel_driver.cache_hits(summary) == (61, 61, 1.0)


def test_summary_of_a_build_without_cache() -> None:
    summary = bazel_driver.parse_process_summary("INFO: 40 processes: 12 internal, 28 linux-sandbox.\n")
    assert summary.kinds == {"internal": 12, "linux-sandbox": 28}
    assert bazel_driver.cache_hits(summary) == (0, 28, 0.0)


def test_partial_hits_count_every_non_internal_kind() -> None:
    summary = bazel_driver.parse_process_summary(
        "INFO: 10 processes: 6 disk cache hit, 2 internal, 1 linux-sandbox, 1 local.")
    assert bazel_driver.cache_hits(summary) == (6, 8, 0.75)


def test_remote_cache_hits_count_too() -> None:
    summary = bazel_driver.parse_process_summary("INFO: 5 processes: 2 remote cache hit, 1 disk cache hit, 2 internal.")
    assert bazel_driver.cache_hits(summary) == (3, 3, 1.0)


def test_single_internal_process_has_no_ratio() -> None:
    summary = bazel_driver.parse_process_summary("INFO: 1 process: 1 internal.\n")
    assert summary == ProcessSummary(1, {"internal": 1})
    assert bazel_driver.cache_hits(summary) == (0, 0, None)


def test_no_processes_at_all() -> None:
    assert bazel_driver.parse_process_summary("INFO: 0 processes.\n") == ProcessSummary(0, {})


def test_last_summary_line_wins() -> None:
    output = "INFO: 5 processes: 5 internal.\nINFO: 7 processes: 3 internal, 4 linux-sandbox.\n"
    assert bazel_driver.parse_process_summary(output).total == 7


def test_missing_summary_line_is_an_error() -> None:
    with pytest.raises(BenchError, match="summary line"):
        bazel_driver.parse_process_summary("INFO: Build completed successfully\n")


def test_unreadable_summary_part_is_an_error() -> None:
    with pytest.raises(BenchError, match="cannot read"):
        bazel_driver.parse_process_summary("INFO: 3 processes: lots internal.\n")


# --- --explain ---------------------------------------------------------------------------------------

EXPLAIN = """Build options: --symlink_prefix=/ --explain=/x/explain.txt --verbose_explanations
Executing action 'BazelWorkspaceStatusAction stable-status.txt': unconditional execution is requested.
Executing action 'Writing script python/3.9_amd64_test.sh': One of the files has changed.
Executing action 'Creating runfiles tree bazel-out/k8-fastbuild/bin/python/3.9_amd64_test.sh.runfiles': One of the files has changed.
Executing action 'Writing OCI image layout bazel-out/k8-fastbuild/bin/python/3.9_amd64': One of the files has changed.
Executing action 'Compiling bazel-out/k8-fastbuild/bin/python/3.9_amd64_pyc.tar.gz': One of the files has changed.
"""


def test_parse_explain_lists_executed_actions() -> None:
    actions = bazel_driver.parse_explain(EXPLAIN)
    assert actions[0] == "Writing script python/3.9_amd64_test.sh"
    assert len(actions) == 4


def test_image_actions_are_the_layers_and_the_layout_only() -> None:
    actions = bazel_driver.parse_explain(EXPLAIN)
    found = bazel_driver.image_actions(actions, ["base_files.tar.gz", "3.9_amd64_pyc.tar.gz"], "3.9_amd64")
    assert found == [actions[2], actions[3]]


def test_no_image_action_when_only_the_test_reran() -> None:
    actions = bazel_driver.parse_explain(EXPLAIN)[:2]
    assert bazel_driver.image_actions(actions, ["3.9_amd64_pyc.tar.gz"], "3.9_amd64") == []


# --- Driving tools/bazel ----------------------------------------------------------------------------

# Records its arguments, one call per line; `info` prints a bazel-bin path; `fail` fails.
FAKE_BAZEL = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/calls.txt"
case "$*" in
  *" info "*) echo /out/bin ;;
  *fail*) echo "ERROR: the build failed" >&2; exit 3 ;;
  *) echo "INFO: 2 processes: 2 internal." >&2 ;;
esac
"""


def fake_workspace(tmp_path: Path) -> Path:
    tools = tmp_path / "workspace" / "tools"
    tools.mkdir(parents=True)
    (tools / "bazel").write_text(FAKE_BAZEL)
    os.chmod(tools / "bazel", 0o755)
    return tools.parent


def calls(workspace: Path) -> list[str]:
    path = workspace / "tools" / "calls.txt"
    return path.read_text().splitlines() if path.exists() else []


def test_build_runs_tools_bazel_in_its_output_base(tmp_path: Path) -> None:
    workspace = fake_workspace(tmp_path)
    started: list[bazel_driver.Bazel] = []
    bazel = bazel_driver.Bazel(workspace, tmp_path / "ob", started)
    run = bazel.build("//python:3.9_amd64")
    assert started == [bazel]
    assert "INFO: 2 processes" in run.stderr and run.seconds >= 0
    assert bazel.bazel_bin() == Path("/out/bin")
    assert calls(workspace) == [
        f"--output_base={tmp_path / 'ob'} build --symlink_prefix=/ --color=no --curses=no //python:3.9_amd64",
        f"--output_base={tmp_path / 'ob'} info --symlink_prefix=/ --color=no --curses=no bazel-bin"]


def test_failed_command_names_the_command_and_bazels_last_lines(tmp_path: Path) -> None:
    workspace = fake_workspace(tmp_path)
    bazel = bazel_driver.Bazel(workspace, tmp_path / "ob", [])
    with pytest.raises(BenchError, match=r"(?s)build .*//fail failed \(exit 3\):\nERROR: the build failed"):
        bazel.build("//fail")


def test_shutdown_only_of_a_server_it_started(tmp_path: Path) -> None:
    workspace = fake_workspace(tmp_path)
    bazel = bazel_driver.Bazel(workspace, tmp_path / "ob", [])
    bazel.shutdown()
    assert calls(workspace) == []  # never ran: nothing to shut down
    (tmp_path / "ob").mkdir()
    bazel.build("//x")
    bazel.shutdown()
    bazel.shutdown()
    assert calls(workspace)[1:] == [f"--output_base={tmp_path / 'ob'} shutdown"]


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
