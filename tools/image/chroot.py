"""Running one of the image's own programs inside its unpacked root.

chroot(2) needs root (CAP_SYS_CHROOT). The build runs as root in its build root, so that is where these
tools work; anywhere else they stop with a clear message instead of failing halfway.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tools.image.unpack import resolve_in_root

# The environment the image's programs see: nothing from the build's own environment leaks in.
BASE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


class ChrootError(Exception):
    """The program cannot be run in the root, or it failed there."""


def require_root(tool: str) -> None:
    if os.geteuid() != 0:
        raise ChrootError(
            f"{tool} must run as root: it chroots into the image's unpacked layers to run the image's own "
            "programs (the build runs as root inside its build root)"
        )


def find_program(root: Path, candidates: tuple[str, ...]) -> str | None:
    """Returns the first of `candidates` (paths inside the image) that is an executable file there."""
    for candidate in candidates:
        host_path = resolve_in_root(root, candidate)
        if host_path.is_file() and os.access(host_path, os.X_OK):
            return "/" + candidate.lstrip("/")
    return None


def run_in_root(root: Path, argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Runs `argv` (paths as seen inside the image) chrooted into `root`; raises ChrootError on failure."""

    def enter_root() -> None:
        os.chroot(root)
        os.chdir("/")

    try:
        result = subprocess.run(
            argv,
            env={**BASE_ENV, **(env or {})},
            preexec_fn=enter_root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise ChrootError(f"cannot run {argv[0]} chrooted into {root}: {error}") from error
    if result.returncode != 0:
        output = (result.stderr + result.stdout).strip()
        raise ChrootError(f"{' '.join(argv)} failed in the image (exit {result.returncode}):\n{output}")
    return result
