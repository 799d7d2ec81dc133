"""A seeded held-out split of a fixed image set (folder, DICOM and cache datasets): a function of
the config alone (``data.holdout``, ``data.seed``, recorded in config.json), so the trainer and
``xraygan metrics`` days later see the same two sets. Phantoms need no split (see
xraygan.data.holdout).
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..config import DataConfig
from ..errors import DataError
from .base import ImageSet

SPLIT_SALT = 0x5EED_4E1D  # keeps the split stream apart from other uses of data.seed


def holdout_fraction(cfg: DataConfig) -> float:
    return float(getattr(cfg, "holdout", 0.0) or 0.0)


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) index arrays of a seeded split of ``n`` images, each sorted."""
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"data.holdout: expected a fraction in [0, 1), got {fraction}")
    n_held = int(round(fraction * n))
    if fraction > 0 and (n_held < 1 or n - n_held < 1):
        raise DataError(f"data.holdout: {fraction} of {n} images leaves an empty side")
    perm = np.random.default_rng([SPLIT_SALT, seed]).permutation(n)
    return np.sort(perm[: n - n_held]), np.sort(perm[n - n_held :])


def split_part(data: ImageSet, idx: np.ndarray, side: str, fraction: float, seed: int) -> ImageSet:
    tag = f"{data.fingerprint}|holdout={fraction}|seed={seed}|{side}"
    return ImageSet(images=data.images[idx].contiguous(),
                    fingerprint=hashlib.sha256(tag.encode()).hexdigest(),
                    description=f"{data.description}, {side} part of a {fraction:g} holdout split "
                    f"(seed {seed}, {len(idx)} images)", skipped=data.skipped,
                    ids=None if data.ids is None else tuple(data.ids[i] for i in idx))  # fmt: skip


def training_part(data: ImageSet, cfg: DataConfig) -> ImageSet:
    """The images to train on: all of them without a holdout, else the split's training side."""
    fraction = holdout_fraction(cfg)
    if fraction <= 0 or cfg.source.split(":")[0] == "phantom":
        return data
    train, _ = split_indices(len(data), fraction, cfg.seed)
    return split_part(data, train, "training", fraction, cfg.seed)
