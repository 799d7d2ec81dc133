"""Does G hand back its training images? Nearest neighbours and the data-copying test.

Three sets: T (the images G was trained on), H (held-out real images of the same source, never
trained on) and G (generated). Each is compared in two spaces: Inception pool3 features and
downsampled pixels (:func:`pixel_space`, 16x16 grey levels in [0, 1]), the second catching
copies that Inception would call merely "similar".

Per generated image: the distance to its nearest training image, d(g, T), and to its nearest
held-out image, d(g, H). Held-out images give the yardstick: d(h, T) is how close an
independent real image sits to the training set.

The data-copying test of Meehan, Chaudhuri & Dasgupta (AISTATS 2020, "A non-parametric test to
detect data-copying in generative models"): the training set is partitioned into cells
(k-means on T, in a fixed 32-d random projection); in each cell pi the Mann-Whitney U statistic compares the generated
distances d(g, T) with the held-out distances d(h, T), standardised to

    Z_U(pi) = (U - m n / 2) / sqrt(m n (m + n + 1) / 12),  U = #{(g, h): d(g, T) > d(h, T)}

(m generated and n held-out images in the cell, ties counted 1/2), and
C_T = sum_pi P_n(pi) Z_U(pi) over the cells holding at least ``MIN_CELL`` of each (weights P_n:
the held-out share, renormalised over those cells). C_T near 0: G is as far from T as fresh
data are; C_T << 0: G sits closer to T than fresh data do, i.e. it copies (Meehan et al.'s
sign); C_T >> 0: G underfits. Decision rule here: **copying if C_T < -3** (a three-sigma
departure of the pooled z-score towards the training set).

A simpler companion number, the copy fraction: the share of generated images whose d(g, T) is
below the 5th percentile of the held-out d(h, T). Data from the real distribution give about
0.05; a generator that returns training images gives 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.cluster.vq import kmeans2
from scipy.stats import rankdata

from ..lazy import lazy_module
from .knn import nearest

torch = lazy_module("torch")  # the claims read this module's constants without torch

CT_THRESHOLD = -3.0  # copying if C_T < this
COPY_QUANTILE = 0.05  # the copy fraction's yardstick: this quantile of d(h, T)
MIN_CELL = 5  # generated and held-out images a cell needs to enter C_T
MAX_CELLS = 10
PIXEL_SIZE = 16  # side of the downsampled pixel space


def pixel_space(images: torch.Tensor, size: int = PIXEL_SIZE) -> np.ndarray:
    """uint8 (N, C, H, W) -> (N, size*size) float64 grey levels in [0, 1] (area average)."""
    x = images.float().mean(1, keepdim=True) / 255.0
    if x.shape[-1] > size:
        x = torch.nn.functional.adaptive_avg_pool2d(x, size)
    return x.flatten(1).double().numpy()


def z_mann_whitney(a: np.ndarray, b: np.ndarray) -> float:
    """Standardised U of ``a`` against ``b`` (positive: a tends to be larger)."""
    m, n = len(a), len(b)
    ranks = rankdata(np.concatenate([a, b]))  # average ranks: ties count 1/2
    u = ranks[:m].sum() - m * (m + 1) / 2
    return float((u - m * n / 2) / np.sqrt(m * n * (m + n + 1) / 12))


CELL_DIMS = 32  # k-means runs on a random projection of this many dimensions


def _projection(dims: int, seed: int) -> np.ndarray:
    """A fixed Gaussian projection to CELL_DIMS dimensions (identity when already small).
    Cells are only a partition of the space: any fixed partition keeps C_T valid, and k-means
    on 32 dimensions costs a fraction of a second where 2048 dimensions cost seconds."""
    if dims <= CELL_DIMS:
        return np.eye(dims)
    return np.random.default_rng([seed, dims]).standard_normal((dims, CELL_DIMS)) / np.sqrt(CELL_DIMS)


def _cells(train: np.ndarray, n_cells: int, seed: int) -> np.ndarray:
    """k-means centroids of the (projected) training points (k-means++ start, seeded)."""
    if n_cells <= 1:
        return train.mean(0, keepdims=True)
    centroids, _ = kmeans2(train, n_cells, minit="++", seed=seed)
    return centroids


def copying_statistic(d_gen: np.ndarray, d_held: np.ndarray, cell_gen: np.ndarray,
                      cell_held: np.ndarray, n_cells: int) -> tuple[float, int]:  # fmt: skip
    """Meehan et al.'s C_T from distances to T and cell labels; (C_T, cells used)."""
    zs, weights = [], []
    for c in range(n_cells):
        a, b = d_gen[cell_gen == c], d_held[cell_held == c]
        if len(a) >= MIN_CELL and len(b) >= MIN_CELL:
            zs.append(z_mann_whitney(a, b))
            weights.append(len(b))
    if not zs:
        return float("nan"), 0
    w = np.asarray(weights, float) / sum(weights)
    return float(np.dot(w, zs)), len(zs)


