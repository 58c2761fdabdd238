"""The Python package index the rules download from: the one pip on this machine is configured to use.

In order: PIP_INDEX_URL (tools/bazel passes it into the build root; `--repo_env=PIP_INDEX_URL=...` sets it
for Bazel's repository rules alone), else the `index-url` of pip's configuration files (`pip config list`),
else pip's own built-in default. No index host is written in this project: it is always the user's choice
or pip's. Extra indexes (`extra-index-url`) are not consulted: every locked wheel must come from this one.

Run as `python3 -m tools.python.index_url`, it prints the URL.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tools import cli

# `pip config list` lines: "global.index-url='https://...'", ":env:.index-url='...'", "install.index-url=...".
_CONFIG_LINE = re.compile(r"^(?P<section>[^.]*)\.index-url=(?P<quote>['\"]?)(?P<value>.*)(?P=quote)$")
_SECTION_ORDER = (":env:", "download", "install", "global")


class IndexUrlError(Exception):
    pass


def from_pip_config(listing: str) -> str | None:
    """The index-url in `pip config list` output, the most specific section first."""
    found: dict[str, str] = {}
    for line in listing.splitlines():
        match = _CONFIG_LINE.match(line.strip())
        if match:
            found[match.group("section")] = match.group("value").split()[0] if match.group("value").split() else ""
    for section in _SECTION_ORDER:
        if found.get(section):
            return found[section]
    return None


def pip_default() -> str:
    """pip's built-in default index, from pip itself."""
    try:
        from pip._internal.models.index import PyPI  # type: ignore[import-not-found]
    except ImportError as error:
        raise IndexUrlError(
            "no index configured (PIP_INDEX_URL is unset, pip's configuration names none) and pip is not "
            "installed to ask for its default; set PIP_INDEX_URL, or pass --repo_env=PIP_INDEX_URL=URL to Bazel"
        ) from error
    return str(PyPI.simple_url)


def configured_index_url(environ: dict[str, str], pip_config_listing: str | None) -> str:
    value = environ.get("PIP_INDEX_URL", "").split()
    if value:
        return value[0].rstrip("/")
    if pip_config_listing:
        configured = from_pip_config(pip_config_listing)
        if configured:
            return configured.rstrip("/")
    return pip_default().rstrip("/")


def pip_config_listing() -> str | None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    )
    return result.stdout if result.returncode == 0 else None


@cli.tool("index_url", IndexUrlError)
def main() -> int:
    print(configured_index_url(dict(os.environ), pip_config_listing()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
