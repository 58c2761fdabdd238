"""Tests for tools/bench/startup.py's statistics and ordering. The starts themselves chroot into an unpacked
image as root, and are exercised by running the bench."""

from __future__ import annotations

import pytest

from tools.bench import startup


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 11)]
    assert startup.percentile(values, 0.9) == 9.0
    assert startup.percentile([3.0], 0.9) == 3.0
    assert startup.percentile([5.0, 1.0, 3.0], 0.5) == 3.0
    with pytest.raises(ValueError):
        startup.percentile([], 0.9)


def test_startup_stats() -> None:
    stats = startup.startup_stats([40.0, 10.0, 30.0, 20.0])
    assert (stats.median_ms, stats.p90_ms) == (25.0, 40.0)
    assert stats.samples_ms == [40.0, 10.0, 30.0, 20.0]  # in the order measured


def test_interleaving_rotates_the_first_variant() -> None:
    order = list(startup.interleaved_order(["a", "b", "c"], 4))
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b", "a", "b", "c"]
    assert all(order.count(v) == 4 for v in "abc")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
