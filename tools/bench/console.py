"""What the benchmark tells its user while it runs: progress lines on stderr, and the one error it stops on."""

from __future__ import annotations

import sys
import time


class BenchError(Exception):
    """Something the benchmark cannot work around; the message says what."""


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
