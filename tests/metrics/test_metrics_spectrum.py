"""Radial power spectra: known answers on low-pass filtered phantoms and flat images."""

import numpy as np
import pytest
import torch

from xraygan.data.imageops import to_uint8
from xraygan.data.phantom import generate_phantoms
from xraygan.metrics.spectrum import radial_power, spectrum_metrics


def _lowpass(x: np.ndarray, keep: float) -> np.ndarray:
    """Ideal low-pass: zero every frequency above ``keep`` times the Nyquist radius."""
    n = x.shape[-1]
    f = np.fft.fftfreq(n) * n
    r = np.hypot(f[:, None], f[None, :])
    return np.real(np.fft.ifft2(np.fft.fft2(x) * (r <= keep * n / 2)))


@pytest.fixture(scope="module")
def phantoms():
    return generate_phantoms(64, 32, seed=0)


def _u8(x):
    return torch.from_numpy(to_uint8(x))[:, None]


def test_low_pass_shows_a_high_frequency_deficit_only(phantoms):
    real, blurred = _u8(phantoms), _u8(_lowpass(phantoms, 0.45))
    m = spectrum_metrics(radial_power(real), radial_power(blurred))
    assert m["hf_deficit"] > 0.8  # the power above half Nyquist is gone
    assert abs(m["lf_deficit"]) < 0.05  # and the low frequencies are untouched
    assert m["spectral_distance"] > 0.3 and m["spectrum_cutoff"] == 8.0


def test_same_images_have_no_deficit(phantoms):
    p = radial_power(_u8(phantoms))
    m = spectrum_metrics(p, p)
    assert m == {"spectral_distance": 0.0, "hf_deficit": 0.0, "lf_deficit": 0.0,
                 "spectrum_cutoff": 8.0}


def test_radial_power_parseval_and_flat_images():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(0, 256, (3, 1, 16, 16)).astype(np.uint8))
    p = radial_power(x)
    assert p.shape == (9,) and p[0] == pytest.approx(0.0, abs=1e-12)  # mean removed
    flat = torch.full((2, 3, 16, 16), 128, dtype=torch.uint8)
    assert np.all(radial_power(flat) == 0)


def test_sizes_must_match():
    with pytest.raises(ValueError, match="one size"):
        spectrum_metrics(np.ones(9), np.ones(17))
