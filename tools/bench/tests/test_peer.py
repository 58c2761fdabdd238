"""Tests for tools/bench/peer.py: the peer's mmdebstrap command and the cache key it is kept under."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.bench import peer
from tools.bench.pythons import MeasuredPython

BULLSEYE = MeasuredPython("3.9", "amd64", "bullseye", "python3.9")


def test_peer_command_installs_the_measured_python_from_its_release() -> None:
    trixie = MeasuredPython("3.13", "amd64", "trixie", "python3.13")
    command = peer.peer_command(trixie, Path("/target"), "http://mirror/debian")
    assert command[:2] == ["mmdebstrap", "--variant=minbase"]
    assert command[-4:] == ["--include=python3.13", "trixie", "/target", "http://mirror/debian"]


def test_peer_cache_key_ignores_the_target_directory() -> None:
    one = peer.peer_cache_key(peer.peer_command(BULLSEYE, Path("/a"), "http://mirror/debian"), "/a")
    two = peer.peer_cache_key(peer.peer_command(BULLSEYE, Path("/b"), "http://mirror/debian"), "/b")
    other_mirror = peer.peer_cache_key(peer.peer_command(BULLSEYE, Path("/a"), "http://other/debian"), "/a")
    bookworm = MeasuredPython("3.11", "amd64", "bookworm", "python3.11")
    other_python = peer.peer_cache_key(peer.peer_command(bookworm, Path("/a"), "http://mirror/debian"), "/a")
    assert one == two
    assert len({one, other_mirror, other_python}) == 3


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
