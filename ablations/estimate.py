"""A sweep's time estimate: its trials' configurations, timed by xraygan.costmodel on this
machine under its current load (``xraygan sweep --dry-run`` prints it, a sweep prints it at
its start)."""

from __future__ import annotations

from typing import Any

from xraygan.costmodel import Calibration, Estimate, calibrate, estimate, plan_trials, step_flops
from xraygan.train import total_steps

from .preflight import preflight
from .runner import SweepOptions, get_spec, sweep_configs
from .spec import StudyContext


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


def study_flops(study: str, scale: Any, seeds: int = 1) -> dict[str, Any]:
    """Training FLOPs of every trial of ``study`` at ``scale`` (xraygan.costmodel.step_flops
    per image, counted at batch 1 and scaled: convolutions cost linearly in the batch), the
    trials' total, and how many trials and iterations that is. Evaluation is not counted."""
    spec = get_spec(study)
    cells = spec.grid(StudyContext(scale, seeds=seeds))
    per_config: dict[str, float] = {}
    total, iterations = 0.0, 0
    for c in cells:
        cfg = c.config
        sig = cfg.model.to_json() if hasattr(cfg.model, "to_json") else repr(cfg.model)
        if sig not in per_config:
            per_config[sig] = step_flops(cfg.model, cfg.optim, 1)
        steps = total_steps(cfg, cfg.data.num_images)
        total += per_config[sig] * cfg.train.batch_size * steps
        iterations += steps
    return {"study": study, "scale": scale.name, "seeds": seeds, "trials": len(cells),
            "iterations": iterations, "flops": total}
