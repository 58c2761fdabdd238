"""The scheduled workflow (.github/workflows/stay-patched.yml), which cannot run here, checked as far as it can be:
valid against GitHub's workflow schema (check-jsonschema's built-in copy), every tools/bazel target it runs one
the test depends on (so Bazel proved it exists), every flag it passes one that tool's --help lists, and every
other command one that GitHub's Ubuntu runners provide."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

WORKFLOW = Path(os.environ["WORKFLOW"])
# The tools/bazel targets the workflow may run -> the runfiles path of each (a data dependency of this test).
TARGETS = dict(pair.split("=", 1) for pair in os.environ["WORKFLOW_TARGETS"].split())
# What the runner image has besides the checkout's tools/bazel (and shell builtins).
RUNNER_COMMANDS = {"sudo", "apt-get", "git", "gh", "docker", "awk", "date", "id", "mkdir", "printf", "echo", "test"}
SHELL_WORDS = {"||", "&&", "|", ";", ">", ">>", "<"}


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                           str(path)], capture_output=True, text=True, timeout=120)


def test_the_workflow_is_valid_and_a_broken_one_is_not(tmp_path: Path) -> None:
    valid = check_jsonschema(WORKFLOW)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on: ubuntu-24.04", "runs_on: ubuntu-24.04", 1))
    refused = check_jsonschema(broken)
    assert refused.returncode != 0, "the validator accepted a job without runs-on"


def scripts() -> list[str]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    return [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]


def commands(script: str) -> list[list[str]]:
    """The simple commands of a step's script: its lines split at ||, &&, | and ;, without leading VAR=value."""
    found = []
    for line in script.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        words: list[str] = []
        for word in shlex.split(line, comments=True) + [";"]:
            if word in ("||", "&&", "|", ";"):
                while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
                    words.pop(0)
                if words:
                    found.append(words)
                words = []
            elif word in SHELL_WORDS:
                continue
            else:
                words.append(word)
    return found


def test_every_command_exists_and_every_flag_is_known() -> None:
    runfiles = Path(os.environ["TEST_SRCDIR"]) / "_main"
    seen_targets = set()
    for script in scripts():
        for words in commands(script):
            if words[:2] == ["sudo", "-E"]:
                words = words[2:]
            if words[0] == "tools/bazel":
                assert words[1] == "run", words
                label = words[2]
                assert label in TARGETS, f"{label} is not a data dependency of this test: add it so Bazel checks it"
                seen_targets.add(label)
                flags = [word.split("=")[0] for word in words[words.index("--") + 1:] if word.startswith("--")]
                help_text = subprocess.run([str(runfiles / TARGETS[label]), "--help"], capture_output=True,
                                           text=True, cwd=runfiles, timeout=120).stdout
                for flag in flags:
                    assert re.search(rf"{re.escape(flag)}(?![\w-])", help_text), f"{label} has no {flag} (its --help: {help_text})"
            else:
                assert words[0] in RUNNER_COMMANDS, f"{words[0]} is neither tools/bazel nor a runner command"
    assert seen_targets == set(TARGETS), f"data names targets the workflow does not run: {set(TARGETS) - seen_targets}"


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
