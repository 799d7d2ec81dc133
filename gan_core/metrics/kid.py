"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs").

KID is the squared MMD between two feature sets under the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3, with the unbiased estimator (diagonal terms left out). Unlike FID
it has no bias from the sample count, so it is the metric to read when only a few hundred
samples are affordable. As in the reference implementations (stylegan2-ada's
metrics/kernel_inception_distance.py), the estimate is averaged over random subsets.

Subsets are drawn without replacement and hold at most half of the smaller set, so that they
differ from each other: a subset as large as the set is the set itself, every draw gives the
same number and the spread over subsets reads 0 (``0.218028 +- 0.000000``).
Below ``MIN_SUBSET_SAMPLES`` images per set there are not enough samples for distinct subsets:
the whole sets give one unbiased estimate and no spread (``std`` is NaN, printed as nothing).
"""

from __future__ import annotations

import numpy as np


def polynomial_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of feature sets x (m, d) and y (n, d) under (x.y / d + 1)^3."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    m, n, d = len(x), len(y), x.shape[1]
    if m < 2 or n < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {m} and {n}")
    # Unbiased: the within-set means leave out k(x_i, x_i) (_mmd2_from_kernels).
    return _mmd2_from_kernels((x @ x.T / d + 1.0) ** 3, (y @ y.T / d + 1.0) ** 3,
                              (x @ y.T / d + 1.0) ** 3)


MIN_SUBSET_SAMPLES = 100  # per set, for subsets of 50 that differ from each other


def kid_subset_size(n1: int, n2: int, max_subset_size: int = 1000) -> int:
    """Images per KID subset: half the smaller set, at most ``max_subset_size``; 0 when the
    sets are too small for distinct subsets (then KID is one estimate on the whole sets)."""
    n = min(n1, n2)
    return 0 if n < MIN_SUBSET_SAMPLES else min(max_subset_size, n // 2)


def kernel_inception_distance(
    feats1: np.ndarray,
    feats2: np.ndarray,
    num_subsets: int = 100,
    max_subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID of two feature sets: (mean, std) over ``num_subsets`` random subsets of equal size
    drawn without replacement (:func:`kid_subset_size`), or (one estimate, NaN) for small sets."""
    feats1 = np.asarray(feats1, np.float64)
    feats2 = np.asarray(feats2, np.float64)
    size = kid_subset_size(len(feats1), len(feats2), max_subset_size)
    if size == 0:
        return polynomial_mmd2_unbiased(feats1, feats2), float("nan")
    rng = np.random.default_rng(seed)
    draws = [(rng.choice(len(feats1), size, replace=False),
              rng.choice(len(feats2), size, replace=False)) for _ in range(num_subsets)]
    n1, n2 = len(feats1), len(feats2)
    if (n1 + n2) ** 2 > KERNEL_CACHE_ENTRIES:
        values = np.array([polynomial_mmd2_unbiased(feats1[i], feats2[j]) for i, j in draws])
    else:
        # Every subset's kernel entries are entries of the whole sets' kernels: three products
        # in all instead of three per subset (a hundred small products took ~9 s of a quick
        # trial's evaluation; these take ~0.1 s). The same subsets, the same estimator.
        d = feats1.shape[1]
        kxx = (feats1 @ feats1.T / d + 1.0) ** 3
        kyy = (feats2 @ feats2.T / d + 1.0) ** 3
        kxy = (feats1 @ feats2.T / d + 1.0) ** 3
        values = np.array([_mmd2_from_kernels(kxx[np.ix_(i, i)], kyy[np.ix_(j, j)],
                                              kxy[np.ix_(i, j)]) for i, j in draws])
    return float(values.mean()), float(values.std())


KERNEL_CACHE_ENTRIES = 4096**2  # (n1 + n2)^2 float64 kernel entries at most (128 MiB)


def _mmd2_from_kernels(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray) -> float:
    m, n = len(kxx), len(kyy)
    term_xx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    term_yy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(term_xx + term_yy - 2.0 * kxy.mean())
