"""Tests for tools/python/wheel_tags.py."""

from __future__ import annotations

import pytest

from tools.python.wheel_tags import Interpreter, WheelName, WheelNameError, normalize_name, parse_glibc

CP313_X86 = Interpreter("cpython", 3, 13, "x86_64", (2, 41))
CP313_ARM = Interpreter("cpython", 3, 13, "aarch64", (2, 41))


def rank(interpreter: Interpreter, filename: str) -> int | None:
    return interpreter.preference(WheelName.parse(filename))


def test_parse_compressed_tag_sets_and_build_tag() -> None:
    wheel = WheelName.parse("Markup_Safe-3.0.3-1-cp313-cp313-manylinux2014_x86_64.manylinux_2_17_x86_64.whl")
    assert wheel.name == "markup-safe"
    assert wheel.version == "3.0.3"
    assert wheel.tags == {("cp313", "cp313", "manylinux2014_x86_64"), ("cp313", "cp313", "manylinux_2_17_x86_64")}


@pytest.mark.parametrize("filename", ["orjson-3.11.5.tar.gz", "orjson-3.11.5-cp313-x86_64.whl", "a--b-c-d.whl"])
def test_not_a_wheel(filename: str) -> None:
    with pytest.raises(WheelNameError):
        WheelName.parse(filename)


def test_architecture_and_abi_must_match() -> None:
    assert rank(CP313_X86, "orjson-1-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl") is not None
    assert rank(CP313_ARM, "orjson-1-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl") is None
    assert rank(CP313_X86, "orjson-1-cp312-cp312-manylinux_2_17_x86_64.whl") is None
    assert rank(CP313_X86, "orjson-1-cp313-cp313t-manylinux_2_17_x86_64.whl") is None
    assert rank(CP313_X86, "orjson-1-cp313-cp313-musllinux_1_2_x86_64.whl") is None
    assert rank(CP313_X86, "orjson-1-cp313-cp313-macosx_11_0_arm64.whl") is None


def test_glibc_newer_than_the_image_does_not_fit() -> None:
    old = Interpreter("cpython", 3, 13, "x86_64", (2, 28))
    assert rank(old, "x-1-cp313-cp313-manylinux_2_34_x86_64.whl") is None
    assert rank(old, "x-1-cp313-cp313-manylinux_2_28_x86_64.whl") is not None


def test_preference_order() -> None:
    order = [
        "x-1-cp313-cp313-manylinux_2_28_x86_64.whl",
        "x-1-cp313-cp313-manylinux_2_17_x86_64.whl",
        "x-1-cp39-abi3-manylinux_2_17_x86_64.whl",
        "x-1-py3-none-manylinux_2_17_x86_64.whl",
        "x-1-py3-none-any.whl",
    ]
    ranks = [rank(CP313_X86, name) for name in order]
    assert None not in ranks
    assert ranks == sorted(ranks)


def test_abi3_from_a_newer_python_does_not_fit() -> None:
    assert rank(CP313_X86, "x-1-cp314-abi3-manylinux_2_17_x86_64.whl") is None


def test_legacy_aliases() -> None:
    assert rank(CP313_X86, "x-1-cp313-cp313-manylinux1_x86_64.whl") is not None
    assert rank(CP313_ARM, "x-1-cp313-cp313-manylinux2014_aarch64.whl") is not None
    assert rank(CP313_ARM, "x-1-cp313-cp313-manylinux1_aarch64.whl") is None


def test_helpers() -> None:
    assert normalize_name("Foo.Bar__baz") == "foo-bar-baz"
    assert parse_glibc("glibc 2.41") == (2, 41)
    with pytest.raises(ValueError, match="musl"):
        parse_glibc("")
    assert Interpreter.for_architecture("3.13", "arm64").machine == "aarch64"


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
