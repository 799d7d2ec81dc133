"""The anatomy measurer against the phantoms' recorded anatomy, at 32, 64 and 128 px."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xraygan.data.phantom import PhantomSeries, generate_phantoms, phantom_anatomy
from xraygan.metrics.anatomy import MEASURES, measure_anatomy

SERIES = PhantomSeries.parse("v2")
N = 48
# Median absolute error bounds per quantity and size. Measured on 48 phantoms (seed 11): about
# half of each bound (docs/anatomy.md). The errors are those of a threshold on a noisy,
# blurred image of a pixel grid (one pixel is 1/32 of the image at 32 px), so the bounds
# shrink with the size only where the pixel is the limit.
BOUNDS = {
    32: {"ctr": 0.07, "heart_width": 0.04, "thorax_width": 0.06, "lung_area_right": 0.035,
         "lung_area_left": 0.04, "lung_area": 0.07, "diaphragm_y": 0.04},
    64: {"ctr": 0.045, "heart_width": 0.025, "thorax_width": 0.06, "lung_area_right": 0.04,
         "lung_area_left": 0.035, "lung_area": 0.07, "diaphragm_y": 0.025},
    128: {"ctr": 0.03, "heart_width": 0.025, "thorax_width": 0.045, "lung_area_right": 0.045,
          "lung_area_left": 0.04, "lung_area": 0.08, "diaphragm_y": 0.02},
}


@pytest.fixture(scope="module")
def truth():
    return phantom_anatomy(N, 11, series=SERIES)


@pytest.mark.parametrize("size", sorted(BOUNDS))
def test_measured_anatomy_matches_the_recorded_one(size, truth):
    m = measure_anatomy(generate_phantoms(N, size, 11, series=SERIES))
    ok = m["plausible"] == 1
    assert ok.mean() >= 0.9  # nearly every phantom shows a heart between two lungs
    for key, bound in BOUNDS[size].items():
        err = np.median(np.abs(m[key][ok] - truth[key][ok]))
        assert err < bound, (size, key, err)
    # the cardiomegaly label read from the image agrees with the generator's
    agree = ((m["ctr"][ok] > 0.5) == (truth["cardiomegaly"][ok] == 1)).mean()
    assert agree >= 0.85, agree


def test_measurer_follows_the_heart():
    big = PhantomSeries(version=2, cardiomegaly=1.0)
    small = PhantomSeries(version=2, cardiomegaly=0.0)
    a = measure_anatomy(generate_phantoms(24, 64, 3, series=big))["ctr"]
    b = measure_anatomy(generate_phantoms(24, 64, 3, series=small))["ctr"]
    assert np.nanmedian(a) > np.nanmedian(b) + 0.08


def test_input_forms_agree_and_noise_is_implausible():
    imgs = generate_phantoms(3, 32, 0, series=SERIES)
    a = measure_anatomy(imgs)
    u8 = torch.from_numpy(np.rint(imgs * 255).astype(np.uint8))[:, None]
    tanh = torch.from_numpy(imgs * 2 - 1)[:, None]
    for other in (measure_anatomy(u8), measure_anatomy(tanh)):
        np.testing.assert_allclose(other["ctr"], a["ctr"], atol=0.05)
    rng = np.random.default_rng(0)
    bad = np.stack([rng.random((32, 32)), np.zeros((32, 32)), np.ones((32, 32))])
    m = measure_anatomy(bad)
    assert set(m) == set(MEASURES)
    assert (m["plausible"] == 0).all() and np.isnan(m["ctr"]).all()
    with pytest.raises(ValueError, match="square"):
        measure_anatomy(np.zeros((2, 8, 9)))
