"""Compute a sweep's FID reference statistics once, on every core, before its workers start.

Every trial of a sweep compares its samples with the same real images: the training set and
the held-out set of the memorization test (xraygan.metrics.RunContext). Their Inception
statistics are cached on disk (xraygan.metrics.features.dataset_stats), but a cold cache is
filled by whichever trial gets there first, and with K workers finishing their first trials
together, K workers extract the same 2,560 images at once, each on 1/K of the cores: on two
AVX2 EPYC cores that costs about 260 s of duplicated work in the quick reproduction's 25-min
budget. ``xraygan sweep`` with more than one worker calls it before the workers start, on all
cores (so do ``nox -s quickstart`` and ``full``, through the sweep); afterwards it is a cache
hit that takes a second.
"""

from __future__ import annotations

import time

from xraygan.data import load_dataset
from xraygan.data.holdout import heldout_set
from xraygan.metrics import RunContext
from xraygan.metrics.compare import SampleSet

from .scale import base_config


def warm_scale(scale, data: str = "phantom", device: str = "cpu",
               holdout: float | None = None) -> dict[str, float]:
    """Fill the statistics cache for the training and held-out sets of the runs of ``scale``
    (a sweep's, its overrides applied; ``holdout``: its held-out fraction of real data, None for
    the default); returns seconds per set (near zero on a cache hit)."""
    if not scale.fid:
        return {}
    cfg = base_config(scale, data=data, holdout=holdout)
    size, ch = cfg.model.image_size, cfg.model.channels
    held_n = RunContext.__dataclass_fields__["heldout_samples"].default
    out: dict[str, float] = {}
    for name, load in (("training", lambda: load_dataset(cfg.data, size, ch)),
                       ("held-out", lambda: heldout_set(cfg.data, size, ch, held_n))):
        t = time.perf_counter()
        images = load()
        if len(images.images) >= 2:
            _ = SampleSet(name, images.images, images.fingerprint, device=device,
                          progress=True).stats
        out[name] = time.perf_counter() - t
    return out
