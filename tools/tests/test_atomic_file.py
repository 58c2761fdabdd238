"""Tests of the one way files are replaced: all or nothing, never a partial file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tools import atomic_file


def test_writes_bytes_and_text_with_the_mode(tmp_path: Path) -> None:
    out = tmp_path / "new" / "dir" / "file"
    atomic_file.write_atomically(out, b"\x00bytes")
    assert out.read_bytes() == b"\x00bytes" and stat.S_IMODE(out.stat().st_mode) == 0o644
    atomic_file.write_atomically(out, "text \u00e9", mode=0o600)
    assert out.read_bytes() == "text \u00e9".encode() and stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [p.name for p in out.parent.iterdir()] == ["file"]


def test_the_target_is_unchanged_until_the_block_ends(tmp_path: Path) -> None:
    out = tmp_path / "file"
    out.write_bytes(b"old")
    with atomic_file.atomic_writer(out) as handle:
        handle.write(b"new")
        handle.flush()
        assert out.read_bytes() == b"old"
    assert out.read_bytes() == b"new"


def test_an_error_in_the_block_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    out = tmp_path / "file"
    out.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_file.atomic_writer(out) as handle:
            handle.write(b"half")
            raise KeyboardInterrupt
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_a_failed_replace_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "layer.tar"
    out.write_bytes(b"old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic_file.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_file.write_atomically(out, b"new")
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["layer.tar"]


def test_concurrent_writers_use_their_own_temporary_files(tmp_path: Path) -> None:
    out = tmp_path / "state.json"
    with atomic_file.atomic_writer(out) as first, atomic_file.atomic_writer(out) as second:
        first.write(b"first")
        second.write(b"second")
        assert len(os.listdir(tmp_path)) == 2
    # The outer block ends last, so its contents win; neither writer saw the other's bytes.
    assert out.read_bytes() == b"first"
    assert os.listdir(tmp_path) == ["state.json"]


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