@dataclass
class Memorization:
    """Flat metrics plus the closest generated/training pairs for a figure."""

    metrics: dict[str, float]
    closest_gen: np.ndarray  # indices into the generated set, closest first
    closest_train: np.ndarray  # their nearest training images
    closest_dist: np.ndarray  # in the space the pairs were ranked in (pixels)


def _space(prefix: str, gen: np.ndarray, train: np.ndarray, held: np.ndarray,
           seed: int) -> tuple[dict[str, float], np.ndarray, np.ndarray]:  # fmt: skip
    d_gt, i_gt = nearest(gen, train)
    d_gh, _ = nearest(gen, held)
    d_ht, _ = nearest(held, train)
    n_cells = int(max(1, min(MAX_CELLS, len(held) // (4 * MIN_CELL), len(gen) // (4 * MIN_CELL))))
    proj = _projection(train.shape[1], seed)
    centroids = _cells(train @ proj, n_cells, seed)
    cell_gen = nearest(gen @ proj, centroids)[1]
    cell_held = nearest(held @ proj, centroids)[1]
    ct, used = copying_statistic(d_gt, d_ht, cell_gen, cell_held, len(centroids))
    yard = float(np.quantile(d_ht, COPY_QUANTILE))
    out = {
        f"{prefix}ct": ct,
        f"{prefix}ct_cells": used,
        f"{prefix}copy_fraction": float((d_gt < yard).mean()),
        f"{prefix}nn_train_median": float(np.median(d_gt)),
        f"{prefix}nn_heldout_median": float(np.median(d_gh)),
        f"{prefix}heldout_nn_train_median": float(np.median(d_ht)),
        # generated images nearer to T than to H: about 1/2 plus a small size effect for fresh data
        f"{prefix}closer_to_train": float((d_gt < d_gh).mean()),
    }
    return out, d_gt, i_gt


def memorization(gen_feat: np.ndarray, train_feat: np.ndarray, held_feat: np.ndarray,
                 gen_px: np.ndarray, train_px: np.ndarray, held_px: np.ndarray, *,
                 seed: int = 0, pairs: int = 8) -> Memorization:  # fmt: skip
    """The memorization metrics in Inception features (``mem_*``) and pixels (``mem_px_*``);
    ``mem_copying`` is 1.0 when either space's C_T is below :data:`CT_THRESHOLD`."""
    for name, a in (("generated", gen_feat), ("training", train_feat), ("held-out", held_feat)):
        if len(a) < 2 * MIN_CELL:
            raise ValueError(f"memorization test: {len(a)} {name} images (needs {2 * MIN_CELL})")
    feat, _, _ = _space("mem_", gen_feat, train_feat, held_feat, seed)
    px, d_px, i_px = _space("mem_px_", gen_px, train_px, held_px, seed)
    cts = [v for v in (feat["mem_ct"], px["mem_px_ct"]) if np.isfinite(v)]
    metrics = {**feat, **px, "mem_ct_threshold": CT_THRESHOLD,
               "mem_copying": float(bool(cts) and min(cts) < CT_THRESHOLD)}
    order = np.argsort(d_px, kind="stable")[:pairs]
    return Memorization(metrics, order, i_px[order], d_px[order])
