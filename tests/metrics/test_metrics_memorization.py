"""The data-copying test and nearest-neighbour distances, on phantoms and synthetic features."""

import numpy as np
import pytest
import torch

from xraygan.data.imageops import to_uint8
from xraygan.data.phantom import generate_phantoms
from xraygan.errors import DataError
from xraygan.metrics.memorization import (
    CT_THRESHOLD,
    memorization,
    pixel_space,
    z_mann_whitney,
)


def _phantoms(n, start):
    return torch.from_numpy(to_uint8(generate_phantoms(n, 32, seed=0, start=start)))[:, None]


@pytest.fixture(scope="module")
def sets():
    """Training phantoms 0..199, held-out 200..359, fresh phantoms 360..519 (as a generator
    that learned the distribution), with stand-in 'features' (a fixed random projection)."""
    train, held, fresh = _phantoms(200, 0), _phantoms(160, 200), _phantoms(160, 360)
    proj = np.random.default_rng(0).standard_normal((256, 32))
    feat = {k: pixel_space(v) @ proj for k, v in (("train", train), ("held", held), ("fresh", fresh))}
    return train, held, fresh, feat


def test_a_generator_returning_training_images_is_flagged(sets):
    train, held, _, feat = sets
    idx = np.random.default_rng(1).choice(200, 160)
    res = memorization(feat["train"][idx], feat["train"], feat["held"], pixel_space(train[idx]),
                       pixel_space(train), pixel_space(held))
    m = res.metrics
    assert m["mem_copying"] == 1.0
    assert m["mem_ct"] < CT_THRESHOLD and m["mem_px_ct"] < CT_THRESHOLD
    assert m["mem_copy_fraction"] == 1.0 and m["mem_nn_train_median"] == pytest.approx(0, abs=1e-6)
    assert m["mem_closer_to_train"] == 1.0
    # the closest pairs are exact copies: distance 0, the pair's training image is the source
    assert np.allclose(res.closest_dist, 0, atol=1e-6)
    assert torch.equal(train[idx[res.closest_gen[0]]], train[res.closest_train[0]])


def test_held_out_real_images_do_not_memorize(sets):
    train, held, fresh, feat = sets
    m = memorization(feat["fresh"], feat["train"], feat["held"], pixel_space(fresh),
                     pixel_space(train), pixel_space(held)).metrics
    assert m["mem_copying"] == 0.0
    assert abs(m["mem_ct"]) < 3 and abs(m["mem_px_ct"]) < 3 and m["mem_ct_cells"] >= 1
    assert m["mem_copy_fraction"] < 0.15  # about the 5 % quantile's 0.05


def test_mann_whitney_z_sign_and_scale():
    rng = np.random.default_rng(0)
    a, b = rng.random(200), rng.random(200)
    assert abs(z_mann_whitney(a, b)) < 3
    assert z_mann_whitney(a * 0.1, b) < -10  # a much smaller: strongly negative
    from scipy.stats import mannwhitneyu

    u = mannwhitneyu(a, b).statistic  # scipy's U of the first sample
    assert z_mann_whitney(a, b) == pytest.approx((u - 200 * 200 / 2) / np.sqrt(200 * 200 * 401 / 12))


def test_too_few_images_is_an_error():
    x = np.zeros((4, 3))
    with pytest.raises(ValueError, match="4 generated images"):
        memorization(x, np.ones((20, 3)), np.ones((20, 3)), x, np.ones((20, 3)), np.ones((20, 3)))


def test_holdout_split_is_seeded_disjoint_and_applied_by_load_dataset(tmp_path):
    from PIL import Image

    from xraygan.config import DataConfig
    from xraygan.data import load_dataset
    from xraygan.data.holdout import heldout_set
    from xraygan.data.split import split_indices

    tr, ho = split_indices(50, 0.2, seed=3)
    assert len(tr) == 40 and len(ho) == 10 and not set(tr) & set(ho)
    assert np.array_equal(split_indices(50, 0.2, seed=3)[1], ho)
    assert not np.array_equal(split_indices(50, 0.2, seed=4)[1], ho)
    for i, a in enumerate(to_uint8(generate_phantoms(20, 32, seed=1))):
        Image.fromarray(a).save(tmp_path / f"{i:02d}.png")
    cfg = DataConfig(source=f"folder:{tmp_path}", holdout=0.25, seed=0)
    train = load_dataset(cfg, 32)
    held = heldout_set(cfg, 32)
    full = load_dataset(DataConfig(source=f"folder:{tmp_path}"), 32)
    assert len(train) == 15 and len(held) == 5 and len(full) == 20
    assert train.fingerprint != full.fingerprint != held.fingerprint
    rows = {bytes(x.numpy()) for x in full.images}
    assert {bytes(x.numpy()) for x in train.images} | {bytes(x.numpy()) for x in held.images} == rows
    # phantoms: the held-out images are the ones after the training set, none of them trained on
    ph = heldout_set(DataConfig(source="phantom", num_images=16), 32, max_images=4)
    assert torch.equal(ph.images[:, 0], _phantoms(4, 16)[:, 0])
    with pytest.raises(DataError, match="data.holdout is 0"):
        heldout_set(DataConfig(source=f"folder:{tmp_path}"), 32)
