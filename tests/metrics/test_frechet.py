"""Fréchet distance vs pytorch-fid's calculate_frechet_distance, and KID."""

import warnings

import numpy as np
import pytest
from pytorch_fid.fid_score import calculate_frechet_distance as reference

from xraygan.metrics.frechet import (
    FewSamplesWarning,
    frechet_distance,
    psd_factor,
    trace_sqrt_product,
    warn_if_few_samples,
)
from xraygan.metrics.kid import kernel_inception_distance, polynomial_mmd2_unbiased


def _stats(rng, n, d, scale=1.0, shift=0.0):
    # ReLU-like non-negative correlated features, as Inception pool3 gives
    x = np.abs(rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) * scale / np.sqrt(d)) + shift
    return x.mean(0), np.cov(x, rowvar=False)


@pytest.mark.parametrize(
    "d,n1,n2",
    [(16, 500, 400), (64, 1000, 800), (256, 600, 700), (256, 100, 300), (256, 50, 40), (128, 3, 200)],
)
def test_matches_pytorch_fid(d, n1, n2):
    rng = np.random.default_rng(d + n1 + n2)
    m1, s1 = _stats(rng, n1, d)
    m2, s2 = _stats(rng, n2, d, 1.3, 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = reference(m1, s1, m2, s2)
    got = frechet_distance(m1, s1, m2, s2)
    assert got == pytest.approx(want, rel=1e-6)


def trace_sqrt_error_bound(s1, s2) -> float:
    """A bound on the rounding error of tr((s1 s2)^1/2) computed by backward-stable steps
    (pivoted Cholesky, symmetric eigensolver): they perturb each eigenvalue of the d x d
    product by at most about delta = d * eps * lambda_max, and an eigenvalue enters through a
    square root, so its error is delta / (2 sqrt(lambda)) for lambda >> delta and at most
    sqrt(delta) near 0 (the rank-deficient directions). Which kernels a BLAS picks (AVX2,
    AVX-512, another vendor) changes the rounding, not this bound."""
    d = len(s1)
    lam = np.abs(np.linalg.eigvals(s1 @ s2).real)
    delta = d * np.finfo(np.float64).eps * lam.max()
    return float(np.minimum(np.sqrt(delta), delta / (2 * np.sqrt(np.maximum(lam, 1e-300)))).sum())


def test_singular_covariances_are_finite_and_symmetric():
    rng = np.random.default_rng(0)
    m1, s1 = _stats(rng, 20, 128)  # rank 19
    m2, s2 = _stats(rng, 30, 128, 2.0)  # rank 29
    a = frechet_distance(m1, s1, m2, s2)
    b = frechet_distance(m2, s2, m1, s1)
    # each order factors the other matrix: both are within 2 x the trace bound of the truth
    # (FID holds -2 tr(...)), and the plain traces within d * eps of theirs
    d = len(s1)
    tol = 2 * 2 * trace_sqrt_error_bound(s1, s2) + 2 * d * np.finfo(float).eps * (
        np.trace(s1) + np.trace(s2))
    assert np.isfinite(a) and abs(a - b) <= tol
    assert tol < 1e-5 * a  # the bound is tight enough to catch a wrong order of factors
    assert psd_factor(s1).shape == (128, 19)


def test_identical_statistics_give_zero():
    rng = np.random.default_rng(1)
    m, s = _stats(rng, 300, 64)
    # exact 0 minus rounding: 2 x the trace bound (the -2 tr term) and the traces' d * eps
    tol = 2 * trace_sqrt_error_bound(s, s) + 2 * len(s) * np.finfo(float).eps * np.trace(s)
    assert frechet_distance(m, s, m, s) <= tol
    # zero covariance (all samples equal): distance is the squared mean difference
    z = np.zeros((8, 8))
    assert frechet_distance(np.zeros(8), z, np.ones(8), z) == pytest.approx(8.0)


def test_trace_sqrt_of_commuting_diagonals():
    a, b = np.diag([1.0, 4.0, 9.0, 0.0]), np.diag([4.0, 1.0, 1.0, 5.0])
    assert trace_sqrt_product(a, b) == pytest.approx(2 + 2 + 3 + 0)


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.zeros(2), np.array([[np.nan, 0], [0, 1]]), np.zeros(2), np.eye(2))


def test_few_samples_warns():
    with pytest.warns(FewSamplesWarning, match="100 samples < 2048"):
        assert warn_if_few_samples(100, 2048)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_if_few_samples(4096, 2048)


def test_mmd_matches_naive_loop():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((6, 4)), rng.standard_normal((5, 4)) + 0.5
    k = lambda a, b: (a @ b / 4 + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(6) for j in range(6) if i != j) / 30
    yy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / 20
    xy = sum(k(x[i], y[j]) for i in range(6) for j in range(5)) / 30
    assert polynomial_mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy)


def test_kid_unbiased_near_zero_for_same_distribution_and_positive_otherwise():
    rng = np.random.default_rng(3)
    a, b = rng.random((200, 32)), rng.random((200, 32))
    c = rng.random((200, 32)) + 0.3
    same, same_sd = kernel_inception_distance(a, b, num_subsets=20, max_subset_size=100)
    diff, _ = kernel_inception_distance(a, c, num_subsets=20, max_subset_size=100)
    assert abs(same) < 3 * same_sd + 1e-3
    assert diff > 10 * abs(same) and diff > 0


def test_kid_subsets_differ_and_small_sets_give_one_estimate():
    from xraygan.metrics.kid import kid_subset_size

    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((128, 16)), rng.standard_normal((128, 16)) + 0.3
    assert kid_subset_size(128, 128) == 64 and kid_subset_size(2048, 4096) == 1000
    m, sd = kernel_inception_distance(a, b, num_subsets=30)
    assert sd > 0  # subsets of 64 of 128 differ: a real spread, not "+- 0.000000"
    one, nan = kernel_inception_distance(a[:50], b[:50])
    assert np.isnan(nan) and one == pytest.approx(polynomial_mmd2_unbiased(a[:50], b[:50]))


def test_kid_from_whole_set_kernels_equals_kid_subset_by_subset(monkeypatch):
    from xraygan.metrics import kid

    rng = np.random.default_rng(3)
    a, b = rng.random((130, 64)), rng.random((260, 64)) + 0.05
    fast = kid.kernel_inception_distance(a, b, num_subsets=20)
    monkeypatch.setattr(kid, "KERNEL_CACHE_ENTRIES", 0)  # the per-subset path
    slow = kid.kernel_inception_distance(a, b, num_subsets=20)
    assert fast == pytest.approx(slow, rel=1e-9) and fast[0] > 0
