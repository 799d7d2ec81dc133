"""Sample grids and image files."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .runs import atomic_write_bytes


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """G output in [-1, 1] (any float dtype) -> uint8 0..255, same shape."""
    return images.detach().float().add(1.0).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def make_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """uint8 (N, C, H, W) -> one uint8 (H', W') or (H', W', 3) array with ``pad`` px borders."""
    if images.dtype != torch.uint8:
        images = to_uint8(images)
    n, c, h, w = images.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    ncol = int(math.ceil(n / nrow))
    grid = np.zeros((c, ncol * (h + pad) + pad, nrow * (w + pad) + pad), dtype=np.uint8)
    arr = images.cpu().numpy()
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[:, y : y + h, x : x + w] = arr[i]
    return grid[0] if c == 1 else np.moveaxis(grid[:3], 0, -1)


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Write a PNG grid of ``images`` (uint8, or float in [-1, 1]) atomically."""
    atomic_write_bytes(path, png_bytes(make_grid(images, nrow)))
    return Path(path)
