"""Small statistics for reports: means with t confidence intervals, interval overlap, and
table-cell formatting (growth-law fits live in gan_core.memory.fit).

Pure functions over arrays; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class MeanCI:
    """Mean of n finite values and the half-width of its t confidence interval
    (NaN for n < 2: one run has no interval)."""

    mean: float
    half: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half if self.n >= 2 else self.mean

    @property
    def high(self) -> float:
        return self.mean + self.half if self.n >= 2 else self.mean


def mean_ci(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> MeanCI:
    """Mean and t-distribution CI half-width: t_{(1+c)/2, n-1} * s / sqrt(n), s with ddof=1.

    Seeds are a sample of the runs a configuration could give, hence the sample std (ddof=1)
    and Student's t (few seeds: the normal quantile would be too narrow).
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return MeanCI(math.nan, math.nan, 0)
    if n == 1:
        return MeanCI(float(x[0]), math.nan, 1)
    t = stats.t.ppf((1 + confidence) / 2, n - 1)
    return MeanCI(float(x.mean()), float(t * x.std(ddof=1) / math.sqrt(n)), n)


def intervals_overlap(a: MeanCI, b: MeanCI) -> bool:
    """True when the two intervals share a point (a single run's interval is its value)."""
    return a.low <= b.high and b.low <= a.high


def fmt(value: object, digits: int = 3) -> str:
    """A table cell: numbers to ``digits`` significant-ish decimals, NaN/None as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return "—"
        if abs(v) >= 1e5:
            return f"{v:.{digits}g}"
        if round(v, digits) == 0:  # no "-0.000", and no 1e-7 noise of a fit in golden files
            v = 0.0
        return f"{v:.{digits}f}"
    return str(value)


def fmt_ci(ci: MeanCI, digits: int = 3) -> str:
    """``mean`` for one run, ``mean ± half`` for several."""
    if ci.n >= 2:
        return f"{fmt(ci.mean, digits)} ± {fmt(ci.half, digits)}"
    return fmt(ci.mean, digits)
