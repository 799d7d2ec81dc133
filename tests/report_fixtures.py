"""Fixture run folders and Optuna studies for the report tests, built programmatically:
run folders through xraygan.runs, trials through optuna.trial.create_trial with the user
attributes of the contract in ablations/__init__.py. Everything is deterministic."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.trial import TrialState, create_trial

from xraygan import runs
from xraygan.claims.table1 import T0_PARAMS
from xraygan.config import ExperimentConfig, replace_path
from xraygan.imageio import save_grid
from xraygan.presets import get_preset

GOLDEN = Path(__file__).parent / "golden" / "reports"
UPDATE = os.environ.get("XRAYGAN_UPDATE_GOLDEN") == "1"


def check_golden(name: str, text: str) -> None:
    """Compare ``text`` with tests/golden/reports/NAME; XRAYGAN_UPDATE_GOLDEN=1 rewrites it."""
    path = GOLDEN / name
    if UPDATE or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if not UPDATE:
            raise AssertionError(f"golden file {path} was missing and has been written; rerun")
    assert text == path.read_text(), f"{name} differs from its golden file (see {path})"


def config(name: str, **model: Any) -> ExperimentConfig:
    cfg = ExperimentConfig(name=name, model=get_preset("paper-elu", 16, g_features=4,
                                                       d_features=4, **model))
    return replace_path(replace_path(cfg, "train.batch_size", 8), "train.steps", 60)


def losses(kind: str, n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(loss_d, loss_g) over n logged steps: ``t0`` starts with a low-D-loss phase of 20 points,
    ``collapse`` ends with both losses rising exponentially, ``flat`` neither."""
    rng = np.random.default_rng(seed)
    d = 0.8 + 0.05 * rng.standard_normal(n)
    g = 1.5 + 0.05 * rng.standard_normal(n)
    if kind == "t0":
        d[:20] = 0.02
    if kind == "collapse":
        k = np.arange(n - 30)
        d[30:] *= np.exp(0.15 * k)
        g[30:] *= np.exp(0.15 * k)
    return d, g


def make_run(root: Path, name: str, cfg: ExperimentConfig | None = None, *, kind: str = "t0",
             metrics: Mapping[str, Any] | None = None, seed: int = 0, status: str = "completed",
             images_per_s: float = 100.0, points: int = 60) -> Path:
    cfg = cfg or config(name)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=seed))
    run = runs.new_run_dir(root, name)
    runs.write_config(run, cfg)
    d, g = losses(kind, n=points, seed=seed)
    with runs.MetricsLog(run) as log:
        for i, (ld, lg) in enumerate(zip(d, g, strict=True)):
            log.write({"step": i * 5, "epoch": 0, "loss_d": ld, "loss_g": lg, "d_real": 0.5,
                       "d_fake": 0.5, "images_per_s": images_per_s, "time_s": i * 0.1})
    gen = torch.Generator().manual_seed(seed)
    for step in (100, 295):
        images = torch.rand(4, 1, 16, 16, generator=gen) * 2 - 1
        save_grid(images, runs.sample_path(run, step))
    runs.update_summary(run, status=status, step=300, images_per_s=images_per_s,
                        train_time_s=3.0, params_g=1000, params_d=500, device="cpu",
                        dataset="fixture phantoms", metrics=dict(metrics or {}))
    return run


