"""Tests for tools/python/select_wheels.py and simple_index.py: picking locked files from an index page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.python import select_wheels
from tools.python.requirements_lock_reader import Requirement
from tools.python.select_wheels import SelectError, select
from tools.python.simple_index import parse_page, project_url
from tools.python.wheel_tags import Interpreter

PAGE_URL = "https://index.invalid/simple/orjson/"
X86, ARM, SDIST, OTHER = "1" * 64, "2" * 64, "3" * 64, "4" * 64
X86_WHEEL = "orjson-3.11.5-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
ARM_WHEEL = "orjson-3.11.5-cp313-cp313-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
HTML = f"""<!DOCTYPE html><html><body>
<a href="../../packages/aa/{X86_WHEEL}#sha256={X86}">{X86_WHEEL}</a>
<a href="https://files.invalid/bb/{ARM_WHEEL}#sha256={ARM}" data-requires-python="&gt;=3.9">{ARM_WHEEL}</a>
<a href="/packages/cc/orjson-3.11.5.tar.gz#sha256={SDIST}">orjson-3.11.5.tar.gz</a>
</body></html>""".encode()


def requirement(*hashes: str) -> Requirement:
    return Requirement("orjson", "orjson", "3.11.5", hashes, 1)


def test_html_page_urls_are_resolved_against_the_page() -> None:
    files = parse_page(HTML, PAGE_URL)
    assert [(f.filename, f.url, f.sha256) for f in files] == [
        (X86_WHEEL, f"https://index.invalid/packages/aa/{X86_WHEEL}", X86),
        (ARM_WHEEL, f"https://files.invalid/bb/{ARM_WHEEL}", ARM),
        ("orjson-3.11.5.tar.gz", "https://index.invalid/packages/cc/orjson-3.11.5.tar.gz", SDIST),
    ]


def test_json_page() -> None:
    body = json.dumps({"files": [{"filename": X86_WHEEL, "url": f"x/{X86_WHEEL}", "hashes": {"sha256": X86}}]}).encode()
    assert [(f.url, f.sha256) for f in parse_page(body, PAGE_URL)] == [(PAGE_URL + f"x/{X86_WHEEL}", X86)]


def test_picks_the_locked_wheel_for_each_architecture() -> None:
    files = parse_page(HTML, PAGE_URL)
    locked = requirement(X86, ARM)
    assert [f.filename for f in select(files, locked, Interpreter.for_architecture("3.13", "amd64"), "amd64")] == [X86_WHEEL]
    assert [f.filename for f in select(files, locked, Interpreter.for_architecture("3.13", "arm64"), "arm64")] == [ARM_WHEEL]


def test_a_wrong_hash_is_named() -> None:
    with pytest.raises(SelectError, match=r"orjson==3\.11\.5: none of its 1 locked sha256 hashes is the hash of a file"):
        select(parse_page(HTML, PAGE_URL), requirement(OTHER), Interpreter.for_architecture("3.13", "amd64"), "amd64")


def test_missing_platform_is_named_with_the_platform() -> None:
    with pytest.raises(SelectError, match=r"no wheel for CPython 3\.13 on linux/arm64 among the locked files \(orjson-3\.11\.5-cp313-cp313-manylinux_2_17_x86_64"):
        select(parse_page(HTML, PAGE_URL), requirement(X86), Interpreter.for_architecture("3.13", "arm64"), "arm64")


def test_sdist_only_says_a_compiler_would_be_needed() -> None:
    with pytest.raises(SelectError, match="only a source distribution is locked; building it needs a compiler"):
        select(parse_page(HTML, PAGE_URL), requirement(SDIST), Interpreter.for_architecture("3.13", "amd64"), "amd64")


def test_wrong_python_version() -> None:
    with pytest.raises(SelectError, match="no wheel for CPython 3.12 on linux/amd64"):
        select(parse_page(HTML, PAGE_URL), requirement(X86), Interpreter.for_architecture("3.12", "amd64"), "amd64")


def test_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "page"
    page.write_bytes(HTML)
    arguments = ["--index-page", str(page), "--page-url", PAGE_URL, "--python-version", "3.13", "--architecture", "arm64"]
    locked = json.dumps({"name": "orjson", "project": "orjson", "version": "3.11.5", "hashes": [X86, ARM], "line": 1})
    assert select_wheels.main([*arguments, "--requirement", locked]) == 0
    assert json.loads(capsys.readouterr().out) == [{"filename": ARM_WHEEL, "url": f"https://files.invalid/bb/{ARM_WHEEL}", "sha256": ARM}]
    locked = json.dumps({"name": "orjson", "project": "orjson", "version": "3.11.5", "hashes": [X86], "line": 1})
    assert select_wheels.main([*arguments, "--requirement", locked]) == 1
    assert "linux/arm64" in capsys.readouterr().err


def test_project_url() -> None:
    assert project_url("https://index.invalid/simple/", "markupsafe") == "https://index.invalid/simple/markupsafe/"


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
