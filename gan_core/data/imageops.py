"""Pixel operations shared by every loader: square policy and antialiased downsampling.

Radiographs are rarely square (VinBigData: about 2000x2500 to 3072x3072); the GAN wants
squares. The policy is the user's choice, and documented:
  crop   centre crop to the shorter side (keeps scale, loses the edges: usually the arms)
  pad    pad the shorter side with the image's minimum (keeps everything, adds black borders)
  squash resize anisotropically (keeps everything, distorts anatomy)

numpy and PIL load inside the functions: the command line reads SQUARE_POLICIES for its help.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..lazy import lazy_module

np = lazy_module("numpy")
Image = lazy_module("PIL.Image")

if TYPE_CHECKING:
    import numpy as np

SQUARE_POLICIES = ("crop", "pad", "squash")


def to_square(img: np.ndarray, policy: str = "crop") -> np.ndarray:
    """Make a 2-D float image square by ``policy`` (see module docstring)."""
    if policy not in SQUARE_POLICIES:
        raise ConfigError(f"square policy: expected one of {', '.join(SQUARE_POLICIES)}, got {policy!r}")
    h, w = img.shape
    if h == w or policy == "squash":
        return img
    if policy == "crop":
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        return img[top : top + s, left : left + s]

    s = max(h, w)
    out = np.full((s, s), img.min(), dtype=img.dtype)
    top, left = (s - h) // 2, (s - w) // 2
    out[top : top + h, left : left + w] = img
    return out


def resize(img: np.ndarray, size: int) -> np.ndarray:
    """Antialiased resize of a 2-D float image to ``size`` x ``size`` (Lanczos, float32).

    PIL's float mode filters with a support scaled to the reduction factor, so a 3000 px
    radiograph shrunk to 64 px is properly low-passed instead of aliased.
    """
    if img.shape == (size, size):
        return img.astype(np.float32, copy=False)
    pil = Image.fromarray(np.ascontiguousarray(img, dtype=np.float32), mode="F")
    return np.asarray(pil.resize((size, size), Image.Resampling.LANCZOS), dtype=np.float32)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """[0, 1] float -> uint8 0..255 with rounding and clipping."""
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
