"""A sweep's time estimate: its trials' configurations, timed by xraygan.costmodel on this
machine under its current load (``xraygan sweep --dry-run`` prints it, a sweep prints it at
its start)."""

from __future__ import annotations

from typing import Any

from xraygan.costmodel import Calibration, Estimate, calibrate, estimate, plan_trials

from .preflight import preflight
from .runner import SweepOptions, sweep_configs


def sweep_estimate(opts: SweepOptions, *, budget_s: float = 1.0,
                   checked: Any = None) -> tuple[Estimate, Calibration]:
    """Calibrate and estimate a sweep. ``checked``: the sweep's
    :class:`xraygan.ablations.preflight.Preflight`, which knows the reference sets of the data
    at hand and which of them are cached (run here when not given)."""
    if checked is None:
        checked = preflight(opts)
    scale = opts.ctx.scale
    pairs = sweep_configs(opts)
    fid_samples = scale.fid_samples if scale.fid else 0
    plans = plan_trials(pairs, fid_samples=fid_samples)
    cal = calibrate([cfg for _, cfg in pairs], fid=bool(fid_samples), workers=opts.workers,
                    budget_s=budget_s)
    todo = checked.uncached_images
    est = estimate(plans, cal, workers=opts.workers, reference_images=todo,
                   reference_cached=checked.reference_images - todo)
    return est, cal
