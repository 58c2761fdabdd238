"""The launchers' shell quoting: every word a rule gives reaches the program unchanged, whatever it holds."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

LAUNCHER = Path("tools/private/tests/launcher_words.sh")
EXPECTED = Path("tools/private/tests/launcher_words.json")


def test_every_word_arrives_unchanged() -> None:
    words = json.loads(EXPECTED.read_text())
    assert any("'" in word for word in words) and "" in words, "the test words must include a quote and an empty word"
    result = subprocess.run(["sh", str(LAUNCHER), "run time word"], capture_output=True, text=True, check=True)
    assert result.stdout == "".join(f"[{word}]\n" for word in [*words, "run time word"])


def test_the_launcher_quotes_each_word_in_single_quotes() -> None:
    text = LAUNCHER.read_text()
    assert "'it'\\''s'" in text, text


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
