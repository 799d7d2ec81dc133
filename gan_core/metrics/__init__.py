"""Metrics of finished runs: a registry of named metrics returning flat dicts (the
stylegan2-ada habit, xraygan.metrics.main), and :func:`run_metrics`, which the trainer calls
at the end of a run and ``xraygan metrics`` calls later.

Cheap metrics (seconds on a CPU): ``dloss`` (Table I's D-loss statistics, T0, stats after T0),
``collapse_loss`` (the loss signature of mode collapse), ``samples`` (blockiness and diversity
of generated samples, or of the latest sample grid when there is no checkpoint), ``spectrum``
(radial power spectra of those samples against the real images: spectral distance,
high-frequency deficit), ``anatomy`` (CTR and lung-area distributions of those samples against
the real images' as the anatomy measurer reads them, and the share of implausible samples).
Expensive (Inception features): ``fid`` (FID of ``fid_samples`` generated images against the
cached statistics of the run's dataset; KID too when asked), ``prdc`` (precision, recall,
density, coverage) and ``memorization`` (nearest training and held-out images, Meehan et al.'s
data-copying test). The three share one Inception pass per image set (RunContext caches the
features; the real side comes from the statistics cache). ``utility`` (not run by default:
minutes) trains small classifiers on real, generated and mixed images and tests them on
held-out real ones (xraygan.metrics.utility).
"""

from __future__ import annotations

from typing import Any

SPECTRUM_FILE = "spectrum.json"  # in the run folder: the two curves of the spectrum metric
CLOSEST_PAIRS_FILE = "closest_pairs.png"  # in the run folder: the memorization figure

__all__ = ["CHEAP_METRICS", "CLOSEST_PAIRS_FILE", "FEATURE_METRICS", "METRICS", "RunContext",
           "SPECTRUM_FILE", "fid_of_images", "run_metrics"]


def __getattr__(name: str) -> Any:
    # the registry and its runner need torch: loaded on first use, so that reading a file
    # name or a constant of a metric module (the reports, the claims) does not import it
    if name in __all__:
        from . import main

        return getattr(main, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
