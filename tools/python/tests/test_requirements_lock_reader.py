"""Tests for tools/python/requirements_lock_reader.py: what a lock may hold, and the errors for what it may not."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from tools.python import requirements_lock_reader as requirements_lock
from tools.python.requirements_lock_reader import LockError, parse_lock

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
        (f"orjson==3.1 ; python_version > '3' --hash=sha256:{A}\n", "orjson has the environment marker \"python_version > '3'\""),
        (f'orjson==3.1 ; platform_machine == "riscv" --hash=sha256:{A}\n', "the only marker it may hold"),
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
    assert json.loads(capsys.readouterr().out)["requirements"][0]["hashes"] == [A]
    lock.write_text("orjson==3.11.5\n")
    assert requirements_lock.main([str(lock)]) == 1
    assert "has no --hash" in capsys.readouterr().err


def test_machine_markers_let_a_project_differ_per_architecture() -> None:
    requirements = parse_lock(
        f'pydantic==2.1 ; platform_machine == "x86_64" --hash=sha256:{A}\n'
        f'pydantic==1.10 ; platform_machine == "aarch64" --hash=sha256:{B}\n'
    )
    assert [(r.version, r.machines) for r in requirements] == [("2.1", ("x86_64",)), ("1.10", ("aarch64",))]
    with pytest.raises(LockError, match="already listed at line 1"):
        parse_lock(f'a==2 ; platform_machine == "x86_64" --hash=sha256:{A}\na==1 --hash=sha256:{B}\n')


def test_a_changed_input_makes_the_lock_stale_with_its_update_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "requirements.in"
    source.write_text("orjson\n")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    lock = tmp_path / "requirements.lock"
    lock.write_text(f"# Written by tools/python/requirements_lock_writer.py; do not edit. Update: tools/bazel run //app:requirements.update\n"
                    f"# input: requirements.in sha256={digest}\n# wheelhouse: wheelhouse\n"
                    f"orjson==3.11.5 --hash=sha256:{A}\n")
    (tmp_path / "wheelhouse").mkdir()
    (tmp_path / "wheelhouse" / "w-1-py3-none-any.whl").write_bytes(b"wheel")
    assert requirements_lock.main([str(lock)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["input"] == str(source)
    assert out["wheelhouse"] == [{"filename": "w-1-py3-none-any.whl", "path": str((tmp_path / "wheelhouse" / "w-1-py3-none-any.whl").resolve()),
                                  "sha256": hashlib.sha256(b"wheel").hexdigest()}]
    source.write_text("orjson\nfastapi\n")
    assert requirements_lock.main([str(lock)]) == 1
    error = capsys.readouterr().err
    assert "requirements.lock is stale: requirements.in changed since it was locked" in error
    assert error.rstrip().endswith("update it: tools/bazel run //app:requirements.update")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
