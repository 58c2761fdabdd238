"""Fixtures shared by the OCI tool tests: layer tars made with tools.tarball, and images built through the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from tools import tarball
from tools.oci import build_layout

MakeLayer = Callable[..., Path]
BuildImage = Callable[..., Path]


@pytest.fixture
def make_layer(tmp_path: Path) -> MakeLayer:
    """Writes a layer tar of `files` as tmp_path/<directory>/<name> and returns its path."""

    def make(name: str, files: dict[str, bytes], compression: str = "gzip", directory: str = "layers") -> Path:
        layer = tarball.Layer()
        for file_path, data in files.items():
            layer.add_file(file_path, data)
        path = tmp_path / directory / name
        layer.write(path, compression)
        return path

    return make


@pytest.fixture
def build_image(tmp_path: Path) -> BuildImage:
    """Runs `build_layout image` with the given flags into tmp_path/<name> and returns the layout."""

    def build(name: str, *flags: str) -> Path:
        output = tmp_path / name
        assert build_layout.main(["image", "--output", str(output), *flags]) == 0
        return output

    return build
