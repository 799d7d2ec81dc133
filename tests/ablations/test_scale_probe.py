"""The quick scale's probe: T0 as a run of each length would report it, and its summary."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from xraygan.ablations.scale_probe import summary_markdown, t0_by_length


def test_t0_by_length_reads_every_shorter_run_off_one_log():
    steps = np.arange(0, 3000, 5)
    loss = np.where(steps < 1400, 0.005, 0.6)  # D wins until 1400, then G learns
    t0 = t0_by_length(steps, loss, [1000, 1500, 2000, 3000])
    assert math.isnan(t0[1000]) and math.isnan(t0[1500])  # still in T0 by these lengths' rule
    assert 1390 <= t0[2000] <= 1420 and 1390 <= t0[3000] <= 1420


def test_summary_table(tmp_path):
    row = {"cell": "adam-elu", "seed": 1, "batch_size": 32, "steps": 3000, "wall_s": 1000.0,
           "cpu_s": 180.0, "avx2_quiet_s": 225.0, "load_avg": [7.0, 10.0],
           "t0": {"1500": float("nan"), "2000": 1390.0}}
    log = tmp_path / "probe.jsonl"
    log.write_text(json.dumps(row) + "\n")
    md = summary_markdown([log])
    assert "| adam-elu | 1 | 32 | — | 1390 | not run | not run | 75 | 1000 / 180 | 7.0-10.0 |" in md


def _probe_run(tmp_path, cell, seed, leave_at, steps=3000):
    run = tmp_path / f"{cell}-{seed}"
    run.mkdir()
    s = np.arange(5, steps + 1, 5)
    loss = np.where(s < leave_at, 0.02, 0.7)  # D wins until leave_at, then G learns
    lines = ["step,loss_d,loss_g"] + [f"{a},{b},1.0" for a, b in zip(s, loss, strict=True)]
    (run / "metrics.csv").write_text("\n".join(lines) + "\n")
    return {"cell": cell, "seed": seed, "steps": steps, "batch_size": 32,
            "avx2_quiet_s": 0.075 * steps, "run_dir": str(run)}


def test_derive_length_is_the_shortest_at_which_every_seed_left_t0_by_75_percent(tmp_path):
    from xraygan.ablations.scale_probe import derive_length, derive_markdown

    log = tmp_path / "probe.jsonl"
    rows = [_probe_run(tmp_path, "adam-elu", 0, 1500), _probe_run(tmp_path, "adam-elu", 1, 1860),
            _probe_run(tmp_path, "adas-elu", 0, 200, steps=1200)]  # a short probe, past T0
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    lengths = list(range(1000, 4001, 100))
    r = derive_length([log], ["adam-elu", "adas-elu"], lengths)
    # seed 1 leaves at ~1,860: 1,860 / 0.75 = 2,480, so 2,500 is the first length that passes
    assert r["shortest_length"] == 2500 and r["missing_cells"] == []
    assert math.isnan(r["runs"]["adam-elu seed 1"][2400])
    # past T0 by its end: a longer run has the same T0
    assert r["runs"]["adam-elu seed 0"][4000] == r["runs"]["adam-elu seed 0"][3000]
    assert r["runs"]["adas-elu seed 0"][2500] == r["runs"]["adas-elu seed 0"][1200] < 300
    assert r["avx2_quiet_s_per_1000"] == 75.0
    text = derive_markdown(r, [2000, 2500, 3000])
    assert "2,500 iterations" in text and "| adam-elu seed 1 | — |" in text
    r = derive_length([log], ["adam-elu", "adas-dcgan"], lengths)
    assert r["shortest_length"] is None and r["missing_cells"] == ["adas-dcgan"]
    stuck = tmp_path / "stuck.jsonl"
    stuck.write_text(json.dumps(_probe_run(tmp_path, "adam-elu", 7, 5000)) + "\n")
    r = derive_length([stuck], ["adam-elu"], lengths)
    assert 4000 not in r["runs"]["adam-elu seed 7"]  # not past by its end: longer not judged
    assert r["shortest_length"] is None


def test_study_flops_counts_every_trial_at_its_batch_and_length():
    from xraygan.ablations import QUICK, load_studies
    from xraygan.ablations.estimate import study_flops
    from xraygan.config import OptimConfig
    from xraygan.costmodel import step_flops
    from xraygan.presets import get_preset

    load_studies()
    r = study_flops("table1", QUICK.with_overrides(steps=10), seeds=2)
    assert (r["trials"], r["iterations"]) == (8, 80)
    per_image = step_flops(get_preset("paper-elu", 32, g_features=32, d_features=32),
                           OptimConfig(name="adam"), 4) / 4
    assert 90e6 < per_image < 100e6  # ~95.5 MFLOP per image at the quick shapes
    # adas-dcgan's ReLU/LeakyReLU cost no counted FLOPs more: every trial costs the same
    assert r["flops"] == pytest.approx(80 * QUICK.batch_size * per_image, rel=1e-6)
