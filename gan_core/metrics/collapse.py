"""Mode collapse, measured two ways the paper observed it by eye (Sec. "128x128 and mode
collapse": the same samples for many epochs, and a sudden exponential rise of both G and D
losses in the curves).

1. Sample diversity: the mean pairwise distance between features of samples drawn from
   different noise vectors, divided by the same quantity on real images. A collapsed G maps
   many z to (nearly) the same image, so the ratio falls towards 0; a healthy G is near 1.
   Features can be Inception pool3 or cheap downsampled pixels (:func:`pixel_features`).
2. Loss signature: the first iteration at which both losses grow by ``factor`` within a
   horizon, relative to their level just before, with the growth rate of log(loss).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from .dynamics import default_window, smooth


# --------------------------------------------------------------------------- diversity
def pixel_features(images: torch.Tensor, size: int = 16) -> np.ndarray:
    """uint8 (N, C, H, W) -> (N, C * size * size) float64 in [0, 1], area-downsampled.

    Averaging to 16x16 keeps global layout (what collapse repeats) and drops pixel noise.
    """
    x = images.float().div(255.0)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = torch.nn.functional.adaptive_avg_pool2d(x, size)
    return x.flatten(1).double().numpy()


def mean_pairwise_distance(feats: np.ndarray) -> float:
    """Mean Euclidean distance over all pairs i < j of the rows of ``feats`` (N >= 2)."""
    x = np.asarray(feats, dtype=np.float64)
    n = len(x)
    if n < 2:
        raise ValueError(f"pairwise distance needs at least 2 samples, got {n}")
    sq = (x * x).sum(1)
    d2 = np.clip(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0, None)
    iu = np.triu_indices(n, k=1)
    return float(np.sqrt(d2[iu]).mean())


def nearest_neighbour_distances(feats: np.ndarray) -> np.ndarray:
    """Distance of each row to its nearest other row."""
    x = np.asarray(feats, dtype=np.float64)
    sq = (x * x).sum(1)
    d2 = np.clip(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0, None)
    np.fill_diagonal(d2, np.inf)
    return np.sqrt(d2.min(1))


def diversity(sample_feats: np.ndarray, real_feats: np.ndarray | None = None,
              duplicate_tol: float = 0.02) -> dict[str, float]:  # fmt: skip
    """Diversity of samples, relative to real data when given.

    ``diversity``: mean pairwise distance of the samples; ``diversity_ratio``: that over the
    real images' (equal counts are best: use as many real images as samples);
    ``duplicate_fraction``: share of samples whose nearest other sample is closer than
    ``duplicate_tol`` times the real (else sample) mean pairwise distance.
    """
    mpd = mean_pairwise_distance(sample_feats)
    out = {"diversity": mpd}
    scale = mpd
    if real_feats is not None:
        real = mean_pairwise_distance(real_feats)
        out["diversity_real"] = real
        out["diversity_ratio"] = mpd / real if real > 0 else float("nan")
        scale = real
    nn = nearest_neighbour_distances(sample_feats)
    out["duplicate_fraction"] = float((nn < duplicate_tol * scale).mean()) if scale > 0 else 1.0
    return out


# --------------------------------------------------------------------------- loss signature
def loss_explosion(
    steps: Sequence[int] | np.ndarray,
    loss_g: Sequence[float] | np.ndarray,
    loss_d: Sequence[float] | np.ndarray,
    *,
    factor: float = 3.0,
    window: int | None = None,
    horizon: int | None = None,
    floor: float = 1e-3,
) -> dict[str, float]:
    """Onset and strength of a simultaneous exponential rise of the G and D losses.

    Both losses are smoothed (centred rolling median over ``window`` points, default 1 % of
    the log, at least 5). At point i the baseline of each loss is the median of its smoothed
    values over the ``horizon`` points before i (default 4 * window), floored at ``floor`` so
    that a near-zero loss cannot make any wobble look like growth. The collapse onset is the
    first point i at which both smoothed losses, ``horizon`` points later, exceed ``factor``
    times their baselines; the onset is the first point in [i, i + horizon] at which both
    exceed 1.5 times the baselines at i. Reported:

      collapse_onset    the onset step (NaN when there is none)
      collapse_strength min over G and D of (max smoothed loss after i) / baseline
      collapse_rate     mean slope of log(smoothed loss) of G and D over [onset, onset + horizon],
                        per 1000 iterations (an exponential rise has a constant positive slope)
      collapse_detected 1.0 / 0.0
    """
    steps = np.asarray(steps, dtype=np.float64)
    g = np.asarray(loss_g, dtype=np.float64)
    d = np.asarray(loss_d, dtype=np.float64)
    keep = np.isfinite(g) & np.isfinite(d)
    steps, g, d = steps[keep], g[keep], d[keep]
    n = len(steps)
    window = window or default_window(n)
    horizon = max(1, horizon or 4 * window)
    none = {"collapse_onset": float("nan"), "collapse_strength": float("nan"),
            "collapse_rate": float("nan"), "collapse_detected": 0.0}  # fmt: skip
    if n < 2 * horizon + 1:
        return none
    sg, sd = smooth(g, window), smooth(d, window)
    # trailing baselines: median of the horizon points before i
    base_g = pd.Series(sg).rolling(horizon).median().shift(1).to_numpy()
    base_d = pd.Series(sd).rolling(horizon).median().shift(1).to_numpy()
    base_g, base_d = np.maximum(base_g, floor), np.maximum(base_d, floor)
    ahead = np.arange(n) + horizon
    valid = ahead < n
    idx = np.arange(n)[valid]
    rise = (sg[ahead[valid]] >= factor * base_g[valid]) & (sd[ahead[valid]] >= factor * base_d[valid])
    hits = idx[rise & np.isfinite(base_g[valid]) & np.isfinite(base_d[valid])]
    if len(hits) == 0:
        return none
    i = int(hits[0])
    # The hit says "within the next horizon the losses tripled"; the onset is where both first
    # leave their baselines (1.5x) inside that horizon.
    left = (sg[i : i + horizon + 1] > 1.5 * base_g[i]) & (sd[i : i + horizon + 1] > 1.5 * base_d[i])
    onset = i + int(np.argmax(left)) if left.any() else i
    strength = min(sg[i:].max() / base_g[i], sd[i:].max() / base_d[i])
    j = min(onset + horizon, n - 1)
    span = max(steps[j] - steps[onset], 1.0)
    rates = [
        (np.log(max(s[j], floor)) - np.log(max(s[onset], floor))) / span * 1000.0
        for s in (sg, sd)
    ]
    return {
        "collapse_onset": float(steps[onset]),
        "collapse_strength": float(strength),
        "collapse_rate": float(np.mean(rates)),
        "collapse_detected": 1.0,
    }
