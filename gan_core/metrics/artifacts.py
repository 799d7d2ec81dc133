"""The "blurry squares" artifact as a number.

The paper's compressed GANs (Table III) produced images "dominated by blurry squares with
homogeneous colors", judged by eye. Such an image is close to piecewise constant on a square
grid of period p (the stride product of a shallow generator): neighbouring pixels differ at
block boundaries and hardly at all inside a block.

Score, per image and grid period p in {2, 4, 8, ...} (up to an eighth of the side), maximized
over the p grid phases: with B = mean |finite difference| across the grid lines (horizontal and
vertical differences pooled) and I = the same everywhere else,

    s_p = (B - I) / (B + I)   in [-1, 1]

0 for images without a preferred grid (the boundary positions are like any others), 1 for
exactly constant blocks, and in between for blocks that are blurred or noisy. An image's
blockiness is max_p s_p; ``block_period`` is the largest p whose score is within 90 % of that
maximum (a block of side 8 also lies on the grids of periods 4 and 2, not on 16).
Difference images smaller than one intensity level are ignored through ``eps``.
"""

from __future__ import annotations

import numpy as np
import torch


def _as_float(images: np.ndarray | torch.Tensor) -> np.ndarray:
    """(N, C, H, W) or (N, H, W) or (H, W), uint8 0..255 or float -> (N, H, W) float64 0..255.

    Channels are averaged (blockiness is a property of luminance here).
    """
    x = images.cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    scale = 1.0 if x.dtype == np.uint8 or x.max(initial=0) > 1.5 else 255.0
    x = x.astype(np.float64) * scale
    if x.ndim == 2:
        x = x[None]
    if x.ndim == 4:
        x = x.mean(1)
    if x.ndim != 3:
        raise ValueError(f"expected images (N, C, H, W), (N, H, W) or (H, W), got {x.shape}")
    return x


def periods_for(size: int) -> list[int]:
    """Grid periods tried on a side of ``size`` px: powers of two with at least 8 grid lines.

    The max over p phases favours large p on natural images (few lines per phase, so one
    strong anatomical edge can win a phase): measured on a real radiograph at 64 px,
    s_16 = 0.25 against s_8 = 0.16; with >= 8 lines per phase the bias stays small.
    """
    return [p for p in (2, 4, 8, 16, 32, 64) if p <= size // 8] or [2]


def block_scores(images: np.ndarray | torch.Tensor, eps: float = 1e-3) -> dict[int, np.ndarray]:
    """Per-image s_p for each grid period p: {p: (N,) array}."""
    x = _as_float(images)
    dx = np.abs(np.diff(x, axis=2))  # (N, H, W-1): difference between columns c and c+1
    dy = np.abs(np.diff(x, axis=1))  # (N, H-1, W)
    out: dict[int, np.ndarray] = {}
    for p in periods_for(min(x.shape[1:])):
        best = np.full(len(x), -1.0)
        for phase in range(p):
            # a difference at position c crosses a grid line when column c+1 starts a block
            bx = (np.arange(dx.shape[2]) + 1 - phase) % p == 0
            by = (np.arange(dy.shape[1]) + 1 - phase) % p == 0
            if not bx.any() or bx.all():
                continue
            b_sum = dx[:, :, bx].sum((1, 2)) + dy[:, by, :].sum((1, 2))
            b_cnt = dx[:, :, bx][0].size + dy[:, by, :][0].size
            i_sum = dx[:, :, ~bx].sum((1, 2)) + dy[:, ~by, :].sum((1, 2))
            i_cnt = dx[:, :, ~bx][0].size + dy[:, ~by, :][0].size
            b, i = b_sum / b_cnt, i_sum / i_cnt
            best = np.maximum(best, (b - i) / (b + i + eps))
        out[p] = best
    return out


def blockiness(images: np.ndarray | torch.Tensor) -> dict[str, float]:
    """Mean over images of max_p s_p, its spread, and the dominant block period."""
    scores = block_scores(images)
    periods = sorted(scores)
    table = np.stack([scores[p] for p in periods], axis=1)  # (N, P)
    per_image = table.max(1)
    mean_by_p = table.mean(0)
    top = mean_by_p.max()
    period = max(p for p, v in zip(periods, mean_by_p, strict=True) if v >= 0.9 * top)
    return {
        "blockiness": float(per_image.mean()),
        "blockiness_max": float(per_image.max()),
        "block_period": float(period),
    }


def split_grid(grid: np.ndarray, image_size: int, pad: int = 2) -> np.ndarray:
    """Tiles of a sample grid written by xraygan.imageio.make_grid -> (N, C, H, W) uint8.

    ``grid`` is (H', W') or (H', W', 3). Tiles that are entirely black (unused grid cells
    and the padding) are dropped.
    """
    g = grid[None] if grid.ndim == 2 else np.moveaxis(grid, -1, 0)
    step = image_size + pad
    rows = (g.shape[1] - pad) // step
    cols = (g.shape[2] - pad) // step
    tiles = [
        g[:, pad + r * step : pad + r * step + image_size, pad + c * step : pad + c * step + image_size]
        for r in range(rows)
        for c in range(cols)
    ]
    tiles = [t for t in tiles if t.shape[1:] == (image_size, image_size) and t.any()]
    if not tiles:
        raise ValueError(f"no {image_size}x{image_size} tiles in a grid of shape {grid.shape}")
    return np.stack(tiles)
