"""Blockiness ("blurry squares"): high on blocky images, low on phantoms and a real radiograph."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from xraygan.data.imageops import resize, to_uint8
from xraygan.data.phantom import generate_phantoms
from xraygan.imageio import make_grid
from xraygan.metrics.artifacts import block_scores, blockiness, split_grid


def blocky(period, n=6, size=64, blur=0.0, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    x = np.kron(rng.random((n, size // period, size // period)), np.ones((period, period)))
    if blur:
        x = ndimage.gaussian_filter(x, (0, blur, blur))
    return to_uint8(np.clip(x + noise * rng.standard_normal(x.shape), 0, 1))


@pytest.mark.parametrize("period", [2, 4, 8])
def test_constant_blocks_score_one_and_give_their_period(period):
    b = blockiness(blocky(period))
    assert b["blockiness"] > 0.99
    assert b["block_period"] == period


@pytest.mark.parametrize("period,floor", [(4, 0.3), (8, 0.45)])
def test_blurry_noisy_blocks_still_score_high(period, floor):
    assert blockiness(blocky(period, blur=1.0, noise=0.02))["blockiness"] > floor


def test_phantoms_smooth_images_and_noise_score_low():
    ph = to_uint8(generate_phantoms(8, 64, seed=0))
    assert blockiness(ph)["blockiness"] < 0.15
    rng = np.random.default_rng(0)
    smooth = to_uint8(np.clip(ndimage.gaussian_filter(rng.random((4, 64, 64)), (0, 3, 3)) * 3 - 1, 0, 1))
    assert blockiness(smooth)["blockiness"] < 0.1
    assert blockiness(to_uint8(rng.random((4, 64, 64))))["blockiness"] < 0.05
    # the same phantoms made blocky by nearest-neighbour upsampling score high
    assert blockiness(np.kron(ph[:, ::8, ::8], np.ones((8, 8), np.uint8)))["blockiness"] > 0.99


@pytest.mark.parametrize("size", [64, 128])
def test_real_radiograph_scores_low(size):
    from pydicom.data import get_testdata_file
    from pydicom.pixels import pixel_array

    path = get_testdata_file("RG1_UNCR.dcm", download=False)
    if path is None:
        pytest.skip("RG1_UNCR.dcm comes with pydicom-data (dev extra), not installed")
    a = pixel_array(path).astype(np.float32)
    a = 1 - (a - a.min()) / (a.max() - a.min())  # MONOCHROME1: invert
    assert blockiness(to_uint8(resize(a, size)))["blockiness"] < 0.25


def test_accepts_tensors_floats_and_channels():
    x = blocky(4, n=2)
    t = torch.from_numpy(x)[:, None].repeat(1, 3, 1, 1)
    assert blockiness(t)["blockiness"] == pytest.approx(blockiness(x)["blockiness"])
    assert blockiness(x[0].astype(np.float32) / 255)["blockiness"] > 0.99
    assert set(block_scores(x)) == {2, 4, 8}


def test_split_grid_recovers_tiles():
    imgs = torch.from_numpy(blocky(4, n=5, size=32))[:, None]
    grid = make_grid(imgs, nrow=3)
    tiles = split_grid(grid, 32)
    assert tiles.shape == (5, 1, 32, 32)
    assert np.array_equal(tiles, imgs.numpy())
    with pytest.raises(ValueError):
        split_grid(np.zeros((10, 10), np.uint8), 32)
