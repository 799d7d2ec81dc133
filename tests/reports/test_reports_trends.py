"""Quality against width: Spearman trend per metric and image size, and its figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from xraygan.reports import trends
from xraygan.reports.figures import FigureUnavailable


def frame(widths=(8, 16, 32, 64), seeds=3, sizes=(16, 32)):
    rng = np.random.default_rng(0)
    rows = []
    for size in sizes:
        for w in widths:
            for s in range(seeds):
                rows.append({"status": "completed", "image_size": size, "g_features": w, "seed": s,
                             "fid": 300.0 - 3 * w + rng.normal(0, 2),  # falls: better
                             "recall": 0.01 * w + rng.normal(0, 0.01),  # rises: better
                             "hf_deficit": rng.normal(0, 1.0)})  # noise: no trend
    rows.append({"status": "failed", "image_size": 16, "g_features": 128, "fid": 1e6})
    return pd.DataFrame(rows)


def test_trend_frame_finds_the_direction_of_each_metric():
    tf = trends.trend_frame(frame()).set_index(["image_size", "column"])
    fid = tf.loc[(16, "fid")]
    assert fid["n"] == 12 and fid["widths"] == 4  # the failed trial is not counted
    assert fid["spearman_rho"] < -0.9 and fid["p"] < 0.001
    assert fid["at_min"] == pytest.approx(300 - 24, abs=3) and fid["max_width"] == 64
    assert tf.loc[(32, "recall"), "spearman_rho"] > 0.9
    assert abs(tf.loc[(16, "hf_deficit"), "spearman_rho"]) < 0.7
    assert "precision" not in tf.index.get_level_values("column")  # not measured: no row


def test_trend_markdown_says_better_worse_or_no_trend():
    md = trends.trend_markdown(frame())
    assert "| 16 | FID | 12 |" in md and "falls with width (better)" in md
    assert "rises with width (better)" in md
    worse = frame()
    worse["fid"] = 100 + 3 * worse["g_features"]
    assert "rises with width (worse)" in trends.trend_markdown(worse)
    assert "Fewer than 3 widths" in trends.trend_markdown(frame(widths=(8, 16)))


def test_quality_vs_width_draws_one_panel_per_metric(tmp_path):
    data = trends.quality_vs_width(frame(), tmp_path / "q.png")
    assert set(data["metric"]) == {"FID", "recall", "HF deficit"}
    assert set(data["image_size"]) == {"16 px", "32 px"} and len(data) == 3 * 24
    w, h = Image.open(tmp_path / "q.png").size
    assert w > 2 * h  # three panels side by side
    with pytest.raises(FigureUnavailable):
        trends.quality_vs_width(frame(widths=(8,)), tmp_path / "none.png")


def test_fmaps_page_has_the_quality_trend_section():
    from xraygan.reports.build import SECTIONS, study_sections

    names, _ = study_sections("fmaps")
    assert "quality_trend" in names and "quality_trend" in SECTIONS
