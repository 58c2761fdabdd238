"""A Bazel server of its own, for tests that build this workspace from inside a test (in the build root).

Each instance has its own --output_user_root and --output_base under the test's temporary directory, never
touches the workspace's bazel-* symlinks, and `shutdown()` (or leaving the `with` block) stops its server.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tools import build_root

# Bazel's last summary line, e.g. "INFO: 52 processes: 34 internal, 4 linux-sandbox, 14 remote."
SUMMARY = re.compile(r"^INFO: (\d+) process(?:es)?(?:: (.*?))?\.$", re.MULTILINE)
# Process kinds that ran on this machine (not remotely, not from a cache).
# Commands that build and so accept --experimental_convenience_symlinks.
BUILDING_COMMANDS = ("build", "test", "run", "coverage")
LOCAL_KINDS = ("linux-sandbox", "processwrapper-sandbox", "local", "worker", "sandbox")


@dataclass(frozen=True)
class Result:
    returncode: int
    output: str
    seconds: float

    @property
    def processes(self) -> dict[str, int]:
        return process_summary(self.output)


def process_summary(output: str) -> dict[str, int]:
    """Bazel's process summary as {kind: count}, with "total"; {} when Bazel printed none."""
    matches = list(SUMMARY.finditer(output))
    if not matches:
        return {}
    last = matches[-1]
    counts = {"total": int(last.group(1))}
    for part in (last.group(2) or "").split(", "):
        number, _, kind = part.partition(" ")
        if number.isdigit():
            counts[kind] = counts.get(kind, 0) + int(number)
    return counts


def executed_locally(counts: dict[str, int]) -> int:
    return sum(count for kind, count in counts.items() if kind in LOCAL_KINDS)


def nested_environment(environ: dict[str, str], home: Path) -> dict[str, str]:
    """What a nested Bazel sees: what tools/bazel passes into the root (its one table, build_root.py's), PATH
    and LANG as the root set them, and a HOME of its own."""
    passed = (*build_root.PASSED_VARIABLES, *build_root.MIRROR_VARIABLES, "PATH", "LANG")
    env = {name: environ[name] for name in passed if name in environ}
    env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    env["HOME"] = str(home)
    return env


def workspace_from_runfiles(environ: dict[str, str]) -> Path:
    """The real workspace: the target of the runfiles' MODULE.bazel (a test's data dependency)."""
    module = Path(environ["TEST_SRCDIR"]) / "_main" / "MODULE.bazel"
    return module.resolve().parent


# What of a checkout is not the workspace's source: its VCS data, Bazel's convenience links, bytecode caches
# and local settings. A test's copy of the workspace leaves them out.
NOT_SOURCE = (".git", "bazel-*", "__pycache__", "user.bazelrc")


def copy_checkout(source: Path, target: Path, *also_leave_out: str) -> None:
    """The checkout's source files at `target` (NOT_SOURCE and the `also_leave_out` patterns left out)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*NOT_SOURCE, *also_leave_out), symlinks=True)


def digest_of(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


class NestedBazel:
    def __init__(self, workspace: Path, scratch: Path, name: str) -> None:
        self.workspace = workspace
        self.user_root = scratch / "bazel-user-root"
        self.output_base = scratch / f"output-base-{name}"
        self.started = False
        self._started_at = 0.0

    def startup(self) -> list[str]:
        # --max_idle_secs: even a server that `shutdown` missed exits on its own soon.
        return ["bazel", f"--output_user_root={self.user_root}", f"--output_base={self.output_base}",
                "--max_idle_secs=120"]

    def argv(self, command: str, *args: str) -> list[str]:
        # Only the commands that build write the bazel-* links into the workspace; query refuses the flag.
        links = ["--experimental_convenience_symlinks=ignore"] if command in BUILDING_COMMANDS else []
        return [*self.startup(), command, *links, *args]

    def run(self, command: str, *args: str, log: Path | None = None) -> Result:
        argv = self.argv(command, *args)
        print(f"$ {' '.join(argv)}", file=sys.stderr, flush=True)
        started = time.monotonic()
        self.started = True
        result = subprocess.run(argv, cwd=self.workspace, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=self.environment())
        seconds = time.monotonic() - started
        if log is not None:
            log.write_text(result.stdout)
        tail = "\n".join(result.stdout.splitlines()[-15:])
        print(f"{tail}\n(exit {result.returncode}, {seconds:.1f} s)", file=sys.stderr, flush=True)
        return Result(result.returncode, result.stdout, seconds)

    def environment(self) -> dict[str, str]:
        return nested_environment(dict(os.environ), self.user_root.parent)

    def start(self, command: str, *args: str, log: Path) -> "subprocess.Popen[str]":
        """Runs a command in the background, its output going to `log`; finish() collects it."""
        argv = self.argv(command, *args)
        print(f"$ {' '.join(argv)} &", file=sys.stderr, flush=True)
        self.started = True
        self._started_at = time.monotonic()
        with open(log, "w") as output:
            return subprocess.Popen(argv, cwd=self.workspace, stdout=output, stderr=subprocess.STDOUT, text=True,
                                    env=self.environment())

    def finish(self, process: "subprocess.Popen[str]", log: Path, timeout: float = 1800) -> Result:
        returncode = process.wait(timeout=timeout)
        seconds = time.monotonic() - self._started_at
        output = log.read_text()
        tail = "\n".join(output.splitlines()[-15:])
        print(f"{tail}\n(exit {returncode}, {seconds:.1f} s)", file=sys.stderr, flush=True)
        return Result(returncode, output, seconds)

    def bin_path(self, relative: str) -> Path:
        return self.output_base / "execroot/_main/bazel-out/k8-fastbuild/bin" / relative

    def shutdown(self) -> None:
        if self.started and self.output_base.is_dir():
            subprocess.run([*self.startup(), "shutdown"], cwd=self.workspace, capture_output=True,
                           env=self.environment(), timeout=120)
        self.started = False

    def remove(self) -> None:
        """Shuts the server down and deletes its output base."""
        self.shutdown()
        shutil.rmtree(self.output_base, ignore_errors=True)

    def __enter__(self) -> "NestedBazel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def remote_flags(port: int, *extra: str) -> list[str]:
    return ["--config=remote", f"--remote_executor=grpc://127.0.0.1:{port}", *extra]


def unique_salt() -> str:
    return f"{os.getpid()}-{time.time_ns()}"
