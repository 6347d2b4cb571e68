"""Timing helpers shared by the benchmark scripts: warm-up, repetitions, median and range, a table."""
from __future__ import annotations

import statistics
import time
from typing import Callable


def measure(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> list[float]:
    """Seconds of `repeat` calls of fn() after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def row(name: str, times: list[float], **extra) -> dict:
    """A table row: median, min and max seconds plus any extra columns (target, ratio, ...)."""
    return {"case": name, "median_s": statistics.median(times), "min_s": min(times),
            "max_s": max(times), "runs": len(times), **extra}


def print_table(rows: list[dict], title: str = "") -> None:
    """Print rows as an aligned text table (floats with 4 significant digits)."""
    if title:
        print(f"\n{title}")
    cols = list(dict.fromkeys(k for r in rows for k in r))
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
    cells = [[fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))
