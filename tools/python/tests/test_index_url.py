"""Tests for tools/python/index_url.py and fetch.py's checks."""

from __future__ import annotations

import os

import pytest

from tools.python import fetch
from tools.python.index_url import configured_index_url, from_pip_config, pip_default


def test_environment_wins() -> None:
    assert configured_index_url({"PIP_INDEX_URL": "https://mirror.invalid/simple/ "}, "global.index-url='x'") == "https://mirror.invalid/simple"


def test_pip_config_most_specific_section_first() -> None:
    listing = "global.index-url='https://a.invalid/simple'\ninstall.index-url='https://b.invalid/simple'\nglobal.cert='/x'\n"
    assert from_pip_config(listing) == "https://b.invalid/simple"
    assert configured_index_url({}, listing) == "https://b.invalid/simple"


def test_pip_default_when_nothing_is_configured() -> None:
    # pip is part of the build root, where Bazel runs this test; without it the case cannot be checked.
    if "TEST_SRCDIR" not in os.environ:
        pytest.importorskip("pip", reason="pip is not installed (it is in the build root, where Bazel runs this test)")
    assert configured_index_url({}, "global.extra-index-url='file:///x'\n") == pip_default().rstrip("/")
    assert pip_default().startswith("https://")


def test_fetch_checks_the_sha256() -> None:
    fetch.check_sha256(b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "u")
    with pytest.raises(fetch.FetchError, match="its sha256 is e3b0c442.*but the lock says 00"):
        fetch.check_sha256(b"", "00" * 32, "u")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