def make_study(storage: str, name: str, kind: str, trials: Sequence[Mapping[str, Any]],
               scale: Mapping[str, Any] | None = None) -> optuna.Study:
    """A study whose trials carry the contract's user attrs; each item of ``trials`` gives
    cell, params, metrics, and optionally state, status, seed, run_dir, memory, config."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=storage)
    study.set_user_attr("study", kind)
    study.set_user_attr("scale", dict(scale or {"name": "quick", "steps": 300, "fid": True,
                                                 "fid_samples": 500}))
    study.set_user_attr("data", "phantom")
    for t in trials:
        metrics = {k: (None if isinstance(v, float) and math.isnan(v) else v)
                   for k, v in (t.get("metrics") or {}).items()}
        status = t.get("status", "completed")
        cfg = t.get("config") or config(t["cell"])
        attrs = {
            "study": kind, "scale": "quick", "cell": t["cell"],
            "cell_params": dict(t.get("params", {})), "reference": t.get("reference", False),
            "config": cfg.to_dict(), "seed": t.get("seed", 0), "run_dir": str(t.get("run_dir", "")),
            "host": "fixture", "status": status, "metrics": metrics,
            "objective": "fid" if metrics.get("fid") is not None else "d_loss_mean",
            "peak_memory_bytes": t.get("memory", {}).get("measured_peak_bytes", 1 << 20),
            "memory": t.get("memory", {"measured_peak_bytes": 1 << 20, "estimate_bytes": 1 << 20,
                                       "measured_resident_bytes": 1 << 19, "device": "cpu",
                                       "method": "fixture"}),
            "wall_time_s": 10.0, "train_time_s": 8.0, "images_per_s": t.get("images_per_s", 50.0),
            "params_g": 1000, "params_d": 500, "steps": 300,
        }
        if status != "completed":
            attrs["failure"] = t.get("failure", "loss_d is NaN at step 120")
        value = metrics.get("fid", metrics.get("d_loss_mean"))
        completed = status == "completed"
        study.add_trial(create_trial(
            state=TrialState.COMPLETE if completed else TrialState.FAIL,
            value=value if completed else None, user_attrs=attrs))
    return study


# --------------------------------------------------------------------------- study contents
TABLE1_FID = {"adas-elu": (104.0, 110.0, 98.0), "adam-elu": (230.0, 245.0, 240.0),
              "adas-elu-ttur": (101.0, 99.0, 103.0), "adas-dcgan": (112.0, 115.0, 109.0)}
TABLE1_PARAMS = {"adas-elu": ("adas", "elu", "elu", False), "adam-elu": ("adam", "elu", "elu", False),
                 "adas-elu-ttur": ("adas", "elu", "elu", True),
                 "adas-dcgan": ("adas", "relu", "leaky_relu", False)}


def table1_trials(seeds: int = 3) -> list[dict[str, Any]]:
    out = []
    for cell, fids in TABLE1_FID.items():
        opt, ga, da, ttur = TABLE1_PARAMS[cell]
        cfg = replace_path(replace_path(config(cell, g_activation=ga, d_activation=da),
                                        "optim.name", opt), "optim.ttur", ttur)
        for s in range(seeds):
            fid = fids[s]
            mean = 2.0 - fid / 120.0  # inversely related to FID, as the paper reads Table I
            out.append({"cell": f"{cell}-s{s}", "seed": s, "config": cfg,
                        "params": {"optimizer": opt, "ttur": ttur, "seed": s},
                        "metrics": {"fid": fid, "d_loss_mean": mean, "d_loss_var": 0.1 * (s + 1),
                                    "d_loss_std": math.sqrt(0.1 * (s + 1)), "t0": 100.0 + 50 * s,
                                    # past T0 by the registered rule (t0_phase's thresholds)
                                    "t0_past": 1.0, **dict(T0_PARAMS),
                                    "collapse_detected": 0.0}})
    return out


TABLE3_BLOCKINESS = {"strides": (0.40, 0.45, 0.50), "fc": (0.30, 0.35, 0.38),
                     "latent": (0.05, 0.35, 0.33), "fmaps": (0.25, 0.28, 0.31)}


def table3_trials() -> list[dict[str, Any]]:
    out = [{"cell": "baseline", "params": {"factor": "none", "side": "none"}, "reference": True,
            "metrics": {"fid": 120.0, "blockiness": 0.08}}]
    for factor, values in TABLE3_BLOCKINESS.items():
        for side, b in zip(("d", "g", "both"), values, strict=True):
            item = {"cell": f"{factor}-{side}", "params": {"factor": factor, "side": side},
                    "metrics": {"fid": 150.0 + 100 * b, "blockiness": b}}
            if factor == "fc" and side == "both":
                item.update(status="diverged", metrics={})  # filled from its run folder
            out.append(item)
    return out


def memory_rows() -> list[dict[str, Any]]:
    """xraygan-memory-like rows: m = 0.2 + 0.001 w^1.5 MiB (+3 % with BN in G)."""
    rows = []
    for size in (16, 32):
        for w in (8, 16, 32, 64, 128):
            for bn in ("both", "d"):
                m = (0.2 + 0.001 * w**1.5) * (size / 16) * (1.03 if bn == "both" else 1.0)
                rows.append({"image_size": size, "features": w, "batchnorm": bn, "batch_size": 8,
                             "optimizer": "adas", "device": "cpu",
                             "measured_peak_bytes": int(m * 2**20),
                             "estimate_bytes": int(0.95 * m * 2**20),
                             "torchinfo_batch_bytes": int(0.4 * m * 2**20)})
    return rows
