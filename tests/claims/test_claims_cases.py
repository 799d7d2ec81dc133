"""Each case of issue 25 where the claims engine gave a confident wrong verdict, built as a
study and run through the report's own path: per-run loss logs -> metrics (dloss_metrics: T0
by t0_phase) -> trial attrs -> reports.load.record -> populations -> decide_claims."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from xraygan.claims import engine
from xraygan.claims.protocol import registration
from xraygan.claims.verdicts import FAILS, HOLDS, UNTESTABLE
from xraygan.metrics.dynamics import dloss_metrics
from xraygan.reports.build import StudyData, decide_claims
from xraygan.reports.load import _frame, record, with_fid_n


def log(kind: str, steps: int, rng: np.random.Generator) -> pd.DataFrame:
    """A D-loss log every 5 iterations: ``ok`` leaves the low phase at ~15 % of the run,
    ``stuck`` stays at 0.08, ``late`` leaves at 80 %, ``at65`` at 65 %, ``untrained`` never
    drops (D and G at their initial noise)."""
    s = np.arange(5, steps + 1, 5)
    leave = {"ok": 0.15, "late": 0.8, "at65": 0.65}.get(kind)
    if kind == "untrained":
        d = 1.386 + 0.02 * rng.standard_normal(len(s))
    elif kind == "stuck":
        d = 0.08 + 0.005 * rng.standard_normal(len(s))
    else:
        d = np.where(s < leave * steps, 0.02, 0.8) + 0.02 * rng.standard_normal(len(s))
    return pd.DataFrame({"step": s, "loss_d": np.abs(d), "loss_g": 2.0 + 0 * d})


def study(cells: dict[str, list[tuple[str, float]]], *, steps: int = 3500, seed: int = 0,
          name: str = "table1-quick", **extra: float) -> StudyData:
    """A table1 study: per cell, per seed (loss-log kind, FID)."""
    rng = np.random.default_rng(seed)
    rows = []
    for g, runs in cells.items():
        for s, (kind, fid) in enumerate(runs):
            metrics = {**dloss_metrics(log(kind, steps, rng)), "fid": fid, "fid_n1": 128,
                       "precision": 0.5, "density": 0.8, "recall": 0.3, **extra}
            attrs = {"study": "table1", "scale": "quick", "cell": f"{g}-s{s}",
                     "cell_params": {"seed": s}, "status": "completed", "seed": s,
                     "run_dir": f"/runs/{name}/{g}-s{s}", "metrics": metrics,
                     "config": {"model": {"image_size": 32, "g_features": 32, "d_features": 32},
                                "train": {"steps": steps, "batch_size": 32, "seed": s},
                                "data": {"source": "phantom", "num_images": 1024}}}
            rows.append(record(attrs, trial=len(rows), state="COMPLETE", value=math.nan))
    return StudyData(name, "table1", with_fid_n(_frame(rows)))


def verdict(data: StudyData, key: str = "adas_beats_adam") -> engine.Claim:
    return next(c for c in decide_claims([data], None) if c.key == key)


EQUAL = [200.0, 230.0, 215.0]


def test_case1_a_d_loss_stuck_low_all_run_is_not_past_t0():
    # Adam stuck at 0.08 (and a worse FID: it has not trained); the old gate read t0 = 0
    data = study({"adas-elu": [("ok", f) for f in EQUAL],
                  "adam-elu": [("stuck", f * 1.8) for f in EQUAL]})
    c = verdict(data)
    assert c.verdict == UNTESTABLE and "adam-elu past T0 in 0 of 3 seeds" in c.reason
    assert math.isnan(c.p)


def test_case1_seeds_that_never_leave_are_left_out_and_counted():
    # one Adam seed never leaves T0 (FID of an untrained G), two leave at 65 %: those two
    # compare equal to AdaS, so the claim must not hold
    data = study({"adas-elu": [("ok", f) for f in EQUAL],
                  "adam-elu": [("stuck", 420.0), ("at65", 205.0), ("at65", 225.0)]})
    c = verdict(data)
    assert c.verdict != HOLDS and "adam-elu past T0 in 2 of 3 seeds" in c.evidence
    assert c.excluded == "adam-elu: 1 not past T0 of 3"


def test_case1_a_low_phase_until_80_percent_is_not_past_t0():
    data = study({"adas-elu": [("ok", f) for f in EQUAL],
                  "adam-elu": [("late", f * 1.8) for f in EQUAL]})
    assert verdict(data).verdict == UNTESTABLE


@pytest.mark.parametrize("steps", [10, 15, 20])
def test_case1_a_sweep_of_a_few_steps_decides_nothing(steps):
    data = study({"adas-elu": [("untrained", f) for f in EQUAL],
                  "adam-elu": [("untrained", f * 1.8) for f in EQUAL]}, steps=steps)
    for key in ("adas_beats_adam", "dloss_inverse_fid"):
        assert verdict(data, key).verdict == UNTESTABLE


def test_case3_a_gain_inside_the_margin_does_not_hold():
    # AdaS 3 % lower FID, tightly measured: inside the 10 % margin, so "does not hold"
    data = study({"adas-elu": [("ok", 194.0), ("ok", 195.0), ("ok", 193.0), ("ok", 194.5)],
                  "adam-elu": [("ok", 200.0), ("ok", 201.0), ("ok", 199.0), ("ok", 200.5)]})
    c = verdict(data)
    assert c.verdict == FAILS and "smaller than the claim's margin" in c.reason


def test_case3_zero_spread_is_untestable_not_p_zero():
    data = study({"adas-elu": [("ok", 100.0)] * 3, "adam-elu": [("ok", 240.0)] * 3})
    c = verdict(data)
    assert c.verdict == UNTESTABLE and c.reason == "no spread between seeds"


def test_case3_holm_counts_the_registered_family_with_untestable_claims():
    # only adas_beats_adam is testable (two cells: "best" lacks cells, the correlation lacks
    # configurations); Holm still adjusts over the family's 3 registered claims
    data = study({"adas-elu": [("ok", f) for f in (100.0, 104.0, 98.0)],
                  "adam-elu": [("ok", f) for f in (230.0, 240.0, 236.0)]})
    claims = {c.key: c for c in decide_claims([data], None)}
    c = claims["adas_beats_adam"]
    assert claims["elu_ttur_adas_best"].verdict == UNTESTABLE
    assert c.family_size == 3 and c.p_adjusted == pytest.approx(min(1.0, 3 * c.p))


def test_case4_the_registered_precision_floor_decides():
    cells = {g: [("ok", 100.0 + 10 * i + s) for s in range(3)]
             for i, g in enumerate(("adas-elu-ttur", "adas-elu", "adam-elu", "adas-dcgan"))}
    data = study(cells, prdc_n_real=128, prdc_n_fake=128)
    code = engine.CLAIMS["best_fid_best_recall"].protocol
    floor = tuple(dataclasses.replace(q, threshold=0.9) if q.key == "precision_floor" else q
                  for q in code.preconditions)
    strict = dataclasses.replace(code, preconditions=floor)
    data.attrs["claims_protocol"] = registration([strict])
    c = verdict(data, "best_fid_best_recall")
    assert c.verdict == UNTESTABLE and c.reason.startswith("precision_floor")
    assert "the registered one decided" in c.registration


def test_a_real_15_step_training_run_is_not_past_t0(tmp_path):
    """A real tiny run (16 px, width 8, 15 steps): its own log through the T0 gate."""
    from xraygan import runs
    from xraygan.config import DataConfig, ExperimentConfig, ModelConfig, OptimConfig, TrainConfig
    from xraygan.train import train

    cfg = ExperimentConfig(
        name="t0-gate", model=ModelConfig(image_size=16, g_features=8, d_features=8,
                                          latent_dim=16),
        optim=OptimConfig(name="adas"), data=DataConfig(source="phantom", num_images=48),
        train=TrainConfig(steps=15, batch_size=8, device="cpu", sample_every=0,
                          checkpoint_every=0, num_samples=16, log_every=1))
    result = train(cfg, runs_root=tmp_path, progress=False, evaluate=False)
    m = dloss_metrics(runs.read_metrics(result.run_dir))
    assert m["t0_past"] == 0.0 and math.isnan(m["t0"]) and m["t0_why_not"]
