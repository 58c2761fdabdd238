"""Tests for tools/python/requirements_lock.py: what a lock may hold, and the errors for what it may not."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tools.python import requirements_lock
from tools.python.requirements_lock import LockError, parse_lock

A, B = "a" * 64, "b" * 64


def test_pip_format_with_continuations_and_comments() -> None:
    text = f"""# header
# orjson-3.11.5-cp313-...whl
orjson==3.11.5 \\
    --hash=sha256:{A} \\
    --hash=sha256:{B}
    # via something

MarkupSafe[extra] == 3.0.3 --hash=sha256:{B}  # trailing comment
"""
    requirements = parse_lock(text)
    assert [(r.name, r.project, r.version, r.hashes, r.line) for r in requirements] == [
        ("orjson", "orjson", "3.11.5", (A, B), 3),
        ("MarkupSafe", "markupsafe", "3.0.3", (B,), 8),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("orjson==3.11.5\n", "orjson==3.11.5 has no --hash: every requirement needs the sha256"),
        (f"orjson>=3 --hash=sha256:{A}\n", "orjson is not pinned to one version"),
        (f"orjson --hash=sha256:{A}\n", "orjson is not pinned to one version"),
        (f"orjson==3.1 --hash=md5:{A[:32]}\n", "hash algorithm md5 is not supported"),
        ("orjson==3.1 --hash=sha256:abc\n", "is not a sha256 hex digest"),
        (f"orjson==3.1 ; python_version > '3' --hash=sha256:{A}\n", "orjson has an environment marker"),
        (f"--index-url https://example.invalid/simple\norjson==3.1 --hash=sha256:{A}\n", "option --index-url is not supported"),
        (f"orjson==3.1 --hash=sha256:{A}\nORJSON==3.1 --hash=sha256:{B}\n", "ORJSON is already listed at line 1"),
        (f"https://example.invalid/x.whl --hash=sha256:{A}\n", "is not a requirement the rules can lock"),
        ("# nothing\n", "no requirements"),
    ],
)
def test_errors_name_the_problem_and_the_fix(text: str, message: str) -> None:
    with pytest.raises(LockError, match=re.escape(message)):
        parse_lock(text, "requirements.lock")


def test_error_names_the_line() -> None:
    with pytest.raises(LockError, match=r"^requirements\.lock:2: orjson==3\.1 has no --hash"):
        parse_lock(f"a==1 --hash=sha256:{A}\norjson==3.1\n", "requirements.lock")


def test_main_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text(f"orjson==3.11.5 --hash=sha256:{A}\n")
    assert requirements_lock.main([str(lock)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["hashes"] == [A]
    lock.write_text("orjson==3.11.5\n")
    assert requirements_lock.main([str(lock)]) == 1
    assert "has no --hash" in capsys.readouterr().err


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
