"""Tests of how the command-line tools end on an error."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tools import cli


class ToolError(Exception):
    pass


@cli.tool("demo", ToolError, note="nothing was written")
def demo(argv: list[str]) -> int:
    if argv == ["fail"]:
        raise ToolError("the input is bad; fix it")
    if argv == ["interrupt"]:
        raise KeyboardInterrupt
    if argv == ["bug"]:
        raise RuntimeError("a bug")
    return len(argv)


def test_success_returns_mains_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo(["a", "b"]) == 2
    assert capsys.readouterr().err == ""


def test_tool_error_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo(["fail"]) == 1
    assert capsys.readouterr().err == "demo: error: the input is bad; fix it; nothing was written\n"


def test_interrupt_is_one_line_and_exit_130(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo(["interrupt"]) == 130
    assert capsys.readouterr().err == "demo: interrupted; nothing was written\n"


def test_other_exceptions_are_bugs_and_keep_their_traceback() -> None:
    with pytest.raises(RuntimeError, match="a bug"):
        demo(["bug"])


def test_without_note_or_error_classes() -> None:
    @cli.tool("plain")
    def plain() -> int:
        raise KeyboardInterrupt

    assert plain.__name__ == "plain"
    assert plain() == cli.INTERRUPTED_EXIT


def test_as_a_program_the_exit_status_reaches_the_shell() -> None:
    program = textwrap.dedent("""
        from tools import cli

        @cli.tool("prog", ValueError)
        def main() -> int:
            raise ValueError("bad value")

        raise SystemExit(main())
    """)
    environment = {"PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=environment)
    assert (result.returncode, result.stderr) == (1, "prog: error: bad value\n")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
