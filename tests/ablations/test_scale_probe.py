"""The quick scale's probe: T0 as a run of each length would report it, and its summary."""

from __future__ import annotations

import json
import math

import numpy as np

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
