"""Shared helpers of the benchmark suites (pytest-benchmark), imported by the test files.

Run: ``nox -s benchmarks`` or ``.venv/bin/pytest benchmarks --benchmark-only``. Timings on a
shared 2-core CPU are noisy: compare ratios measured in the same run (the reference benchmark
interleaves its contenders for that reason).
"""

from __future__ import annotations

import torch

from xraygan.config import OptimConfig
from xraygan.memory import build_step, estimate_step, make_batch, measure_step_peak
from xraygan.presets import get_preset


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def step_case(preset: str, image_size: int, batch: int, optimizer: str = "adam", *,
              amp_dtype: torch.dtype | None = None, channels_last: bool = False):
    """(GANStep, real, z, extra_info) for one benchmark case on the default device."""
    dev = device()
    model = get_preset(preset, image_size)
    optim = OptimConfig(name=optimizer)
    step = build_step(model, optim, device=dev, amp_dtype=amp_dtype, channels_last=channels_last)
    real, z = make_batch(model, batch, dev)
    est = estimate_step(step.G, step.D, model, optim, batch, amp_dtype=amp_dtype,
                        channels_last=channels_last)
    extra = {
        "preset": preset, "image_size": image_size, "batch_size": batch, "optimizer": optimizer,
        "amp": str(amp_dtype), "channels_last": channels_last, "device": str(dev),
        "params_g": sum(p.numel() for p in step.G.parameters()),
        "params_d": sum(p.numel() for p in step.D.parameters()),
        "estimated_peak_bytes": est.total,
    }
    return step, real, z, extra


def add_measured_peak(extra: dict, step, real: torch.Tensor, z: torch.Tensor) -> None:
    m = measure_step_peak(step, real, z, warmup=1)
    extra["measured_peak_bytes"] = m.peak_bytes
    extra["peak_method"] = m.method
