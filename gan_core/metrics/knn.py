"""Exact nearest-neighbour geometry of feature sets, in chunks of bounded memory.

Everything the k-NN metrics need (precision/recall, density/coverage, the memorization test)
is a reduction over a pairwise Euclidean distance matrix. At the sample sizes used here (a few
thousand 2048-d Inception features) the exact matrix is cheap to compute, but 10,000 x 10,000
of them would be 800 MB in float64: so rows are produced in blocks of at most
``budget_bytes`` and reduced on the fly. Distances use ||x||^2 + ||y||^2 - 2 x.y in float64
(a BLAS matrix product per block), clamped at 0 against rounding.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

BUDGET_BYTES = 64 << 20  # one distance block (rows x columns x 8 bytes) at most this large


def _as2d(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name}: expected (N, D) features, got shape {x.shape}")
    return x


def block_rows(n_cols: int, budget_bytes: int = BUDGET_BYTES) -> int:
    """Rows per block so that a (rows, n_cols) float64 block fits into ``budget_bytes``."""
    return max(1, int(budget_bytes // (8 * max(1, n_cols))))


def distance_blocks(x: np.ndarray, y: np.ndarray, *, budget_bytes: int = BUDGET_BYTES,
                    ) -> Iterator[tuple[int, np.ndarray]]:  # fmt: skip
    """Yield ``(start, D)`` with D[i, j] = |x[start + i] - y[j]| for consecutive row blocks."""
    x, y = _as2d(x, "x"), _as2d(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature dimensions differ: {x.shape[1]} vs {y.shape[1]}")
    yy = np.einsum("ij,ij->i", y, y)
    rows = block_rows(len(y), budget_bytes)
    for start in range(0, len(x), rows):
        xb = x[start : start + rows]
        d2 = xb @ y.T  # (rows, len(y))
        d2 *= -2.0
        d2 += np.einsum("ij,ij->i", xb, xb)[:, None]
        d2 += yy[None, :]
        np.maximum(d2, 0.0, out=d2)
        yield start, np.sqrt(d2, out=d2)


def kth_neighbour_radii(x: np.ndarray, k: int, *, budget_bytes: int = BUDGET_BYTES) -> np.ndarray:
    """Distance of each row of ``x`` to its k-th nearest *other* row (Kynkäänniemi et al.'s
    k-NN radius; equals the reference ``prdc`` package, which counts the point itself as its
    0-th neighbour)."""
    x = _as2d(x, "x")
    if not 1 <= k < len(x):
        raise ValueError(f"k-NN radius: need 1 <= k < N, got k={k} with N={len(x)}")
    out = np.empty(len(x))
    for start, d in distance_blocks(x, x, budget_bytes=budget_bytes):
        rows = np.arange(len(d))
        d[rows, start + rows] = np.inf  # leave the point itself out
        out[start : start + len(d)] = np.partition(d, k - 1, axis=1)[:, k - 1]
    return out


def nearest(queries: np.ndarray, reference: np.ndarray, *, budget_bytes: int = BUDGET_BYTES,
            ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(distance, index) of each query's nearest row of ``reference``."""
    q = _as2d(queries, "queries")
    dist = np.empty(len(q))
    idx = np.empty(len(q), dtype=np.int64)
    for start, d in distance_blocks(q, reference, budget_bytes=budget_bytes):
        j = d.argmin(axis=1)
        idx[start : start + len(d)] = j
        dist[start : start + len(d)] = d[np.arange(len(d)), j]
    return dist, idx
