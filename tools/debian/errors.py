"""The Debian tools' one error type, and their progress output (to stderr, so stdout stays the result)."""

from __future__ import annotations

import sys


class LockError(Exception):
    """A problem with the input or the mirror, reported as one line without a traceback."""


class NotFound(LockError):
    """The mirror answered that a file does not exist (so another name may be tried)."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)

