"""Tests for tools/bench/bench.py, the phases' glue: its command line, undoing the touch phase's edit, and the
digests the reproducibility goal compares. The phases themselves need root, Bazel, git and a mirror (the build
root has no git), and are exercised by running the bench."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.bench import bench
from tools.bench.results import Repro


def test_arguments() -> None:
    args = bench.parse_args(["--runs", "5", "--skip", "cache", "--skip", "images", "--json", "out.json"])
    assert (args.runs, args.skip, args.json, args.update_readme) == (5, ["cache", "images"], Path("out.json"), False)
    assert bench.parse_args([]).runs == 20


@pytest.mark.parametrize("argv", [["--runs", "0"], ["--skip", "startup"]])
def test_bad_arguments_exit_with_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        bench.parse_args(argv)
    assert exit_.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_restore_appended_takes_back_only_its_own_edit(tmp_path: Path) -> None:
    path = tmp_path / "root.yaml"
    path.write_bytes(b"a\n\n")
    bench.restore_appended(path, b"a\n", b"\n")
    assert path.read_bytes() == b"a\n"
    path.write_bytes(b"someone else's\n")
    bench.restore_appended(path, b"a\n", b"\n")
    assert path.read_bytes() == b"someone else's\n"


def test_repro_digests_include_the_cache_hit_build_when_there_was_one() -> None:
    assert bench.repro_digests(None) is None
    assert bench.repro_digests(Repro("/a", "sha256:1", "/b", "sha256:2", None, 0)) == ["sha256:1", "sha256:2"]
    assert bench.repro_digests(Repro("/a", "sha256:1", "/b", "sha256:2", "sha256:3", 0)) == [
        "sha256:1", "sha256:2", "sha256:3"]


class FakeBazel:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.builds: list[tuple[str, ...]] = []

    def build(self, *args: str) -> None:
        self.builds.append(args)

    def bazel_bin(self) -> Path:
        return self.root


def test_measure_images_builds_the_baseline_and_costs_each_image(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "image_sizes", lambda python_bin: [])
    monkeypatch.setattr(bench, "update_costs", lambda python_bin, image: [f"cost of {image} in {python_bin.name}"])
    monkeypatch.setattr(bench, "variant_layers", lambda python_bin, image: f"variants of {image}")
    fake = FakeBazel(tmp_path)
    phase = bench.measure_images(fake, ["3.9_amd64", "3.13_amd64"])
    assert fake.builds == [("//python:all",),
                           ("//python:3.9_amd64_grouped_layers", "//python:3.13_amd64_grouped_layers")]
    assert phase.update_costs == ["cost of 3.9_amd64 in python", "cost of 3.13_amd64 in python"]
    assert phase.variant_layers == ["variants of 3.9_amd64", "variants of 3.13_amd64"]


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
