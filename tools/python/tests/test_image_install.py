"""install_wheels.py for real: //python:3.13_amd64's own interpreter checks and compiles the example's locked wheels.

Runs under Bazel (as root, in the build root), which provides the image and the wheels through
IMAGE_AMD64, WHEELS_AMD64 and WHEELS_ARM64.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools.python import install_wheels
from tools.tarball import read_layer

SITE = "usr/lib/python3/dist-packages"


def paths(variable: str) -> list[Path]:
    value = os.environ.get(variable)
    assert value, f"{variable} is not set: run this test with tools/bazel test //tools/python:test_image_install"
    return [Path(path) for path in value.split()]


def test_the_images_python_installs_and_compiles_the_amd64_wheels(tmp_path: Path) -> None:
    out = tmp_path / "layer.tar.gz"
    arguments = ["--base", str(paths("IMAGE_AMD64")[0]), "--output", str(out)]
    assert install_wheels.main([*arguments, *(f"--wheel={wheel}" for wheel in paths("WHEELS_AMD64"))]) == 0
    entries = read_layer(out).entries
    assert f"{SITE}/orjson/orjson.cpython-313-x86_64-linux-gnu.so" in entries
    pyc = entries[f"{SITE}/markupsafe/__pycache__/__init__.cpython-313.pyc"].data
    assert int.from_bytes(pyc[4:8], "little") == 1  # unchecked-hash
    again = tmp_path / "again.tar.gz"
    assert install_wheels.main([*arguments[:-1], str(again), *(f"--wheel={wheel}" for wheel in paths("WHEELS_AMD64"))]) == 0
    assert again.read_bytes() == out.read_bytes()


def test_an_arm64_wheel_is_refused_by_the_amd64_images_python(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    orjson = [wheel for wheel in paths("WHEELS_ARM64") if wheel.name.startswith("orjson-")]
    out = tmp_path / "layer.tar.gz"
    status = install_wheels.main(["--base", str(paths("IMAGE_AMD64")[0]), "--output", str(out), f"--wheel={orjson[0]}"])
    error = capsys.readouterr().err
    assert status == 1
    assert "install_wheels: error: orjson: no wheel fits the image's Python, cpython 3.13" in error
    assert "on linux x86_64, glibc 2.41 (given: orjson-3.11.5-cp313-cp313-manylinux_2_17_aarch64" in error
    assert "lock a wheel for cp313 manylinux x86_64" in error
    assert not out.exists()


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
