"""Held-out real images: the yardstick of the memorization test (xraygan.metrics.memorization).

Phantoms need no split: phantom ``i`` depends only on (seed, i, size), so the images after the
training set (indices ``num_images`` onwards) are real images of the same distribution that G
never saw. Folder, DICOM and cache datasets hold a fixed set of images, so ``data.holdout``
(a fraction in [0, 0.5]) sets a seeded part aside: the permutation of the image indices drawn
from ``data.seed`` decides, its last ``round(holdout * N)`` indices are held out and the rest
trained on. The split is a function of the config alone (recorded in config.json), so the
trainer and ``xraygan metrics`` days later see the same two sets.
"""

from __future__ import annotations

import dataclasses
import hashlib

import torch

from ..config import DataConfig
from ..errors import DataError
from .base import ImageSet, parse_spec
from .imageops import to_uint8
from .phantom import DEFAULT_NUM_IMAGES, PhantomSeries, generate_phantoms
from .sources import load_dataset
from .split import holdout_fraction, split_indices, split_part

HELDOUT_PHANTOMS = 512  # held-out phantoms scored by default (Inception time on CPU)


def heldout_set(cfg: DataConfig, image_size: int, channels: int = 1,
                max_images: int = HELDOUT_PHANTOMS) -> ImageSet:  # fmt: skip
    """Real images of the run's source that were never trained on (at most ``max_images``)."""
    kind, arg = parse_spec(cfg.source)
    if kind == "phantom":
        series = PhantomSeries.parse(arg)
        start = cfg.num_images or DEFAULT_NUM_IMAGES
        n = max_images
        imgs = torch.from_numpy(to_uint8(generate_phantoms(n, image_size, cfg.seed, start=start,
                                                           series=series)))
        imgs = imgs[:, None].expand(-1, channels, -1, -1).contiguous()
        # version 1 keeps its original tag (cached statistics stay valid)
        spec = f"v{series.version}" if series == PhantomSeries() else series.spec
        tag = f"phantom-heldout|{spec}|{cfg.seed}|{start}|{n}|{image_size}"
        return ImageSet(imgs, hashlib.sha256(tag.encode()).hexdigest(),
                        f"{n} held-out chest phantoms (indices {start}..{start + n - 1}, seed "
                        f"{cfg.seed}, never trained on)")  # fmt: skip
    fraction = holdout_fraction(cfg)
    if fraction <= 0:
        raise DataError(f"data.holdout is 0 for {cfg.source}: no held-out images to test "
                        "memorization against (set data.holdout, e.g. 0.1, before training)")
    full = load_dataset(dataclasses.replace(cfg, holdout=0.0), image_size, channels)
    _, held = split_indices(len(full), fraction, cfg.seed)
    return split_part(full, held[:max_images], "held-out", fraction, cfg.seed)
