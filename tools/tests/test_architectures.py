"""Tests for the architecture table."""

from __future__ import annotations

import pytest

from tools.architectures import ARCHITECTURES, BY_MACHINE, host_architecture


def test_names_map_both_ways() -> None:
    assert {name: a.machine for name, a in ARCHITECTURES.items()} == {
        "amd64": "x86_64", "arm64": "aarch64", "riscv64": "riscv64"}
    assert BY_MACHINE["aarch64"].name == "arm64" and ARCHITECTURES["arm64"].emulator() == "qemu-aarch64"
    assert host_architecture("x86_64") is ARCHITECTURES["amd64"] and host_architecture("ARM64") is ARCHITECTURES["arm64"]
    assert host_architecture("mips") is None


@pytest.mark.parametrize(("name", "magic"), [
    # As qemu's binfmt configuration writes them.
    ("arm64", b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00"),
    ("amd64", b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00"),
    ("riscv64", b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xf3\x00"),
])
def test_binfmt_magic(name: str, magic: bytes) -> None:
    expected_mask = b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"
    assert ARCHITECTURES[name].binfmt_magic() == (magic, expected_mask)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
