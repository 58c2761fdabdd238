"""Cold starts of a root's interpreter: each a new process in a fresh private mount namespace, chrooted into
the root, the roots interleaved so drift touches all of them alike."""

from __future__ import annotations

import math
import statistics
import subprocess
import time
from pathlib import Path
from typing import Iterator, Sequence

from tools.bench.console import BenchError
from tools.bench.results import Startup

STARTUP_CODE = "import json, ssl, asyncio, sqlite3"
# What the interpreter sees in the chroot: no .pyc may be written, so every start is like a fresh container's.
STARTUP_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def startup_stats(samples_ms: list[float]) -> Startup:
    return Startup(samples_ms, statistics.median(samples_ms), percentile(samples_ms, 0.9))


def interleaved_order(variants: Sequence[str], runs: int) -> Iterator[str]:
    """Each round runs every variant once, the first one rotating, so drift touches all of them alike."""
    for round_ in range(runs):
        shift = round_ % len(variants)
        yield from (*variants[shift:], *variants[:shift])


def start_once(root: Path, interpreter: str) -> float:
    """Milliseconds for one interpreter start in a fresh private mount namespace chrooted into `root`."""
    command = ["unshare", "--mount", "--propagation", "private", "chroot", str(root), interpreter, "-c", STARTUP_CODE]
    started = time.perf_counter()
    result = subprocess.run(command, env=STARTUP_ENV, capture_output=True, text=True)
    elapsed = (time.perf_counter() - started) * 1000
    if result.returncode != 0:
        raise BenchError(f"{' '.join(command)} failed (exit {result.returncode}): {result.stderr.strip()}")
    return elapsed


def measure_startup(roots: dict[str, Path], interpreter: str, runs: int) -> dict[str, Startup]:
    for root in roots.values():
        start_once(root, interpreter)  # warm the page cache; not counted
    samples: dict[str, list[float]] = {name: [] for name in roots}
    for name in interleaved_order(list(roots), runs):
        samples[name].append(start_once(roots[name], interpreter))
    return {name: startup_stats(values) for name, values in samples.items()}
