"""Tests for tools/bench/pythons.py: which Python the bench measures, from PYTHONS as JSON, both made-up
entries and the JSON Bazel wrote from the real python/config.bzl (//tools/bench:pythons_json)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tools.bench import pythons
from tools.bench.console import BenchError


def entry(distribution: str, version: str, archs: list[str], experimental: bool = False) -> dict[str, Any]:
    return {"distribution": distribution, "python": "python" + version, "archs": archs, "experimental": experimental}


PYTHONS = {
    "3.13": entry("trixie", "3.13", ["amd64", "arm64"]),
    "3.9": entry("bullseye", "3.9", ["amd64"]),
    "3.10": entry("bookworm", "3.10", ["amd64", "arm64"]),
    "3.8": entry("buster", "3.8", ["amd64", "arm64", "riscv64"], experimental=True),
}


def test_the_oldest_stable_version_for_the_architecture() -> None:
    measured = pythons.measured_python(PYTHONS, "amd64")
    assert measured == pythons.MeasuredPython("3.9", "amd64", "bullseye", "python3.9")


def test_versions_compare_as_numbers_and_the_architecture_counts() -> None:
    # 3.9 has no arm64 image; 3.10 is older than 3.13, which a string sort would get wrong.
    assert pythons.measured_python(PYTHONS, "arm64").version == "3.10"


def test_experimental_versions_are_not_measured() -> None:
    with pytest.raises(BenchError, match="riscv64"):
        pythons.measured_python(PYTHONS, "riscv64")


def test_facts_derived_from_the_entry() -> None:
    measured = pythons.MeasuredPython("3.11", "arm64", "bookworm", "python3.11")
    assert measured.image == "3.11_arm64"
    assert measured.image_target == "//python:3.11_arm64"
    assert measured.interpreter == "/usr/bin/python3.11"
    assert measured.version_package == "python3.11-minimal"
    assert measured.lock_file == "debian_packages/bookworm/lock.json"
    assert measured.manifest_file == "debian_packages/bookworm/manifest.yaml"


@pytest.mark.parametrize("text, message", [
    ("{", "not valid JSON"),
    ("{}", "no Python versions"),
    ('{"3.9": {"distribution": "bullseye", "python": "python3.9", "archs": ["amd64"]}}', "lacks one of"),
    ('{"3.9": {"distribution": 1, "python": "python3.9", "archs": ["amd64"], "experimental": false}}', "lacks one of"),
])
def test_bad_json_is_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(BenchError, match=message):
        pythons.parse_pythons(text, "pythons.json")


def test_a_version_that_is_not_major_minor_is_an_error() -> None:
    with pytest.raises(BenchError, match="MAJOR.MINOR"):
        pythons.measured_python({"3.x": entry("sid", "3.x", ["amd64"])}, "amd64")


def real_pythons() -> dict[str, dict[str, Any]]:
    location = os.environ.get("PYTHONS_JSON")
    if not location:
        pytest.fail("PYTHONS_JSON is not set: run this test with `tools/bazel test //tools/bench:test_pythons`")
    path = Path(location)
    return pythons.parse_pythons(path.read_text(), str(path))


def test_the_real_config_serialises_every_field() -> None:
    real = real_pythons()
    assert real == json.loads(Path(os.environ["PYTHONS_JSON"]).read_text())
    for version, facts in real.items():
        # config.bzl names each executable after its version: a swapped or missing field would show here.
        assert facts["python"] == "python" + version
        assert facts["distribution"] and facts["archs"]


def test_the_real_config_has_a_version_to_measure_on_amd64() -> None:
    real = real_pythons()
    measured = pythons.measured_python(real, "amd64")
    older = [v for v in real if pythons.version_key(v) < pythons.version_key(measured.version)]
    assert all(real[v]["experimental"] or "amd64" not in real[v]["archs"] for v in older)
    assert not real[measured.version]["experimental"]


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
