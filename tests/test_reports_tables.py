"""Golden-file tests of the report tables, from a fixture study (SQLite in tmp_path) and fixture
run folders. Regenerate the golden files with XRAYGAN_UPDATE_GOLDEN=1 pytest tests/test_reports*.py
and review the diff."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from report_fixtures import (
    check_golden,
    make_run,
    make_study,
    memory_rows,
    table1_trials,
    table3_trials,
)

from reports import tables
from reports.load import fill_sample_metrics, load_study, runs_frame, trials_frame
from reports.stats import fmt, mean_ci


@pytest.fixture
def storage(tmp_path):
    return f"sqlite:///{tmp_path / 'studies.db'}"


def test_mean_ci_matches_t_interval():
    ci = mean_ci([1.0, 2.0, 3.0])
    # t_{0.975, 2} = 4.3027; s = 1; half = 4.3027 / sqrt(3)
    assert ci.n == 3 and ci.mean == pytest.approx(2.0)
    assert ci.half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    one = mean_ci([5.0, float("nan")])
    assert one.n == 1 and math.isnan(one.half) and one.low == one.high == 5.0
    assert fmt(float("nan")) == "—" and fmt(True) == "yes" and fmt(1234.5678) == "1234.568"


def test_table1_golden(storage):
    make_study(storage, "table1-quick", "table1", table1_trials(seeds=3))
    df = trials_frame(load_study("table1-quick", storage))
    tf = tables.table1_frame(df)
    assert list(tf["group"]) == ["adas-elu", "adam-elu", "adas-elu-ttur", "adas-dcgan"]
    assert (tf["n"] == 3).all()
    fid = tf.set_index("group").loc["adam-elu", "fid"]
    assert fid.mean == pytest.approx(715 / 3) and fid.half > 0
    check_golden("table1.md", tables.table1_markdown(df))
    check_golden("trials_table1.md", tables.trials_markdown(df))
    check_golden("correlation_table1.md", tables.correlation_markdown(df))
    check_golden("throughput_table1.md", tables.throughput_markdown(df))


def test_table1_single_run_shows_values_without_interval(storage):
    make_study(storage, "t1", "table1", [t for t in table1_trials(seeds=1)])
    text = tables.table1_markdown(trials_frame(load_study("t1", storage)))
    assert "±" not in text and "| adam-elu | adam | elu | no | ours | 1 |" in text
    assert "| adam-elu | Adam | ELU | no | paper | 1 | 0.418 | 0.209 | 0.458 | 238.254 | 400-480 |" in text


def test_table3_golden_has_a_number_in_every_cell(storage, tmp_path):
    failed_run = make_run(tmp_path / "runs", "fc-both", kind="collapse", status="diverged")
    trials = table3_trials()
    for t in trials:
        if t["cell"] == "fc-both":
            t["run_dir"] = failed_run
    make_study(storage, "table3-quick", "table3", trials)
    df = fill_sample_metrics(trials_frame(load_study("table3-quick", storage)))
    row = df.set_index("cell").loc["fc-both"]
    assert row["filled"] and 0 <= row["blockiness"] <= 1  # scored from its last sample grid
    tf = tables.table3_frame(df)
    assert tf["blockiness"].map(lambda c: c.n).min() == 1  # every cell has a blockiness
    text = tables.table3_markdown(df)
    assert "not run" not in text
    check_golden("table3.md", text)


def test_memory_tables_golden():
    mf = tables.memory_rows_frame(memory_rows())
    assert len(mf) == 20 and mf["ratio"].round(3).eq(0.95).all()
    bf = tables.bn_savings_frame(mf)
    assert len(bf) == 10
    assert bf["saving_measured_pct"].to_numpy() == pytest.approx(100 * 0.03 / 1.03, abs=1e-3)
    gf = tables.growth_frame(mf)
    measured = gf[gf["quantity"] == "measured"]
    assert measured["power_exponent"].to_numpy() == pytest.approx(1.5, abs=0.02)
    assert set(measured["better"]) == {"power"}
    check_golden("memory.md", tables.memory_markdown(mf))
    check_golden("bn_saving.md", tables.bn_savings_markdown(mf))
    check_golden("growth.md", tables.growth_markdown(mf))


def test_memory_frame_from_trials_and_bn_pairs(storage):
    trials = []
    for bn, peak in (("both", 1030), ("d", 1000), ("g", 530), ("none", 500)):
        trials.append({"cell": f"bn-{bn}", "params": {"batchnorm": bn},
                       "config": __import__("report_fixtures").config(f"bn-{bn}", batchnorm=bn),
                       "metrics": {"d_loss_mean": 1.0},
                       "memory": {"measured_peak_bytes": peak * 1024,
                                  "estimate_bytes": peak * 1000, "device": "cpu"}})
    make_study(storage, "bn", "batchnorm", trials)
    mf = tables.memory_frame(trials_frame(load_study("bn", storage)))
    assert list(mf["batchnorm"]) == ["both", "d", "g", "none"]
    bf = tables.bn_savings_frame(mf).set_index("with")
    assert bf.loc["bn-both", "without"] == "bn-d"
    assert bf.loc["bn-both", "saving_measured_pct"] == pytest.approx(100 * 30 / 1030)
    assert bf.loc["bn-g", "saving_measured_pct"] == pytest.approx(100 * 30 / 530)


def test_runs_frame_reads_run_folders(tmp_path):
    make_run(tmp_path, "a", metrics={"d_loss_mean": 0.5, "fid": 90.0})
    make_run(tmp_path, "b")  # no metrics in its summary: computed from the folder
    df = runs_frame([tmp_path]).set_index("cell")
    assert df.loc["a", "fid"] == 90.0 and df.loc["a", "status"] == "completed"
    assert df.loc["b", "d_loss_mean"] == pytest.approx(pd.read_csv(
        tmp_path / "0002-b" / "metrics.csv")["loss_d"].mean())
    assert df.loc["b", "t0"] == 100.0  # the fixture's low phase spans 20 points of 5 steps
