"""Timing that is reported, never asserted (chapters 02-05 and the benchmarks).

``median_seconds`` times a call the way the benchmarks need it (warm-up, then the median of
several repeats, so one noisy repeat on a busy machine does not decide the number);
``Stages`` adds up the wall-clock seconds a chapter spends in each of its stages for
``metrics.json`` (``seconds_per_stage``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager

__all__ = ["Stages", "median_seconds", "timed"]


def median_seconds(fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1) -> float:
    """The median wall-clock seconds of ``repeats`` calls of ``fn()`` after ``warmup``
    untimed calls."""
    import numpy as np

    for name, value, low in (("repeats", repeats, 1), ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    """``(fn(), seconds)``: one call and its wall-clock time (for runs too long to repeat;
    warm up once before the first)."""
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


class Stages:
    """Seconds spent per named stage: ``with stages("maps"): ...`` adds to ``stages["maps"]``
    (a stage entered twice adds up); ``dict(stages)`` for the results."""

    def __init__(self):
        self._seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self._seconds[name] = self._seconds.get(name, 0.0) + time.perf_counter() - start

    def __getitem__(self, name: str) -> float:
        return self._seconds[name]

    def keys(self):
        return self._seconds.keys()

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}: {v:.1f} s" for k, v in self._seconds.items())
        return f"Stages({inner})"
