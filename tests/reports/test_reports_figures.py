"""Figures: each is a non-empty PNG and plots the series it claims (checked from the data the
figure function returns)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from report_fixtures import losses, make_run, memory_rows

from xraygan import runs
from xraygan.metrics.dynamics import find_t0
from xraygan.reports import figures, tables

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
    # no low phase, but 295 iterations are too few to have trained (t0_phase's min_steps)
    assert np.isnan(data.attrs["t0"]["adam"])
    # an explicit T0 is marked as given
    assert figures.loss_curves({"adas": a}, out, t0={"adas": 55.0}).attrs["t0"] == {"adas": 55.0}
    with pytest.raises(figures.FigureUnavailable, match="no completed run has a loss log"):
        figures.loss_curves({}, out)


def test_loss_curves_give_each_run_its_own_x_axis_and_smooth_the_losses(tmp_path):
    short = make_run(tmp_path, "short", kind="flat", points=60)  # steps 0..295
    long = make_run(tmp_path, "long", kind="flat", points=600)  # steps 0..2995
    data = figures.loss_curves({"short": short, "long": long}, tmp_path / "l.png")
    xlim = data.attrs["xlim"]
    assert xlim["short"][1] < 400 and xlim["long"][1] > 2900  # not squashed by the long run
    d = data[(data["label"] == "long") & (data["net"] == "D")]
    raw, smooth = d["loss"].to_numpy(), d["loss_ema"].to_numpy()
    assert smooth[0] == pytest.approx(raw[0])  # bias-corrected start
    assert np.std(np.diff(smooth)) < 0.2 * np.std(np.diff(raw))  # smoother than the raw log
    assert abs(smooth[-100:].mean() - raw[-100:].mean()) < 0.02  # and unbiased
    assert d["progress"].iloc[-1] == 1.0 and d["progress"].iloc[0] == 0.0


def test_ema_matches_its_definition():
    x = np.array([1.0, 0.0, 0.0, np.nan, 0.0])
    w = 0.5  # halflife 1 point: weight (1/2)^k of the point k steps back
    got = figures.ema(x, halflife=1.0)
    assert got[0] == 1.0
    assert got[1] == pytest.approx(w / (1 + w))  # (0 + 0.5 * 1) / (1 + 0.5)
    assert np.isfinite(got).all()  # a NaN point is skipped, not propagated


def test_correlation_figure_draws_configuration_means(tmp_path):
    table = pd.DataFrame({"group": ["a", "a", "b", "b", "c", "c"],
                          "fid": [100.0, 110.0, 240.0, 250.0, 120.0, 130.0],
                          "d_loss_mean": [0.8, 0.9, 0.4, 0.5, 1.1, 1.2]})
    out = tmp_path / "corr.png"
    m = figures.correlation_figure(table, out)
    assert is_png(out)
    # one point per configuration: the means, not the runs pooled
    assert list(m["group"]) == ["a", "b", "c"] and list(m["n"]) == [2, 2, 2]
    np.testing.assert_allclose(m["fid"], [105.0, 245.0, 125.0])
    np.testing.assert_allclose(m["d_loss_mean"], [0.85, 0.45, 1.15])
    # missing figures say why in words, by the same rule as the correlation table
    with pytest.raises(figures.FigureUnavailable,
                       match="needs an FID for at least 3 completed runs; 2 of 2 have one"):
        figures.correlation_figure(table.head(2), out)
    no_fid = table.assign(fid=float("nan"))
    with pytest.raises(figures.FigureUnavailable, match="0 of 6 have one"):
        figures.correlation_figure(no_fid, out)
    with pytest.raises(figures.FigureUnavailable, match="fewer than two configurations"):
        figures.correlation_figure(table.assign(group="a"), out)
    assert tables.correlation_markdown(no_fid.assign(status="completed")).startswith("Fewer than three")


def test_sample_grids_take_each_runs_last_grid(tmp_path):
    a = make_run(tmp_path, "a")
    b = make_run(tmp_path, "b")
    out = tmp_path / "samples.png"
    data = figures.sample_grids({"a": a, "b": b}, out)
    assert is_png(out)
    assert list(data["label"]) == ["a", "b"] and list(data["step"]) == [295, 295]
    assert data["path"].iloc[0] == str(runs.sample_path(a, 295))
    assert list(figures.sample_grids({"a": a}, out, step=100)["step"]) == [100]
    # the run's real images, laid out like its sample grid, as the first panel
    real = figures.real_grid(a)
    grid = np.asarray(Image.open(runs.sample_path(a, 295)))
    assert real is not None and real.shape == grid.shape and real.dtype == np.uint8
    assert figures.sample_grids({"a": a}, out, real=real).attrs["real"] is True
    with pytest.raises(figures.FigureUnavailable, match="no run has a sample grid at step 7"):
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
    with pytest.raises(figures.FigureUnavailable, match="no mode collapse was detected"):
        figures.collapse_curves(make_run(tmp_path, "flat", kind="flat"), out)
