"""Driving tools/bazel in output bases of the bench's own, and reading what Bazel reports: its process
summary (cache hits) and its --explain file (what a change re-ran)."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tools.bench.console import BenchError
from tools.bench.results import ProcessSummary

# No bazel-* symlinks: the workspace's own must keep pointing at its own output base.
BAZEL_FLAGS = ("--symlink_prefix=/", "--color=no", "--curses=no")

SUMMARY_LINE = re.compile(r"^INFO: (\d+) process(?:es)?(?:: (.*?))?\.?\s*$", re.MULTILINE)
EXPLAIN_ACTION = re.compile(r"^Executing action '(.*)':", re.MULTILINE)
# Runs on every build ("unconditional execution is requested"), so it says nothing about what a change costs.
ALWAYS_RUNS = "BazelWorkspaceStatusAction"


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


def parse_explain(text: str) -> list[str]:
    """The actions Bazel's --explain file says it executed, but for the one that runs on every build."""
    return [action for action in EXPLAIN_ACTION.findall(text) if not action.startswith(ALWAYS_RUNS)]


def image_actions(actions: Sequence[str], layer_files: Sequence[str], image: str) -> list[str]:
    """The actions among `actions` that wrote one of the image's layers or its OCI layout."""
    return [a for a in actions
            if any(("/" + name) in a for name in layer_files) or re.search(rf"/{re.escape(image)}$", a)]
