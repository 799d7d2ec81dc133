"""FID extrapolated to infinitely many samples: FID_inf (Chong & Forsyth, "Effectively Unbiased
FID and Inception Score and where to find them", CVPR 2020). Fitted far below the feature
dimension (2,048), as a CPU sweep must (64-256 samples), it removes only part of the
sample-size bias (roughly 15-40 %; docs/quick-reproduction.md measured 38 %): compare FIDs at equal N.

FID computed from N generated samples is biased upwards, and the bias depends on the generator
as well as on N, so FIDs at different N (or of different models at a small N) do not compare.
Chong & Forsyth show that FID_N is, to a very good approximation, linear in 1/N:

    FID_N = FID_inf + k / N

so FID at several N, each from a random subset of one set of generated features, fitted by
least squares in 1/N, gives FID_inf as the intercept. They fit 15 N between 5k and 50k; a CPU
sweep cannot afford 50k Inception passes, so the default here fits ``DEFAULT_POINTS`` N evenly
spaced in 1/N between N_max / 4 and N_max (all the samples given). How well that holds at a few
hundred samples is measured, not assumed: docs/quick-reproduction.md compares it with FID at 2,048.

Pure numpy over features (the 2048-d Inception pool3 vectors of xraygan.metrics.features);
the reference is either its statistics (mean, covariance) or its raw features. The Fréchet
distance is the same as xraygan.metrics.frechet computes, taken through the n x n matrix
Xc S_r Xc^T / (n - 1) of the (centred) subset Xc: it has the nonzero eigenvalues of S_g S_r,
so tr((S_g S_r)^(1/2)) is a sum of square roots of n eigenvalues, and X S_r is computed once
for all subsets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla

DEFAULT_POINTS = 8
MIN_FRACTION = 0.25  # smallest subset, as a fraction of the generated samples
MIN_SAMPLES = 16  # below this a subset's covariance says too little to fit


@dataclass(frozen=True)
class FidInfinity:
    """The extrapolated FID and the fit behind it."""

    value: float  # FID_inf: the intercept of FID_N against 1/N
    slope: float  # k: the bias at N samples is about k / N
    ns: tuple[int, ...]  # the subset sizes fitted
    fids: tuple[float, ...]  # FID at each of them
    fid_at_max: float  # FID of all the generated samples (the largest N)
    r2: float  # of the linear fit (1 = exactly linear in 1/N)

    def to_dict(self) -> dict[str, Any]:
        return {"fid_infinity": self.value, "fid_infinity_slope": self.slope,
                "fid_infinity_r2": self.r2, "fid_infinity_n_max": max(self.ns),
                "fid_infinity_n_min": min(self.ns), "fid_infinity_points": len(self.ns)}


def _reference(real: Any) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) float64 from a FeatureStats-like object (``.mean``, ``.cov``), a
    (mean, cov) pair, or raw features (n, d)."""
    if hasattr(real, "mean") and hasattr(real, "cov") and not isinstance(real, np.ndarray):
        return np.asarray(real.mean, np.float64), np.asarray(real.cov, np.float64)
    if isinstance(real, tuple) and len(real) == 2:
        return np.asarray(real[0], np.float64), np.asarray(real[1], np.float64)
    x = np.asarray(real, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"reference features: expected (n >= 2, d), got shape {x.shape}")
    return x.mean(0), np.cov(x, rowvar=False)


def default_ns(n_max: int, points: int = DEFAULT_POINTS,
               min_fraction: float = MIN_FRACTION) -> tuple[int, ...]:
    """``points`` subset sizes evenly spaced in 1/N from n_max * min_fraction to n_max."""
    if n_max < MIN_SAMPLES:
        raise ValueError(f"FID_inf: need at least {MIN_SAMPLES} generated samples, got {n_max}")
    n_min = max(MIN_SAMPLES, int(n_max * min_fraction))
    inv = np.linspace(1.0 / n_min, 1.0 / n_max, points)
    return tuple(sorted({int(round(1.0 / v)) for v in inv}))


class _Fid:
    """FID of row subsets of ``gen`` against fixed reference statistics."""

    def __init__(self, mu_r: np.ndarray, sigma_r: np.ndarray, gen: np.ndarray) -> None:
        self.mu_r = mu_r
        self.tr_r = float(np.trace(sigma_r))
        self.gen = gen
        self.proj = gen @ ((sigma_r + sigma_r.T) / 2)  # (N, d): X S_r, once for every subset

    def __call__(self, rows: np.ndarray) -> float:
        x = self.gen[rows]
        n = len(x)
        mean = x.mean(0)
        xc = x - mean
        q = self.proj[rows] - self.proj[rows].mean(0)  # = Xc S_r
        m = (q @ xc.T) / (n - 1)  # (n, n): nonzero eigenvalues of S_g S_r
        ev = sla.eigvalsh((m + m.T) / 2, check_finite=False)
        tr_sqrt = float(np.sqrt(np.clip(ev, 0.0, None)).sum())
        tr_g = float((xc * xc).sum() / (n - 1))
        diff = mean - self.mu_r
        return max(float(diff @ diff) + tr_g + self.tr_r - 2.0 * tr_sqrt, 0.0)


def fid_of_features(real: Any, gen: np.ndarray) -> float:
    """FID of generated features (n, d) against the reference (statistics or features)."""
    mu_r, sigma_r = _reference(real)
    g = _check_gen(gen, len(mu_r))
    return _Fid(mu_r, sigma_r, g)(np.arange(len(g)))


def _check_gen(gen: np.ndarray, dims: int) -> np.ndarray:
    g = np.asarray(gen, np.float64)
    if g.ndim != 2 or g.shape[1] != dims:
        raise ValueError(f"generated features: expected (n, {dims}), got shape {g.shape}")
    if not np.isfinite(g).all():
        raise ValueError("generated features contain NaN or infinity")
    return g


def fid_infinity(real: Any, gen: np.ndarray, ns: Sequence[int] | None = None, *,
                 reps: int = 1, seed: int = 0) -> FidInfinity:
    """FID_inf of generated features ``gen`` (N, d) against ``real`` (FeatureStats, a
    (mean, cov) pair, or raw features).

    ``ns``: subset sizes (default :func:`default_ns` of N); each FID_n is the mean over
    ``reps`` random subsets of n rows drawn without replacement (one subset at n = N: all of
    them). Seeded: the same features give the same value.
    """
    mu_r, sigma_r = _reference(real)
    g = _check_gen(gen, len(mu_r))
    ns = tuple(sorted(set(int(n) for n in (ns or default_ns(len(g))))))
    if len(ns) < 2:
        raise ValueError(f"FID_inf: need at least 2 subset sizes to extrapolate, got {ns}")
    if ns[0] < 2 or ns[-1] > len(g):
        raise ValueError(f"FID_inf: subset sizes must lie in [2, {len(g)}], got {ns}")
    fid = _Fid(mu_r, sigma_r, g)
    rng = np.random.default_rng(seed)
    fids = []
    for n in ns:
        if n == len(g):
            fids.append(fid(np.arange(n)))
        else:
            fids.append(float(np.mean([fid(rng.choice(len(g), n, replace=False))
                                       for _ in range(max(1, reps))])))
    x = 1.0 / np.asarray(ns, np.float64)
    y = np.asarray(fids)
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (intercept + slope * x)
    ss = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss if ss > 0 else 1.0
    at_max = fids[-1] if ns[-1] == len(g) else fid(np.arange(len(g)))
    return FidInfinity(float(intercept), float(slope), ns, tuple(fids), float(at_max), r2)
