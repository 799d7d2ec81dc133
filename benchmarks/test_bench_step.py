"""Training-step and sampling throughput of the presets (pytest-benchmark).

``extra_info`` of every case carries images/s, parameter counts, the estimated and the
measured peak memory of the step. The optimizer-only comparison (AdaS vs Adam on G's
parameters) is in test_bench_optim.py; here AdaS and Adam are compared as full training steps.
"""

from __future__ import annotations

import pytest
import torch
from bench_helpers import add_measured_peak, device, step_case, sync

from xraygan.models import build_models
from xraygan.presets import get_preset

PRESETS = ("dcgan", "paper-elu", "paper-elu-nobn")
SHAPES = ((32, 16), (32, 64), (64, 16), (64, 64))  # (image size, batch)


def _bench_step(benchmark, step, real, z, extra, rounds: int = 3) -> None:
    dev = real.device

    def one() -> None:
        step(real, z)
        sync(dev)

    benchmark.pedantic(one, rounds=rounds, iterations=1, warmup_rounds=1)
    extra["images_per_s"] = real.shape[0] / benchmark.stats.stats.median
    add_measured_peak(extra, step, real, z)
    benchmark.extra_info.update(extra)


@pytest.mark.parametrize("image_size,batch", SHAPES, ids=lambda v: str(v))
@pytest.mark.parametrize("preset", PRESETS)
def test_train_step(benchmark, preset, image_size, batch):
    step, real, z, extra = step_case(preset, image_size, batch, "adam")
    _bench_step(benchmark, step, real, z, extra)


@pytest.mark.parametrize("optimizer", ["adam", "adas"])
def test_train_step_optimizer(benchmark, optimizer):
    """AdaS vs Adam as part of a whole paper-elu step at 64x64, batch 64."""
    step, real, z, extra = step_case("paper-elu", 64, 64, optimizer)
    _bench_step(benchmark, step, real, z, extra)


@pytest.mark.parametrize("mode", ["fp32", "fp32-channels-last", "bf16-channels-last"])
def test_train_step_mode(benchmark, mode):
    """The speed switches on paper-elu 64x64, batch 64 (autocast bf16 on CPU, fp16 on CUDA)."""
    low = torch.float16 if device().type == "cuda" else torch.bfloat16
    amp = low if mode.startswith("bf16") else None
    step, real, z, extra = step_case("paper-elu", 64, 64, "adam", amp_dtype=amp,
                                     channels_last=mode.endswith("channels-last"))
    _bench_step(benchmark, step, real, z, extra)


@pytest.mark.parametrize("image_size", [64, 128])
@pytest.mark.parametrize("preset", PRESETS)
def test_sampling(benchmark, preset, image_size):
    """Images/s of G alone (eval mode, no grad), batch 64: what sample grids and FID cost."""
    dev = device()
    torch.manual_seed(0)
    G, _ = build_models(get_preset(preset, image_size))
    G.to(dev).eval()
    z = torch.randn(64, G.cfg.latent_dim, device=dev)

    def one() -> None:
        with torch.no_grad():
            G(z)
        sync(dev)

    benchmark.pedantic(one, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update({
        "preset": preset, "image_size": image_size, "batch_size": 64, "device": str(dev),
        "params_g": sum(p.numel() for p in G.parameters()),
        "images_per_s": 64 / benchmark.stats.stats.median,
    })
