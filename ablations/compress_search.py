"""Search for the smallest, shallowest generator that is free of blurry squares and close to
the deep model's FID: the result the paper's Table III could not reach.

Trial 0 is the deep reference (DCGAN depth, full width, z of 100), enqueued first and
finished before any other trial is sampled: its FID and blockiness set the bar. Then TPE
samples G's strides (depth), width, latent size and an optional FC layer, with D fixed to
the deep model. The value minimized is G's parameter count, under two constraints
(Optuna's ``constraints_func``, feasible when <= 0):

    blockiness - (reference blockiness + BLOCKINESS_MARGIN)
    FID / reference FID - (1 + FID_TOLERANCE)          (only when FID is computed)

Pruning: every sample grid written during training is scored for blockiness and reported
(``trial.report``); a trial still that blocky past half of its steps is pruned
(ThresholdPruner at reference + PRUNE_MARGIN), so clearly failed compressions stop early.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import optuna

from .spec import STUDIES, Cell, StudyContext, StudySpec, first_metric, named
from .table3 import dcgan_strides

BLOCKINESS_MARGIN = 0.05
FID_TOLERANCE = 0.25
PRUNE_MARGIN = 0.15
LATENTS = (16, 32, 64, 100)
STRIDE_FACTORS = (2, 4, 8)
DEFAULT_TRIALS = 12


def stride_options(image_size: int, initial: int = 4) -> list[tuple[int, ...]]:
    """Every ordered tuple of strides in STRIDE_FACTORS taking ``initial`` up to ``image_size``."""
    target = image_size // initial
    out = []
    for depth in range(1, target.bit_length()):
        for combo in itertools.product(STRIDE_FACTORS, repeat=depth):
            if math.prod(combo) == target:
                out.append(combo)
    return out


def encode(strides: tuple[int, ...]) -> str:
    return "-".join(map(str, strides))


def widths(ctx: StudyContext) -> tuple[int, ...]:
    f = ctx.scale.features
    return tuple(sorted({max(1, f // 4), max(1, f // 2), f}))


def suggest(trial: optuna.Trial, ctx: StudyContext) -> Cell:
    size = ctx.scale.image_size
    strides = trial.suggest_categorical("g_strides", [encode(s) for s in stride_options(size)])
    width = trial.suggest_categorical("g_features", list(widths(ctx)))
    latent = trial.suggest_categorical("latent_dim", list(LATENTS))
    fc = trial.suggest_int("g_fc_layers", 0, 1)
    g_strides = tuple(int(s) for s in strides.split("-"))
    cfg = ctx.config(g_strides=g_strides, g_features=width, latent_dim=latent, g_fc_layers=fc)
    key = f"g{strides}-w{width}-z{latent}-fc{fc}"
    params = {"g_strides": strides, "g_depth": len(g_strides) + 1, "g_features": width,
              "latent_dim": latent, "g_fc_layers": fc}
    return Cell(key, named(cfg, key), params)


def reference_params(ctx: StudyContext) -> dict[str, Any]:
    """The deep model in the search's own parameters (enqueued as trial 0)."""
    return {"g_strides": encode(dcgan_strides(ctx.scale.image_size)),
            "g_features": ctx.scale.features, "latent_dim": 100, "g_fc_layers": 0}


def constraints(attrs: Mapping[str, Any], ref: Mapping[str, Any] | None) -> dict[str, Any]:
    """The constraint values of a finished trial against the reference's attrs."""
    metrics = attrs.get("metrics") or {}
    ref_metrics = (ref or {}).get("metrics") or {}
    block = metrics.get("blockiness", math.nan)
    ref_block = ref_metrics.get("blockiness", block)
    values = [float(block) - (float(ref_block) + BLOCKINESS_MARGIN)]
    out: dict[str, Any] = {"blockiness_excess": values[0]}
    if "fid" in metrics and "fid" in ref_metrics:
        ratio = float(metrics["fid"]) / float(ref_metrics["fid"])
        values.append(ratio - (1.0 + FID_TOLERANCE))
        out["fid_ratio"] = ratio
    values = [v if math.isfinite(v) else 1.0 for v in values]  # unknown counts as infeasible
    out["constraints"] = values
    out["feasible"] = all(v <= 0 for v in values)
    return out


def constraints_func(trial: optuna.trial.FrozenTrial) -> list[float]:
    # Pruned and failed trials have no constraints: infeasible, so TPE learns to avoid them.
    return list(trial.user_attrs.get("constraints", [1.0, 1.0]))


def sampler(ctx: StudyContext) -> optuna.samplers.BaseSampler:
    # No seed: every worker process has its own sampler, and equal seeds would make them
    # propose the same configurations.
    return optuna.samplers.TPESampler(constraints_func=constraints_func, n_startup_trials=4)


def pruner(ctx: StudyContext, ref: Mapping[str, Any] | None) -> optuna.pruners.BasePruner:
    if ref is None or "blockiness" not in (ref.get("metrics") or {}):
        return optuna.pruners.NopPruner()
    s = ctx.scale
    steps = s.steps or int(s.epochs * max(1, s.num_images // s.batch_size))
    upper = float(ref["metrics"]["blockiness"]) + PRUNE_MARGIN
    return optuna.pruners.ThresholdPruner(upper=upper, n_warmup_steps=steps // 2)


def finish(ctx: StudyContext, cell: Cell, attrs: Mapping[str, Any],
           ref: Mapping[str, Any] | None) -> dict[str, Any]:
    return constraints(attrs, ref)


STUDIES.add("compress-search", StudySpec(
    name="compress-search",
    description="TPE search (with pruning) for the smallest G without blurry squares and "
                "near the deep model's FID",
    suggest=suggest,
    reference=reference_params,
    sampler=sampler,
    pruner=pruner,
    finish=finish,
    score=first_metric("params_g"),
    default_trials=DEFAULT_TRIALS,
))
