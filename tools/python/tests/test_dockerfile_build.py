"""Tests for tools/python/dockerfile_build.py and dockerfile_test.py: the build context, before any engine runs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tools.python.dockerfile_build import ContextError, wheel_directory
from tools.python.dockerfile_test import build_context, image_tag, last_base


def test_wheel_directory_takes_exactly_the_locked_wheels(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    good, other = tmp_path / "in" / "demo_pkg-1.0-py3-none-any.whl", tmp_path / "in" / "demo_pkg-1.0-py2-none-any.whl"
    good.parent.mkdir()
    good.write_bytes(b"the locked wheel")
    other.write_bytes(b"a wheel the lock does not hash")
    lock.write_text(f"demo-pkg==1.0 --hash=sha256:{hashlib.sha256(b'the locked wheel').hexdigest()}\n")
    assert wheel_directory(lock, [good], tmp_path / "ok") == [good.name]
    assert (tmp_path / "ok" / good.name).read_bytes() == b"the locked wheel"
    with pytest.raises(ContextError, match="which .* does not list for demo-pkg"):
        wheel_directory(lock, [other], tmp_path / "bad")
    with pytest.raises(ContextError, match="no wheel for demo-pkg"):
        wheel_directory(lock, [], tmp_path / "none")
    with pytest.raises(ContextError, match="unknown is not in"):
        wheel_directory(lock, [good, tmp_path / "unknown-1.0-py3-none-any.whl"], tmp_path / "extra")
    assert not (tmp_path / "bad").exists() and not (tmp_path / "none").exists()
    # An entry for another machine is pip's to skip there: it needs no wheel here.
    lock.write_text(lock.read_text() + f'armonly==1.0 ; platform_machine == "aarch64" --hash=sha256:{"0" * 64}\n')
    assert wheel_directory(lock, [good], tmp_path / "marked") == [good.name]


def test_the_context_keeps_each_files_path_and_stays_inside(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "a.py").write_text("A = 1\n")
    context = build_context(tmp_path / "ok", tmp_path / "Dockerfile", [(tmp_path / "a.py", "app/a.py")], None, [], "wheels", "x86_64")
    assert sorted(str(p.relative_to(context)) for p in context.rglob("*") if p.is_file()) == ["Dockerfile", "app/a.py"]
    with pytest.raises(ContextError, match="must stay inside the context"):
        build_context(tmp_path / "out", tmp_path / "Dockerfile", [(tmp_path / "a.py", "../a.py")], None, [], "wheels", "x86_64")
    with pytest.raises(ContextError, match="wheels without a lock"):
        build_context(tmp_path / "nolock", tmp_path / "Dockerfile", [], None, [tmp_path / "a.py"], "wheels", "x86_64")


def test_the_last_stages_base_has_its_args_filled_in(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("ARG DEV=d/python:3.13-dev\nARG RUNTIME=d/python:3.13-nonroot\nFROM ${DEV} AS build\n"
                          "RUN true\nFROM $RUNTIME\nCOPY --from=build /venv /venv\n")
    assert last_base(dockerfile, {}) == "d/python:3.13-nonroot"
    assert last_base(dockerfile, {"RUNTIME": "mine:1"}) == "mine:1"
    assert image_tag("//examples/hello_service:dockerfile_test") == "dockerfile-test.invalid/examples-hello-service-dockerfile-test:latest"


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
