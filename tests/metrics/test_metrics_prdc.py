"""k-NN geometry and precision/recall/density/coverage, on small synthetic feature arrays."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from xraygan.metrics.knn import block_rows, distance_blocks, kth_neighbour_radii, nearest
from xraygan.metrics.prdc import prdc


def _brute_prdc(real, fake, k):
    """The reference prdc package's formulas, on full distance matrices."""
    drr, dff, drf = cdist(real, real), cdist(fake, fake), cdist(real, fake)
    rr = np.sort(drr, axis=1)[:, k]  # index 0 is the point itself
    rf = np.sort(dff, axis=1)[:, k]
    return {
        "precision": (drf < rr[:, None]).any(axis=0).mean(),
        "recall": (drf < rf[None, :]).any(axis=1).mean(),
        "density": (1 / k) * (drf < rr[:, None]).sum(axis=0).mean(),
        "coverage": (drf.min(axis=1) < rr).mean(),
    }


@pytest.mark.parametrize("budget", [8 * 7 * 3, 1 << 20])  # 3-row blocks, and one block
def test_radii_and_nearest_match_brute_force(budget):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 7)), rng.standard_normal((23, 7))
    d = cdist(x, x)
    for k in (1, 3, 5):
        np.testing.assert_allclose(kth_neighbour_radii(x, k, budget_bytes=budget),
                                   np.sort(d, axis=1)[:, k], rtol=1e-9)
    dist, idx = nearest(y, x, budget_bytes=budget)
    np.testing.assert_array_equal(idx, cdist(y, x).argmin(1))
    np.testing.assert_allclose(dist, cdist(y, x).min(1), rtol=1e-9)
    blocks = list(distance_blocks(x, y, budget_bytes=budget))
    assert sum(len(b) for _, b in blocks) == 40
    assert max(b.nbytes for _, b in blocks) <= max(budget, 8 * 23)


def test_block_rows_bound_memory():
    assert block_rows(10_000, 64 << 20) == 838  # 838 x 10,000 x 8 bytes <= 64 MiB
    assert block_rows(10**9, 1) == 1


@pytest.mark.parametrize("k", [2, 5])
def test_prdc_equals_the_reference_formulas(k):
    rng = np.random.default_rng(1)
    real, fake = rng.standard_normal((60, 5)), rng.standard_normal((45, 5)) * 1.3 + 0.4
    got = prdc(real, fake, k, budget_bytes=8 * 60 * 4)
    for key, want in _brute_prdc(real, fake, k).items():
        assert got[key] == pytest.approx(want, abs=1e-12), key


def test_held_out_real_scores_high_on_all_four():
    rng = np.random.default_rng(2)
    m = prdc(rng.standard_normal((500, 8)), rng.standard_normal((500, 8)))
    assert m["precision"] > 0.8 and m["recall"] > 0.8 and m["coverage"] > 0.8
    assert 0.8 < m["density"] < 1.2


def test_one_image_repeated_has_precision_but_no_recall_or_coverage():
    rng = np.random.default_rng(3)
    real = rng.standard_normal((400, 8))
    fake = np.repeat(real[:1] * 0.5, 300, axis=0)  # a typical image, drawn 300 times
    m = prdc(real, fake)
    assert m["precision"] == 1.0
    assert m["recall"] == 0.0 and m["coverage"] < 0.05


def test_gaussian_noise_has_no_precision():
    rng = np.random.default_rng(4)
    real = np.abs(rng.standard_normal((400, 16))) * 0.2 + 1.0  # a tight real manifold
    noise = rng.standard_normal((400, 16)) * 3.0
    m = prdc(real, noise)
    assert m["precision"] < 0.05 and m["coverage"] < 0.05


def test_prdc_needs_more_than_k_samples():
    with pytest.raises(ValueError, match="more than k=5"):
        prdc(np.zeros((5, 3)), np.zeros((10, 3)))


def test_prdc_of_compares_equal_sets():
    """Coverage's expectation assumes as many real as generated images: the larger set is
    subsampled (deterministically) and the sizes recorded for the claims' precondition."""
    from types import SimpleNamespace

    from xraygan.metrics.compare import prdc_of

    rng = np.random.default_rng(0)
    real = SimpleNamespace(features=rng.normal(size=(400, 8)))
    fake = SimpleNamespace(features=rng.normal(size=(100, 8)))
    m = prdc_of(fake, real, [], 5)
    assert m["prdc_n_real"] == m["prdc_n_fake"] == 100
    assert m == prdc_of(fake, real, [], 5)  # the same subsample every time
    # one distribution, equal sets: coverage near its expectation 1 - 1/2^5
    assert 0.85 < m["coverage"] <= 1.0
