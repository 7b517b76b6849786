"""What the benchmarks share: the machine description (CPU, cores, versions, load) and
repeated timing (median, min and max of repeats)."""
from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np

from chips.engines.paths import cpu_model


def load_avg() -> list[float] | None:
    """1, 5 and 15 minute load averages (runnable processes), None where unavailable."""
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def machine_info() -> dict:
    import numba
    import torch
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    load = load_avg()
    return {"cpu_model": cpu_model(), "cores_logical": os.cpu_count(), "cores_usable": usable,
            "machine": platform.machine(), "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba.__version__, "torch": torch.__version__,
            "load_avg_1min": load[0] if load else None, "load_avg_1_5_15min": load}


def timed(fn, repeat: int, sample_s: float, setup=None) -> tuple[float, float]:
    """(best, median) seconds per call of ``fn`` over ``repeat`` samples; each sample runs
    ``fn`` n times (n calibrated so a sample lasts about ``sample_s``); ``setup`` runs untimed
    before each sample."""
    if setup:
        setup()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    n = max(1, int(sample_s / one))
    per_call = []
    for _ in range(repeat):
        if setup:
            setup()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        per_call.append((time.perf_counter() - t0) / n)
    return min(per_call), statistics.median(per_call)


def repeats(fn, repeat: int, warmup: int = 1) -> tuple[dict, object]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeat`` times: ({median_s, min_s, max_s,
    repeat}, the last result)."""
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return figure(times), out


def figure(times: list[float]) -> dict:
    """Median, min and max of repeated wall times (seconds)."""
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "repeat": len(times)}


def ratio(a: dict, b: dict) -> float:
    """Ratio of two figures' medians."""
    return a["median_s"] / b["median_s"]
