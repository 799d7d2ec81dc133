"""FID_inf (xraygan.metrics.fid_infinity): the same Fréchet distance as frechet.py, and an
extrapolation that removes most of the sample-size bias where the true FID is known."""

import numpy as np
import pytest

from xraygan.metrics.features import FeatureStats
from xraygan.metrics.fid_infinity import (
    default_ns,
    fid_infinity,
    fid_of_features,
)
from xraygan.metrics.frechet import frechet_distance


def gaussian_fid(mu: np.ndarray, sd1: np.ndarray, sd2: np.ndarray) -> float:
    """Exact FID of N(mu, diag(sd1^2)) against N(0, diag(sd2^2))."""
    return float(mu @ mu + ((sd1 - sd2) ** 2).sum())


def test_fid_of_features_equals_frechet_distance():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 24)) @ rng.normal(size=(24, 24))
    gen = rng.normal(0.5, 1.2, size=(60, 24))  # fewer samples than dims: singular covariance
    want = frechet_distance(gen.mean(0), np.cov(gen, rowvar=False), real.mean(0),
                            np.cov(real, rowvar=False))
    assert fid_of_features(real, gen) == pytest.approx(want, rel=1e-6)  # pstrf rank cut
    # the reference as statistics, as a FeatureStats, or as raw features: one answer
    stats = FeatureStats(dims=24)
    stats.update(real)
    assert fid_of_features(stats, gen) == pytest.approx(want, rel=1e-6)
    assert fid_of_features((real.mean(0), np.cov(real, rowvar=False)), gen) == pytest.approx(want)


def test_extrapolation_removes_most_of_the_bias():
    # Decaying spectrum (as Inception features have), true statistics of the reference given
    # exactly: FID at N is biased upwards; FID_inf from the same samples lands near the truth.
    d, n = 16, 128
    sd2 = 1.0 / np.sqrt(1 + np.arange(d))
    sd1 = 1.3 * sd2
    mu = np.full(d, 0.05)
    true = gaussian_fid(mu, sd1, sd2)
    rng = np.random.default_rng(1)
    at_n, inf = [], []
    for rep in range(10):
        gen = mu + rng.normal(size=(n, d)) * sd1
        r = fid_infinity((np.zeros(d), np.diag(sd2**2)), gen, reps=2, seed=rep)
        at_n.append(r.fid_at_max)
        inf.append(r.value)
        assert r.slope > 0  # fewer samples, higher FID
    bias_n, bias_inf = np.mean(at_n) - true, np.mean(inf) - true
    assert bias_n > 0.05 * true
    assert abs(bias_inf) < bias_n / 3


def test_linear_data_give_their_intercept_exactly():
    # If FID_N were exactly a + k/N the fit returns a: check the fit, not the statistics, by
    # the r2 and the reported points.
    rng = np.random.default_rng(2)
    real = rng.normal(size=(500, 8))
    gen = rng.normal(0.2, 1.0, size=(200, 8))
    r = fid_infinity(real, gen, ns=(50, 100, 200))
    x = 1.0 / np.asarray(r.ns)
    k, a = np.polyfit(x, r.fids, 1)
    assert (r.value, r.slope) == pytest.approx((a, k))
    assert r.ns == (50, 100, 200) and r.fid_at_max == pytest.approx(fid_of_features(real, gen))
    assert -1.0 <= r.r2 <= 1.0
    assert fid_infinity(real, gen, ns=(50, 100, 200)) == r  # seeded


def test_default_ns_are_even_in_one_over_n():
    ns = default_ns(512)
    assert ns[0] == 128 and ns[-1] == 512 and len(ns) == 8
    inv = 1.0 / np.asarray(ns)
    assert np.allclose(np.diff(inv), np.diff(inv)[0], rtol=0.06)  # rounded to integers


@pytest.mark.parametrize("gen, ns, message", [
    (np.zeros((10, 4)), None, "at least 16"),
    (np.zeros((40, 3)), None, r"expected \(n, 4\)"),
    (np.zeros((40, 4)), (20,), "at least 2 subset sizes"),
    (np.zeros((40, 4)), (20, 80), r"in \[2, 40\]"),
])
def test_bad_input_is_named(gen, ns, message):
    real = np.random.default_rng(0).normal(size=(50, 4))
    with pytest.raises(ValueError, match=message):
        fid_infinity(real, gen, ns=ns)
