"""Tests for tools/python/lock.py, with an index served from memory."""

from __future__ import annotations

import pytest

from tools.python.lock import LockToolError, lock, read_pins

INDEX = "https://index.invalid/simple"
X86 = "orjson-3.11.5-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
X86_NEW = "orjson-3.11.5-cp313-cp313-manylinux_2_28_x86_64.whl"
X86_TOO_NEW = "orjson-3.11.5-cp313-cp313-manylinux_2_99_x86_64.whl"
ARM = "orjson-3.11.5-cp313-cp313-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
OLD = "orjson-3.10.0-cp313-cp313-manylinux_2_17_aarch64.whl"
PURE = "six-1.17.0-py2.py3-none-any.whl"


def page(*files: tuple[str, str]) -> bytes:
    return "".join(f'<a href="/f/{name}#sha256={digest}">{name}</a>\n' for name, digest in files).encode()


PAGES = {
    f"{INDEX}/orjson/": page((X86, "1" * 64), (X86_NEW, "2" * 64), (X86_TOO_NEW, "5" * 64), (ARM, "3" * 64), (OLD, "4" * 64),
                             ("orjson-3.11.5.tar.gz", "6" * 64)),
    f"{INDEX}/six/": page((PURE, "7" * 64)),
    f"{INDEX}/onlysdist/": page(("onlysdist-1.0.tar.gz", "8" * 64)),
}


def fetch(url: str) -> bytes:
    return PAGES[url]


def test_writes_the_best_wheel_per_architecture() -> None:
    text = lock(read_pins("six==1.17.0\norjson==3.11.5\n", "in"), fetch, INDEX, "3.13", ["amd64", "arm64"], (2, 41))
    body = text.split("\n", 2)[2]
    assert body == (
        f"# {ARM}\n# {X86_NEW}\norjson==3.11.5 \\\n    --hash=sha256:{'3' * 64} \\\n    --hash=sha256:{'2' * 64}\n"
        f"# {PURE}\nsix==1.17.0 \\\n    --hash=sha256:{'7' * 64}\n"
    )


def test_the_images_glibc_bounds_the_choice() -> None:
    text = lock(read_pins("orjson==3.11.5\n", "in"), fetch, INDEX, "3.13", ["amd64"], (2, 17))
    assert f"# {X86}\n" in text and X86_NEW not in text


def test_no_wheel_for_a_platform_is_an_error_naming_it() -> None:
    with pytest.raises(LockToolError, match=r"onlysdist==1\.0 publishes no wheel at all for cpython 3\.13 on linux x86_64.*no compiler"):
        lock(read_pins("onlysdist==1.0\n", "in"), fetch, INDEX, "3.13", ["amd64"], (2, 41))
    with pytest.raises(LockToolError, match=r"orjson==3\.10\.0 has wheels, none for cpython 3\.13 on linux x86_64"):
        lock(read_pins("orjson==3.10.0\n", "in"), fetch, INDEX, "3.13", ["amd64", "arm64"], (2, 41))


@pytest.mark.parametrize("text", ["orjson\n", "orjson>=3\n", "orjson==3 ; python_version>'3'\n", "-r other.txt\n"])
def test_only_exact_pins(text: str) -> None:
    with pytest.raises(LockToolError, match="pin one exact version"):
        read_pins(text, "requirements.in")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
