"""Tests for tools/python/app_layer.py's file placement (the compiling is tested by the example's image tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.python.app_layer import AppLayerError, files_layer, parse_file


def test_files_go_under_the_app_directory(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("print(1)\n")
    (tmp_path / "run.sh").write_text("#!/bin/sh\n")
    (tmp_path / "run.sh").chmod(0o755)
    layer = files_layer([(tmp_path / "main.py", "pkg/main.py"), (tmp_path / "run.sh", "run.sh")], "/app/")
    assert {path: (entry.mode, entry.data) for path, entry in layer.entries.items()} == {
        "app": (0o755, b""),
        "app/pkg/main.py": (0o644, b"print(1)\n"),
        "app/run.sh": (0o755, b"#!/bin/sh\n"),
    }


def test_parse_file_errors() -> None:
    assert parse_file("a/b.py=pkg/b.py") == (Path("a/b.py"), "pkg/b.py")
    with pytest.raises(AppLayerError, match="expected SOURCE=DEST"):
        parse_file("a/b.py")
    with pytest.raises(AppLayerError, match="inside the app directory"):
        parse_file("a/b.py=/")


def test_two_files_at_one_path(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("")
    with pytest.raises(AppLayerError, match="would both be /app/x.py"):
        files_layer([(tmp_path / "a.py", "x.py"), (tmp_path / "a.py", "x.py")], "app")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
