"""Correlation matrices between FID and D-loss statistics across runs."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from xraygan.metrics.correlation import correlation_matrices, correlations_with

# Table I of the paper: its four runs
TABLE_I = pd.DataFrame(
    {
        "d_loss_mean": [0.845, 0.418, 1.185, 1.135],
        "d_loss_var": [0.637, 0.209, 4.066, 0.970],
        "d_loss_std": [0.798, 0.458, 2.016, 0.985],
        "fid": [104.552, 238.254, 100.581, 111.882],
    }
)


def test_matrices_match_numpy_and_scipy():
    pearson, spearman = correlation_matrices(TABLE_I)
    assert list(pearson.columns) == ["fid", "d_loss_mean", "d_loss_var", "d_loss_std"]
    r = np.corrcoef(TABLE_I["fid"], TABLE_I["d_loss_mean"])[0, 1]
    assert pearson.loc["fid", "d_loss_mean"] == pytest.approx(r)
    assert r < -0.9  # the paper's claim: strong inverse correlation of mean D loss with FID
    rho = stats.spearmanr(TABLE_I["fid"], TABLE_I["d_loss_var"]).statistic
    assert spearman.loc["fid", "d_loss_var"] == pytest.approx(rho)
    assert np.allclose(np.diag(pearson), 1.0)


def test_correlations_with_fid_and_small_samples():
    t = correlations_with(TABLE_I)
    assert list(t["metric"]) == ["d_loss_mean", "d_loss_var", "d_loss_std"]
    row = t.set_index("metric").loc["d_loss_mean"]
    assert row["n"] == 4 and 0 < row["pearson_p"] < 0.1
    assert correlations_with(TABLE_I.iloc[:2])["pearson_r"].isna().all()


def test_missing_columns_are_left_out():
    pearson, _ = correlation_matrices(TABLE_I.drop(columns=["fid"]))
    assert "fid" not in pearson.columns and pearson.shape == (3, 3)
