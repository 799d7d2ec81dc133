"""Mode collapse: sample diversity and the exploding-loss signature."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist

from xraygan.data.imageops import to_uint8
from xraygan.data.phantom import generate_phantoms
from xraygan.metrics.collapse import (
    diversity,
    loss_explosion,
    mean_pairwise_distance,
    nearest_neighbour_distances,
    pixel_features,
)


def phantoms(n, size=32, seed=0):
    return torch.from_numpy(to_uint8(generate_phantoms(n, size, seed=seed)))[:, None]


def test_pairwise_and_nearest_distances_match_scipy():
    x = np.random.default_rng(0).random((20, 7))
    assert mean_pairwise_distance(x) == pytest.approx(pdist(x).mean())
    from scipy.spatial.distance import squareform

    d = squareform(pdist(x))
    np.fill_diagonal(d, np.inf)
    np.testing.assert_allclose(nearest_neighbour_distances(x), d.min(1), atol=1e-6)
    with pytest.raises(ValueError):
        mean_pairwise_distance(x[:1])


def test_pixel_features_downsample():
    f = pixel_features(phantoms(4), size=16)
    assert f.shape == (4, 256) and 0 <= f.min() and f.max() <= 1


def test_collapsed_samples_have_low_diversity_ratio():
    real = pixel_features(phantoms(48, seed=0))
    healthy = pixel_features(phantoms(48, seed=1))
    one = phantoms(1, seed=2).float()
    noise = torch.randn(48, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    collapsed = pixel_features((one + 2.0 * noise).clamp(0, 255).to(torch.uint8))
    h = diversity(healthy, real)
    c = diversity(collapsed, real)
    assert 0.8 < h["diversity_ratio"] < 1.25 and h["duplicate_fraction"] == 0.0
    assert c["diversity_ratio"] < 0.2
    # near-copies (noise of half a grey level) count as duplicates
    copies = pixel_features((one + 0.5 * noise).clamp(0, 255).to(torch.uint8))
    assert diversity(copies, real)["duplicate_fraction"] > 0.9
    assert "diversity_ratio" not in diversity(healthy)


def losses(n=3000, onset=2000, rate=0.01, seed=0):
    rng = np.random.default_rng(seed)
    steps = np.arange(n)
    boom = np.exp(rate * np.clip(steps - onset, 0, None))  # exponential rise after the onset
    g = (1.5 + 0.2 * rng.standard_normal(n)) * boom
    d = (0.7 + 0.1 * rng.standard_normal(n)) * boom
    return steps, np.abs(g), np.abs(d)


@pytest.mark.parametrize("onset,rate", [(2000, 0.01), (1200, 0.02)])
def test_loss_explosion_finds_onset_and_rate(onset, rate):
    steps, g, d = losses(onset=onset, rate=rate)
    r = loss_explosion(steps, g, d)
    assert r["collapse_detected"] == 1.0
    assert onset <= r["collapse_onset"] <= onset + 120
    assert r["collapse_strength"] > 3
    assert r["collapse_rate"] == pytest.approx(rate * 1000, rel=0.35)


def test_no_explosion_on_stationary_losses_or_when_only_d_rises():
    steps, g, d = losses(onset=10**9)
    assert loss_explosion(steps, g, d)["collapse_detected"] == 0.0
    assert np.isnan(loss_explosion(steps, g, d)["collapse_onset"])
    # the end of T0: D's loss rises from ~0 while G's falls: not a collapse
    d_t0 = np.where(steps < 300, 0.01, 0.8)
    g_t0 = np.where(steps < 300, 5.0, 1.5)
    assert loss_explosion(steps, g_t0, d_t0)["collapse_detected"] == 0.0
    assert loss_explosion(steps[:10], g[:10], d[:10])["collapse_detected"] == 0.0
