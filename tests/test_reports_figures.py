"""Figures: each is a non-empty PNG and plots the series it claims (checked from the data the
figure function returns)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from report_fixtures import losses, make_run, memory_rows

from gan_core import runs
from gan_core.metrics.correlation import correlation_matrices
from gan_core.metrics.dynamics import find_t0
from reports import figures, tables

PNG = b"\x89PNG\r\n\x1a\n"


def is_png(path) -> bool:
    data = path.read_bytes()
    return len(data) > 1000 and data[:8] == PNG


def test_loss_curves_plot_each_runs_losses_and_t0(tmp_path):
    a = make_run(tmp_path, "adas", kind="t0", seed=0)
    b = make_run(tmp_path, "adam", kind="flat", seed=1)
    out = tmp_path / "fig" / "losses.png"
    data = figures.loss_curves({"adas": a, "adam": b}, out)
    assert is_png(out)
    d = data[(data["label"] == "adas") & (data["net"] == "D")]
    np.testing.assert_allclose(d["loss"].to_numpy(), losses("t0", seed=0)[0], rtol=1e-6)
    g = data[(data["label"] == "adam") & (data["net"] == "G")]
    np.testing.assert_allclose(g["loss"].to_numpy(), losses("flat", seed=1)[1], rtol=1e-6)
    log = runs.read_metrics(a)
    assert data.attrs["t0"]["adas"] == find_t0(log["step"], log["loss_d"]) == 100.0
    assert data.attrs["t0"]["adam"] == 0.0  # no low phase: T0 is the first step
    # an explicit T0 is marked as given
    assert figures.loss_curves({"adas": a}, out, t0={"adas": 55.0}).attrs["t0"] == {"adas": 55.0}


def test_correlation_figure_draws_the_pearson_matrix(tmp_path):
    table = pd.DataFrame({"fid": [100.0, 240.0, 101.0, 112.0],
                          "d_loss_mean": [0.845, 0.418, 1.185, 1.135],
                          "d_loss_var": [0.637, 0.209, 4.066, 0.970],
                          "d_loss_std": [0.798, 0.458, 2.016, 0.985]})
    out = tmp_path / "corr.png"
    m = figures.correlation_figure(table, out)
    assert is_png(out)
    pd.testing.assert_frame_equal(m, correlation_matrices(table)[0])
    assert m.loc["fid", "d_loss_mean"] < -0.8  # the paper's Table I reading
    with pytest.raises(ValueError, match="3 runs"):
        figures.correlation_figure(table.head(2), out)


def test_sample_grids_take_each_runs_last_grid(tmp_path):
    a = make_run(tmp_path, "a")
    b = make_run(tmp_path, "b")
    out = tmp_path / "samples.png"
    data = figures.sample_grids({"a": a, "b": b}, out)
    assert is_png(out)
    assert list(data["label"]) == ["a", "b"] and list(data["step"]) == [295, 295]
    assert data["path"].iloc[0] == str(runs.sample_path(a, 295))
    assert list(figures.sample_grids({"a": a}, out, step=100)["step"]) == [100]
    with pytest.raises(ValueError, match="no run has a sample grid"):
        figures.sample_grids({"a": a}, out, step=7)


def test_memory_vs_width_plots_estimated_and_measured(tmp_path):
    mf = tables.memory_rows_frame(memory_rows())
    out = tmp_path / "mem.png"
    data = figures.memory_vs_width(mf, out)
    assert is_png(out)
    assert len(data) == 2 * len(mf)
    assert set(data["kind"]) == {"estimated", "measured"}
    assert set(data["image_size"]) == {16, 32} and set(data["batchnorm"]) == {"BN both", "BN d"}
    sel = data[(data["kind"] == "measured") & (data["image_size"] == 32)
               & (data["batchnorm"] == "BN d")]
    expected = mf[(mf["image_size"] == 32) & (mf["batchnorm"] == "d")]["measured_mib"]
    np.testing.assert_allclose(sel["mib"].to_numpy(), np.sort(expected.to_numpy()))
    with pytest.raises(ValueError):
        figures.memory_vs_width(mf.iloc[:0], out)


def test_collapse_curves_show_the_window_after_the_onset(tmp_path):
    run = make_run(tmp_path, "collapse", kind="collapse")
    out = tmp_path / "collapse.png"
    data = figures.collapse_curves(run, out)
    assert is_png(out)
    onset = data.attrs["onset"]
    # the fixture's losses rise as e^{0.15 k} from logged point 30 (step 150); the onset is
    # where both pass 1.5x their baseline: k = ln 1.5 / 0.15 = 2.7, i.e. step 165
    assert 150 <= onset <= 175
    assert data["step"].min() >= onset / 2 and data["step"].max() == 295
    assert set(data["net"]) == {"D", "G"}
    with pytest.raises(ValueError, match="no collapse"):
        figures.collapse_curves(make_run(tmp_path, "flat", kind="flat"), out)
