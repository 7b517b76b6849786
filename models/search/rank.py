"""Rank correlation of a training-free score with trained accuracy (seed ``autost`` Table 1):
Kendall's tau-b and Spearman's rho, with percentile bootstrap confidence intervals.

The bootstrap resamples architectures with replacement (``n_boot`` times, numpy generator
seeded ``seed``) and recomputes both coefficients; resamples in which either variable is
constant have no coefficient and are left out (their number is reported). The interval is the
(alpha/2, 1 - alpha/2) percentile range of the rest.
"""
from __future__ import annotations

import numpy as np
from scipy import stats


def _taus(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    return (float(stats.kendalltau(x, y).statistic),
            float(stats.spearmanr(x, y).statistic))


def rank_correlation(score, accuracy, *, n_boot: int = 2000, alpha: float = 0.05,
                     seed: int = 0) -> dict:
    """Kendall and Spearman coefficients of ``score`` vs ``accuracy`` (equal-length sequences
    of at least 3 finite numbers) with bootstrap intervals: {"n", "kendall", "kendall_ci",
    "spearman", "spearman_ci", "n_boot", "n_boot_undefined"}."""
    x = np.asarray(score, dtype=np.float64)
    y = np.asarray(accuracy, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"score and accuracy must be 1-D of equal length, got {x.shape} and "
                         f"{y.shape}")
    if len(x) < 3:
        raise ValueError(f"rank correlation needs at least 3 architectures, got {len(x)}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("score and accuracy must be finite")
    if n_boot < 1 or not 0 < alpha < 1:
        raise ValueError(f"need n_boot >= 1 and 0 < alpha < 1, got {n_boot}, {alpha}")
    kendall, spearman = _taus(x, y)
    rng = np.random.default_rng(seed)
    boot = np.array([_taus(x[i], y[i]) for i in rng.integers(0, len(x), (n_boot, len(x)))])
    ok = ~np.isnan(boot).any(axis=1)
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    ci = (np.percentile(boot[ok], q, axis=0) if ok.any()
          else np.full((2, 2), np.nan))
    return {"n": int(len(x)), "kendall": kendall, "kendall_ci": [float(ci[0, 0]),
                                                                 float(ci[1, 0])],
            "spearman": spearman, "spearman_ci": [float(ci[0, 1]), float(ci[1, 1])],
            "n_boot": int(n_boot), "n_boot_undefined": int((~ok).sum())}


__all__ = ["rank_correlation"]
