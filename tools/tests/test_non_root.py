"""tools/bazel run by a user other than root: one line saying what is needed, in the first second, nothing made."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tools import build_root


def test_tools_bazel_as_a_non_root_user_says_so_in_one_line_and_touches_nothing(tmp_path: Path) -> None:
    """Run for real as uid 65534 (nobody), the way a user without root runs it."""
    home = tmp_path / "home"
    home.mkdir(mode=0o777)
    script = Path(build_root.__file__).resolve()
    result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "python3", str(script),
                             "build", "//python:3.9"], capture_output=True, text=True, cwd=tmp_path,
                            env={"PATH": os.environ["PATH"], "HOME": str(home)}, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("tools/bazel: tools/bazel must run as root:") and result.stderr.count("\n") == 1
    assert list(home.iterdir()) == [], "a refused user's cache was created"


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
