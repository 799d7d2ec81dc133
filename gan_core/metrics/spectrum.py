"""Frequency content of images: the azimuthally averaged power spectrum (Durall, Keuper &
Keuper, CVPR 2020, "Watch your up-convolution") and two scalars derived from it.

Per image (grey levels in [0, 1], channels averaged, the image's mean removed so DC carries
nothing), the 2-D power |FFT|^2 / (H W) is averaged over rings of integer radius
r = round(sqrt(fx^2 + fy^2)), r = 0 .. R with R = min(H, W) // 2 (the Nyquist radius; the
corners beyond it are left out), and then over images. Powers are absolute, not normalised:
real and generated images share the [0, 1] scale, so a generator that draws less texture shows
as less power.

  * ``spectral_distance``: mean over r = 1..R of |log10 P_gen(r) - log10 P_real(r)| (decades);
  * ``hf_deficit``: the fraction of the real power above the cut-off radius r_c = R/2 (half the
    Nyquist frequency) that the generated images lack, 1 - sum_{r > r_c} P_gen / sum P_real;
    positive when G is biased against high frequencies (Khayatkhoei & Elgammal, AAAI 2022),
    negative for excess high-frequency power (checkerboards);
  * ``lf_deficit``: the same over 1 <= r <= r_c, the control.
"""

from __future__ import annotations

import numpy as np

from ..lazy import lazy_module

torch = lazy_module("torch")  # the claims read this module's constants without torch

CUTOFF = 0.5  # r_c as a fraction of the Nyquist radius
CHUNK = 256  # images per FFT batch


def radial_power(images: torch.Tensor) -> np.ndarray:
    """Mean azimuthally averaged power of uint8 images (N, C, H, W): (R + 1,) float64."""
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"spectrum: expected images (N, C, H, W), got {tuple(images.shape)}")
    h, w = images.shape[-2:]
    fy = np.fft.fftfreq(h) * h
    fx = np.fft.fftfreq(w) * w
    r = np.rint(np.hypot(fy[:, None], fx[None, :])).astype(np.int64)
    top = min(h, w) // 2
    keep = r <= top
    counts = np.bincount(r[keep], minlength=top + 1)
    total = np.zeros(top + 1)
    for start in range(0, len(images), CHUNK):
        x = images[start : start + CHUNK].double().mean(1).numpy() / 255.0  # (B, H, W)
        x = x - x.mean(axis=(1, 2), keepdims=True)
        p = np.abs(np.fft.fft2(x)) ** 2 / (h * w)
        total += np.bincount(r[keep], weights=p.sum(0)[keep], minlength=top + 1)
    return total / counts / len(images)


def spectrum_metrics(real: np.ndarray, fake: np.ndarray, cutoff: float = CUTOFF) -> dict[str, float]:
    """Flat comparison of two radial power curves (from :func:`radial_power`)."""
    real = np.asarray(real, np.float64)
    fake = np.asarray(fake, np.float64)
    if real.shape != fake.shape or len(real) < 3:
        raise ValueError(f"spectra of different sizes ({real.shape} vs {fake.shape}): compare "
                         "images of one size")
    top = len(real) - 1
    rc = cutoff * top
    radius = np.arange(top + 1)
    hi = radius > rc
    lo = (radius >= 1) & ~hi
    tiny = 1e-30  # a flat image has zero power: keep the logarithm finite
    logr = np.log10(real[1:] + tiny)
    logf = np.log10(fake[1:] + tiny)
    return {
        "spectral_distance": float(np.abs(logf - logr).mean()),
        "hf_deficit": float(1.0 - fake[hi].sum() / max(real[hi].sum(), tiny)),
        "lf_deficit": float(1.0 - fake[lo].sum() / max(real[lo].sum(), tiny)),
        "spectrum_cutoff": float(rc),  # in cycles per image
    }
