"""Precision and recall (Kynkäänniemi et al., NeurIPS 2019) and density and coverage (Naeem et
al., ICML 2020) of generated against real features, exactly as the reference ``prdc`` package
(clovaai/generative-evaluation-prdc) defines them, with chunked distances (knn.py):

  * the k-NN radius of a point is its distance to its k-th nearest neighbour in its own set;
  * precision: share of generated points inside the k-NN ball of some real point (fidelity);
  * recall: share of real points inside the k-NN ball of some generated point (diversity);
  * density: generated points' mean count of real balls containing them, divided by k
    (1 on average when both sets come from one distribution; above 1 for samples crowding
    dense real regions);
  * coverage: share of real points whose ball contains at least one generated point (the
    robust diversity measure: a collapsed generator covers almost nothing).

Balls are open (``d < radius``), as in the reference. One pass over real-vs-generated row
blocks reduces all four; the real features can come from the FID statistics cache.
"""

from __future__ import annotations

import numpy as np

from .knn import BUDGET_BYTES, distance_blocks, kth_neighbour_radii

DEFAULT_K = 5  # Naeem et al.'s and Kynkäänniemi et al.'s choice


def prdc(real: np.ndarray, fake: np.ndarray, k: int = DEFAULT_K, *,
         budget_bytes: int = BUDGET_BYTES) -> dict[str, float]:  # fmt: skip
    """Precision, recall, density and coverage of ``fake`` (M, D) against ``real`` (N, D)."""
    real = np.asarray(real, np.float64)
    fake = np.asarray(fake, np.float64)
    if len(real) <= k or len(fake) <= k:
        raise ValueError(f"precision/recall need more than k={k} samples per set, got "
                         f"{len(real)} real and {len(fake)} generated")
    r_real = kth_neighbour_radii(real, k, budget_bytes=budget_bytes)
    r_fake = kth_neighbour_radii(fake, k, budget_bytes=budget_bytes)
    in_real_ball = np.zeros(len(fake), dtype=bool)  # precision
    balls_per_fake = np.zeros(len(fake), dtype=np.int64)  # density
    recalled = np.zeros(len(real), dtype=bool)
    covered = np.zeros(len(real), dtype=bool)
    for start, d in distance_blocks(real, fake, budget_bytes=budget_bytes):  # (rows, M)
        rr = r_real[start : start + len(d), None]
        inside = d < rr
        in_real_ball |= inside.any(axis=0)
        balls_per_fake += inside.sum(axis=0)
        recalled[start : start + len(d)] = (d < r_fake[None, :]).any(axis=1)
        covered[start : start + len(d)] = d.min(axis=1) < rr[:, 0]
    return {
        "precision": float(in_real_ball.mean()),
        "recall": float(recalled.mean()),
        "density": float(balls_per_fake.mean() / k),
        "coverage": float(covered.mean()),
        "prdc_k": k,
    }
