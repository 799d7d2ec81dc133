"""Search for the smallest, shallowest generator that is free of blurry squares and close to
the deep model's FID: the result the paper's Table III could not reach.

Trial 0 is the deep reference (DCGAN depth, full width, z of 100), enqueued first and
finished before any other trial is sampled: its FID and blockiness set the bar. Then TPE
samples G's strides (depth), width, latent size and an optional FC layer, with D fixed to
the deep model. The value minimized is G's parameter count, under two constraints
(``Trial.set_constraint``, feasible when <= 0):

    blockiness - (reference blockiness + BLOCKINESS_MARGIN)
    FID / reference FID - (1 + FID_TOLERANCE)          (only when FID is computed)

Pruning: every sample grid written during training is scored for blockiness and reported
(``trial.report``); a trial still that blocky past half of its steps is pruned
(ThresholdPruner at reference + PRUNE_MARGIN), so clearly failed compressions stop early.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from xraygan import runs
from xraygan.claims.memory import BLOCKINESS_MARGIN
from xraygan.trials import TrialStatus

from .spec import STUDIES, Cell, StudyContext, StudySpec, first_metric, named
from .table3 import dcgan_strides

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


def sampler(ctx: StudyContext) -> optuna.samplers.BaseSampler:
    # No seed: every worker process has its own sampler, and equal seeds would make them
    # propose the same configurations.
    # The constraints come from each trial (StudySpec.constraints: ablations/trial.py sets
    # them before telling the study; pruned and failed trials are infeasible)
    return optuna.samplers.TPESampler(n_startup_trials=4)


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


@dataclass(frozen=True)
class Finding:
    """The search's answer: a compressed generator that works, or none in ``trials`` trials."""

    found: bool
    text: str  # one paragraph for the report
    trials: int  # trials other than the reference
    reference: Mapping[str, Any] | None  # the reference trial's attrs
    best: Mapping[str, Any] | None  # the smallest qualifying trial's attrs (None: none found)
    blockiness_limit: float  # reference blockiness + BLOCKINESS_MARGIN
    fid_limit: float  # reference FID x (1 + FID_TOLERANCE); NaN without FID


def _depth(attrs: Mapping[str, Any]) -> int | None:
    d = (attrs.get("cell_params") or {}).get("g_depth")
    return int(d) if d is not None else None


def _metric(attrs: Mapping[str, Any], name: str) -> float:
    v = (attrs.get("metrics") or {}).get(name)
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else math.nan


def _grid(attrs: Mapping[str, Any]) -> str:
    """The last sample grid of a trial's run folder (or the folder's samples/ when not here)."""
    run = attrs.get("run_dir")
    if not run:
        return "no run folder"
    grids = runs.sample_paths(Path(run)) if Path(run).is_dir() else []
    return str(grids[-1]) if grids else f"{run}/samples/"


def finding(trials: Sequence[Mapping[str, Any]]) -> Finding:
    """Did the search find a *compressed* generator (fewer G layers than the reference) whose
    blockiness is within the reference's + BLOCKINESS_MARGIN and whose FID is within
    (1 + FID_TOLERANCE) x the reference's? The smallest such G (parameters), or none.

    ``trials``: the user attrs of the study's trials (any order; the reference is the one with
    ``reference`` true). Only completed trials qualify; pruned and failed ones count as tried.
    """
    refs = [t for t in trials if t.get("reference") and t.get("status") == TrialStatus.COMPLETED]
    others = [t for t in trials if not t.get("reference")]
    nan = math.nan
    if not refs:
        return Finding(False, f"compress-search: no finished reference trial, so no answer "
                       f"({len(others)} other trials).", len(others), None, None, nan, nan)
    ref = refs[0]
    ref_block, ref_fid, ref_depth = _metric(ref, "blockiness"), _metric(ref, "fid"), _depth(ref)
    block_limit = ref_block + BLOCKINESS_MARGIN
    fid_limit = ref_fid * (1 + FID_TOLERANCE) if math.isfinite(ref_fid) else nan

    def qualifies(t: Mapping[str, Any]) -> bool:
        depth = _depth(t)
        if t.get("status") != TrialStatus.COMPLETED or depth is None or ref_depth is None:
            return False
        if not depth < ref_depth or not _metric(t, "blockiness") <= block_limit:
            return False
        return not math.isfinite(fid_limit) or _metric(t, "fid") <= fid_limit

    ok = sorted((t for t in others if qualifies(t)), key=lambda t: t.get("params_g") or math.inf)
    done = sum(t.get("status") == TrialStatus.COMPLETED for t in others)
    pruned = sum(t.get("status") == TrialStatus.PRUNED for t in others)
    fid_rule = (f", FID <= {1 + FID_TOLERANCE:.2f} x the reference's {ref_fid:.1f} "
                f"(= {fid_limit:.1f})" if math.isfinite(fid_limit) else " (FID not computed: "
                "blockiness only)")
    rule = (f"fewer G layers than the reference's {ref_depth}, blockiness <= the reference's "
            f"{ref_block:.3f} + {BLOCKINESS_MARGIN} (= {block_limit:.3f}){fid_rule}")
    tried = f"{len(others)} trials ({done} completed, {pruned} pruned)"
    if not ok:
        text = (f"compress-search found no compressed generator: none of {len(others)} "
                f"trial{'s' if len(others) != 1 else ''} met {rule}. Tried: {tried}.")
        return Finding(False, text, len(others), ref, None, block_limit, fid_limit)
    best = ok[0]
    p = best.get("cell_params") or {}
    fid = _metric(best, "fid")
    fid_text = (f", FID {fid:.1f} ({fid / ref_fid:.2f} x the reference's)"
                if math.isfinite(fid) and math.isfinite(ref_fid) else "")
    text = (f"compress-search found a compressed generator: {best.get('cell')} (G strides "
            f"{p.get('g_strides')}, {_depth(best)} layers vs {ref_depth}, width "
            f"{p.get('g_features')}, z {p.get('latent_dim')}, FC {p.get('g_fc_layers')}), "
            f"{best.get('params_g')} G parameters vs {ref.get('params_g')}; blockiness "
            f"{_metric(best, 'blockiness'):.3f} (limit {block_limit:.3f}){fid_text}. "
            f"{len(ok)} of {tried} met {rule}. Sample grid: {_grid(best)}")
    return Finding(True, text, len(others), ref, best, block_limit, fid_limit)


STUDIES.add("compress-search", StudySpec(
    name="compress-search",
    description="TPE search (with pruning) for the smallest G without blurry squares and "
                "near the deep model's FID",
    suggest=suggest,
    reference=reference_params,
    sampler=sampler,
    pruner=pruner,
    finish=finish,
    constraints=2,
    score=first_metric("params_g"),
    default_trials=DEFAULT_TRIALS,
    sections=("protocol", "compression", "trials", "table1", "throughput", "dynamics", "samples",
              "collapse", "claims"),
))
