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

from xraygan.claims.stats import fmt, mean_ci
from xraygan.reports import tables
from xraygan.reports.load import fill_sample_metrics, load_study, runs_frame, trials_frame


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
    # speed only beside how it was measured
    timed = tables.throughput_markdown(df, "during the sweep, 2 workers training at once")
    assert timed.startswith("Speed measured during the sweep, 2 workers training at once.")
    assert "| 50.0 ± 0.0 | 8.0 ± 0.0 |" in timed
    assert "Images/s" not in tables.throughput_markdown(df)


def test_table1_single_run_shows_values_without_interval(storage):
    make_study(storage, "t1", "table1", [t for t in table1_trials(seeds=1)])
    text = tables.table1_markdown(trials_frame(load_study("t1", storage)))
    assert "±" not in text and "| adam-elu | Adam | ELU | no | ours | 1 |" in text
    assert "| adam-elu | Adam | ELU | no | paper | 1 | 0.418 | 0.209 | 0.458 | 238.3 | 400-480 |" in text
    # one naming style: our rows name optimizers and activations as the paper's rows do
    assert "| adas-dcgan | AdaS | ReLU/LeakyReLU | no | ours |" in text
    assert "adas |" not in text and "leaky_relu" not in text


def test_fmt_value_one_precision_per_kind():
    assert tables.fmt_value(104.552, "fid") == "104.6" and tables.fmt_value(238.254, "fid") == "238.3"
    assert tables.fmt_value(0.8454, "d_loss_mean") == "0.845"  # a column name picks its kind
    assert tables.fmt_value(0.0, "seed") == "0" and tables.fmt_value(2.0, "seed") == "2"
    assert tables.fmt_value(152.4, "t0") == "152" and tables.fmt_value(12345, "count") == "12,345"
    assert tables.fmt_value(0.0004, "p") == "< 0.001" and tables.fmt_value(0.0123, "p") == "0.012"
    assert tables.fmt_value(float("nan"), "fid") == "—" and tables.fmt_value(None, "fid") == "—"
    assert tables.fmt_value(True) == "yes" and tables.fmt_value("adam") == "adam"
    assert tables.fmt_ci_value(mean_ci([104.0, 110.0, 98.0]), "fid") == "104.0 ± 14.9"
    assert tables.fmt_ci_value(mean_ci([104.0]), "fid") == "104.0"
    assert tables.display_name("leaky_relu") == "LeakyReLU" and tables.display_name("adas") == "AdaS"
    assert tables.activation_label("relu", "leaky_relu") == "ReLU/LeakyReLU"
    assert tables.activation_label("elu", "elu") == "ELU"


def test_trials_table_one_row_per_cell_with_attempts_and_integer_seeds(storage):
    trials = table1_trials(seeds=1)
    killed = dict(trials[0], status="running", failure="")  # a dead worker's attempt
    dup = dict(trials[1], status="duplicate", failure="cell adam-elu-s0 is covered by trial 2")
    nan_seed = dict(trials[3], cell="extra", seed=None)  # a float column: 0.0, NaN
    make_study(storage, "t1", "table1", [killed, dup, trials[0], trials[1], trials[2], nan_seed])
    df = trials_frame(load_study("t1", storage))
    cells = tables.cells_frame(df)
    assert list(cells["cell"]) == ["adas-elu-s0", "adam-elu-s0", "adas-elu-ttur-s0", "extra"]
    assert list(cells["attempts"]) == [2, 2, 1, 1]
    assert list(cells["trial"]) == [2, 3, 4, 5]  # the completed attempt speaks for its cell
    text = tables.trials_markdown(df)
    assert "| 2 | adas-elu-s0 | 0 | completed | 2 | fid = 104.0 | 10.0 | earlier attempts: killed |" in text
    assert "| 3 | adam-elu-s0 | 0 | completed | 2 | fid = 230.0 |" in text
    assert "0.000" not in text and "| 5 | extra | — |" in text
    assert text.count("adas-elu-s0") == 1
    # and Table I's note lists no cell as not completed: each finally completed
    assert "not completed" not in tables.table1_markdown(df)


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


def test_runs_frame_keeps_a_damaged_run_marked(tmp_path):
    make_run(tmp_path, "a", metrics={"d_loss_mean": 0.5, "fid": 90.0})
    make_run(tmp_path, "b")
    (tmp_path / "0002-b" / "metrics.csv").write_bytes(b"\x00\xff" * 100)
    with pytest.warns(UserWarning, match="0002-b.*metrics.csv"):
        df = runs_frame([tmp_path]).set_index("cell")
    assert df.loc["a", "fid"] == 90.0
    assert df.loc["b", "notes"].startswith("damaged: ") and "metrics.csv" in df.loc["b", "notes"]
