"""Generated vs real anatomy: how far apart the distributions of measured quantities lie.

Per quantity (the CTR and the total lung area by default), over the images where it could be
measured: the Wasserstein-1 distance (the mean shift needed to turn one distribution into the
other, in the quantity's own units) and the two-sample Kolmogorov-Smirnov statistic (the
largest gap between the two CDFs, in [0, 1]), each with a percentile bootstrap interval
(both sets resampled independently). Both distances are biased upwards at small samples (they
are >= 0 and noisy), so ``anat_<q>_w1_null`` gives the same W1 between two random halves of
the real set: a generator is anatomically indistinguishable at this sample size when its W1
is near that floor. The share of implausible generated images (no measurable heart between
two lungs: xraygan.metrics.anatomy) is reported beside, real images' share too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

COMPARED = ("ctr", "lung_area")
BOOTSTRAP = 200  # resamples: the interval's ends move by ~1/sqrt(200) of their spread
CONFIDENCE = 0.95
MIN_MEASURED = 5  # images with the quantity measured, per side, to compare distributions


def w1(a: np.ndarray, b: np.ndarray) -> float:
    return float(stats.wasserstein_distance(a, b))


def ks(a: np.ndarray, b: np.ndarray) -> float:
    return float(stats.ks_2samp(a, b).statistic)


def bootstrap_interval(fn, a: np.ndarray, b: np.ndarray, n: int = BOOTSTRAP, seed: int = 0,
                       confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of ``fn(a*, b*)`` over ``n`` independent resamples of each side."""
    rng = np.random.default_rng(seed)
    vals = [fn(a[rng.integers(0, len(a), len(a))], b[rng.integers(0, len(b), len(b))])
            for _ in range(n)]
    tail = (1.0 - confidence) / 2 * 100
    lo, hi = np.percentile(vals, [tail, 100 - tail])
    return float(lo), float(hi)


def anatomy_distances(generated: Mapping[str, np.ndarray], real: Mapping[str, np.ndarray],
                      quantities: Sequence[str] = COMPARED, *, n_boot: int = BOOTSTRAP,
                      seed: int = 0) -> dict[str, float]:
    """Flat dict: ``anat_<q>_{w1,ks}`` with ``_lo``/``_hi``, ``anat_<q>_w1_null``,
    ``anat_<q>_mean`` and ``anat_<q>_real_mean`` per quantity, ``anat_implausible`` and
    ``anat_real_implausible`` (shares), ``anat_n`` and ``anat_real_n``. Inputs are
    measure_anatomy outputs; a quantity measured on fewer than MIN_MEASURED images of a side
    gets NaN distances."""
    out: dict[str, float] = {
        "anat_implausible": float(1.0 - np.mean(generated["plausible"])),
        "anat_real_implausible": float(1.0 - np.mean(real["plausible"])),
        "anat_n": float(len(generated["plausible"])),
        "anat_real_n": float(len(real["plausible"])),
    }
    for q in quantities:
        a = generated[q][np.isfinite(generated[q])]
        b = real[q][np.isfinite(real[q])]
        keys = [f"anat_{q}_{s}" for s in ("w1", "w1_lo", "w1_hi", "ks", "ks_lo", "ks_hi", "w1_null")]
        out[f"anat_{q}_mean"] = float(a.mean()) if len(a) else float("nan")
        out[f"anat_{q}_real_mean"] = float(b.mean()) if len(b) else float("nan")
        if len(a) < MIN_MEASURED or len(b) < MIN_MEASURED:
            out.update(dict.fromkeys(keys, float("nan")))
            continue
        out[keys[0]] = w1(a, b)
        out[keys[1]], out[keys[2]] = bootstrap_interval(w1, a, b, n_boot, seed)
        out[keys[3]] = ks(a, b)
        out[keys[4]], out[keys[5]] = bootstrap_interval(ks, a, b, n_boot, seed + 1)
        perm = np.random.default_rng(seed + 2).permutation(len(b))
        half = len(b) // 2
        out[keys[6]] = w1(b[perm[:half]], b[perm[half:]])
    return out
