"""Compute a sweep's FID reference statistics once, on every core, before its workers start.

Every trial of a sweep compares its samples with the same real images: the training set and
the held-out set of the memorization test (xraygan.metrics.RunContext). Their Inception
statistics are cached on disk (xraygan.metrics.features.dataset_stats), but a cold cache is
filled by whichever trial gets there first, and with K workers finishing their first trials
together, K workers extract the same 2,560 images at once, each on 1/K of the cores: on two
AVX2 EPYC cores that costs about 260 s of duplicated work in the quick reproduction's 25-min
budget. ``xraygan sweep`` with more than one worker calls it before the workers start, on all
cores (so do ``nox -s quickstart`` and ``full``, through the sweep); afterwards it is a cache
hit that takes a second. ``python -m xraygan.ablations.reference`` runs it alone.

    python -m ablations.reference [--quick | --full] [--data SPEC] [--device DEV]

Unknown flags are ignored, so the sweep's own flags can be passed through unchanged.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence


def warm(scale_name: str = "quick", data: str = "phantom", device: str = "cpu",
         image_size: int | None = None, num_images: int | None = None,
         holdout: float | None = None) -> dict[str, float]:
    """Fill the statistics cache for the training and held-out sets of ``scale_name``'s runs;
    returns seconds per set (near zero on a cache hit)."""
    from .scale import SCALES

    scale = SCALES.get(scale_name, field="scale").with_overrides(
        image_size=image_size, num_images=num_images)
    return warm_scale(scale, data, device, holdout)


def warm_scale(scale, data: str = "phantom", device: str = "cpu",
               holdout: float | None = None) -> dict[str, float]:
    """:func:`warm` for a Scale object (a sweep's, its overrides applied; ``holdout``: its
    held-out fraction of real data, None for the default)."""
    from xraygan.data import load_dataset
    from xraygan.data.holdout import heldout_set
    from xraygan.metrics import RunContext
    from xraygan.metrics.compare import SampleSet

    from .scale import base_config

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


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ablations.reference", description=__doc__.split("\n\n")[0])
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--quick", dest="scale", action="store_const", const="quick",
                       help="the quick scale (default)")
    scale.add_argument("--full", dest="scale", action="store_const", const="full",
                       help="the paper's scale")
    p.add_argument("--data", default="phantom", help="dataset spec (default phantom)")
    p.add_argument("--device", default="cpu", help="cpu | cuda (default cpu; auto means cpu here)")
    from xraygan.cli.argtypes import field_type
    from xraygan.config import DataConfig, ModelConfig

    p.add_argument("--image-size", type=field_type(ModelConfig, "image_size"), default=None, help="as the sweep's (default: the scale's)")
    p.add_argument("--num-images", type=field_type(DataConfig, "num_images"), default=None, help="as the sweep's (default: the scale's)")
    p.add_argument("--holdout", type=field_type(DataConfig, "holdout"), default=None,
                   help="as the sweep's (default: 0.1 for real data)")
    p.add_argument("--no-fid", action="store_true", help="nothing to do (the sweep computes no FID)")
    args, _ = p.parse_known_args(argv)
    if args.no_fid:
        return 0
    from xraygan.errors import XrayganError

    device = "cpu" if args.device == "auto" else args.device
    try:
        took = warm(args.scale or "quick", args.data, device, args.image_size, args.num_images,
                    args.holdout)
    except XrayganError as e:
        print(f"reference statistics: error: {e}", file=sys.stderr)
        return 2
    print("reference statistics: " + (", ".join(f"{k} {v:.0f} s" for k, v in took.items())
                                      or "none (no FID at this scale)"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
