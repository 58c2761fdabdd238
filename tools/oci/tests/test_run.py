"""Tests for tools/oci/run.py and tools/oci/engine.py: the choices they make before any engine runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.oci import engine, run
from tools.oci.structure_test import EngineError


def test_a_run_without_an_engine_or_root_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(run.os, "geteuid", lambda: 1000)
    with pytest.raises(EngineError, match="tools/bazel run //tools/oci:engine` starts one"):
        with run.engine("amd64", tmp_path):
            pass


def test_a_named_engine_that_does_not_answer_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'nothing.sock'}")
    with pytest.raises(EngineError, match="names an engine that does not answer"):
        with run.engine("amd64", tmp_path):
            pass


def test_the_launchers_separator_is_not_passed_to_the_container(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(run, "run", lambda archive, layout, tag, arguments, scratch: seen.append(arguments) or 7)
    assert run.main(["--archive", "a.tar", "--layout", "l", "--tag", "t", "--", "-c", "print(1)"]) == 7
    assert run.main(["--archive", "a.tar", "--layout", "l", "--tag", "t", "--", "--", "x"]) == 7
    assert seen == [["-c", "print(1)"], ["--", "x"]]


def test_the_engines_socket_goes_beside_the_output_bases() -> None:
    start = Path("/cache/bazel-root/0123abcd/execroot/_main/bazel-out/k8-fastbuild/bin/tools/oci/engine.runfiles/_main")
    assert engine.shared_directory(start) == Path("/cache/bazel-root")
    with pytest.raises(EngineError, match="not in a Bazel output base"):
        engine.shared_directory(Path("/home/someone"))


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
