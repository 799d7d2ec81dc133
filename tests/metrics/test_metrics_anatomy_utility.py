"""Anatomy distributions (W1, KS with intervals) and the downstream utility test, on data with
known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xraygan.data.imageops import to_uint8
from xraygan.data.phantom import PhantomSeries, generate_phantoms, phantom_anatomy
from xraygan.metrics.anatomy import measure_anatomy
from xraygan.metrics.anatomy_compare import anatomy_distances, bootstrap_interval, ks, w1
from xraygan.metrics.utility import (
    UtilitySettings,
    auroc,
    synthetic_labels,
    utility,
    utility_scores,
)


def _measures(ctr: np.ndarray, plausible: np.ndarray | None = None) -> dict[str, np.ndarray]:
    p = np.ones(len(ctr)) if plausible is None else plausible
    return {"ctr": np.where(p == 1, ctr, np.nan), "lung_area": np.where(p == 1, 0.2, np.nan) + 0 * ctr,
            "plausible": p}


def test_w1_and_ks_known_values():
    a = np.zeros(50)
    assert w1(a, a + 0.1) == pytest.approx(0.1) and ks(a, a + 0.1) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 1, 400), rng.normal(0.5, 1, 400)
    lo, hi = bootstrap_interval(w1, x, y, n=200)
    assert lo < w1(x, y) < hi and lo > 0.2 and hi < 0.8  # the true W1 is 0.5


def test_anatomy_distances_separate_shifted_from_same():
    rng = np.random.default_rng(1)
    real = _measures(rng.normal(0.45, 0.05, 300))
    same = _measures(rng.normal(0.45, 0.05, 300))
    shifted = _measures(rng.normal(0.55, 0.05, 300))
    d_same, d_shift = anatomy_distances(same, real), anatomy_distances(shifted, real)
    assert d_same["anat_ctr_w1_hi"] < d_shift["anat_ctr_w1_lo"]
    assert d_shift["anat_ctr_w1"] == pytest.approx(0.1, abs=0.015)
    assert d_same["anat_ctr_w1"] < 3 * d_same["anat_ctr_w1_null"] + 0.01  # near the noise floor
    assert d_shift["anat_ctr_ks"] > 0.5 > d_same["anat_ctr_ks"]


def test_implausible_share_and_too_few_measured():
    real = _measures(np.full(20, 0.45))
    broken = _measures(np.full(20, 0.45), plausible=np.r_[np.zeros(17), np.ones(3)])
    d = anatomy_distances(broken, real)
    assert d["anat_implausible"] == pytest.approx(0.85) and d["anat_real_implausible"] == 0
    assert np.isnan(d["anat_ctr_w1"]) and np.isnan(d["anat_ctr_ks_hi"])


def test_anatomy_distance_sees_a_wrong_heart_on_phantoms():
    """Known answer: phantoms with cardiomegaly everywhere against a 30 % series differ in CTR,
    two draws of the same series do not."""
    real = measure_anatomy(generate_phantoms(64, 32, 0, series=PhantomSeries.parse("v2")))
    same = measure_anatomy(generate_phantoms(64, 32, 1, series=PhantomSeries.parse("v2")))
    big = measure_anatomy(generate_phantoms(64, 32, 1, series=PhantomSeries(version=2, cardiomegaly=1.0)))
    assert anatomy_distances(big, real)["anat_ctr_w1_lo"] > anatomy_distances(same, real)["anat_ctr_w1"]


def test_auroc_known_values():
    y = np.array([0, 0, 1, 1])
    assert auroc(np.array([0.1, 0.2, 0.8, 0.9]), y) == 1.0
    assert auroc(np.array([0.9, 0.8, 0.2, 0.1]), y) == 0.0
    assert auroc(np.array([0.5, 0.5, 0.5, 0.5]), y) == 0.5  # ties count half
    assert auroc(np.array([0.1, 0.4, 0.35, 0.8]), y) == 0.75
    assert np.isnan(auroc(np.array([0.1, 0.2]), np.array([1, 1])))


def test_utility_scores_paired_gap_interval():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    good = y + rng.normal(0, 0.5, 300)
    s = UtilitySettings(bootstrap=300)
    out = utility_scores({"real": good, "synthetic": good.copy(), "mixed": rng.normal(size=300)}, y, s)
    assert out["util_gap_synthetic"] == 0 and out["util_gap_synthetic_lo"] == 0  # identical scores
    assert out["util_gap_mixed_hi"] < -0.2  # random scores lose about 0.4 of AUROC
    assert out["util_auroc_real_lo"] < out["util_auroc_real"] < out["util_auroc_real_hi"]


def _phantoms(n: int, start: int, series: PhantomSeries, size: int = 32):
    imgs = torch.from_numpy(to_uint8(generate_phantoms(n, size, 0, start=start, series=series)))[:, None]
    return imgs, phantom_anatomy(n, 0, start=start, series=series)["cardiomegaly"]


def test_utility_known_answers_on_phantoms():
    """A classifier trained on labelled phantoms beats chance on held-out ones; one trained on
    the same images with every label inverted learns the opposite (AUROC below 0.5, a negative
    gap with its whole interval); the measurer labels phantoms as their generator did."""
    series = PhantomSeries(version=2, cardiomegaly=0.5)
    real, y_real = _phantoms(192, 0, series)
    test, y_test = _phantoms(96, 1000, series)
    lines: list[str] = []
    out = utility(real, y_real, real.clone(), 1.0 - y_real, test, y_test,
                  UtilitySettings(epochs=12, bootstrap=200), echo=lines.append,
                  real_measured=(real, y_real))
    assert out["util_auroc_real"] > 0.75
    assert out["util_gap_real_measured"] == 0  # same images, labels, seed: the same classifier
    assert out["util_auroc_synthetic"] < 0.3
    assert out["util_gap_synthetic_hi"] < 0
    assert out["util_n_real"] == 192 and out["util_real_positive"] == pytest.approx(y_real.mean())
    assert len(lines) == 4 and all("AUROC" in ln for ln in lines)
    y_meas, kept = synthetic_labels(real, "cardiomegaly")
    assert kept.mean() > 0.85 and (y_meas == y_real[kept]).mean() > 0.75  # 32 px: ~80 %


def test_one_class_training_set_is_a_constant_classifier():
    series = PhantomSeries(version=2, cardiomegaly=0.5)
    real, y_real = _phantoms(32, 0, series)
    test, y_test = _phantoms(32, 500, series)
    out = utility(real, y_real, real[:8], np.zeros(8), test, y_test, UtilitySettings(epochs=1, bootstrap=20))
    assert out["util_auroc_synthetic"] == 0.5 == out["util_auroc_synthetic_lo"]
    assert out["util_gap_synthetic"] == pytest.approx(0.5 - out["util_auroc_real"])
    assert np.isfinite(out["util_auroc_mixed"])
