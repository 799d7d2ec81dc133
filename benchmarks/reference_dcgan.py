"""The pytorch/examples DCGAN training loop (``dcgan/main.py``) as a plain reference, and our
GANStep in the modes the project offers, each timed in a fresh process.

``python benchmarks/reference_dcgan.py MODE [--steps N] [--warmup W]`` prints one JSON line
with images/s. A fresh process per measurement gives each contender the allocator state it
would have on its own: the reference runs as the recipe does (glibc defaults), ours as
``xraygan train`` does (xraygan.process.tune_malloc). test_bench_reference.py interleaves them.

The reference follows the recipe line by line: same networks (paper-elu at 64x64 from
gan_core, D's logit followed by ``nn.Sigmoid`` as the recipe's D ends), ``nn.BCELoss``, Adam
(lr 2e-4, betas (0.5, 0.999), torch's default implementation), D trained on the real and the
fake half with two backward calls, G trained through D with D's weight gradients computed.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn

from xraygan.cli.argtypes import int_type

IMAGE_SIZE, BATCH, PRESET = 64, 64, "paper-elu"

# mode -> (autocast dtype, channels_last, malloc tuning)
MODES: dict[str, tuple[torch.dtype | None, bool, bool]] = {
    "ours-fp32": (None, False, True),
    "ours-fp32-cl": (None, True, True),
    "ours-bf16-cl": (torch.bfloat16, True, True),
    "ours-bf16": (torch.bfloat16, False, True),
}


def _models(image_size: int = IMAGE_SIZE, features: int | None = None):
    from xraygan.models import build_models
    from xraygan.presets import get_preset

    torch.manual_seed(0)
    widths = {} if features is None else {"g_features": features, "d_features": features}
    cfg = get_preset(PRESET, image_size, **widths)
    return cfg, *build_models(cfg)


def recipe_activations(module: nn.Module) -> nn.Module:
    """``module`` with torch's own ``nn.ELU`` wherever the project's faster ELU sits
    (xraygan.models.fast_elu): the recipe uses torch's layers as they come."""
    for parent in module.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.ELU) and type(child) is not nn.ELU:
                setattr(parent, name, nn.ELU(child.alpha, child.inplace))
    return module


def reference_step_fn(device: str = "cpu", amp_dtype: torch.dtype | None = None,
                      batch: int = BATCH, image_size: int = IMAGE_SIZE,
                      features: int | None = None):
    """One iteration of pytorch/examples dcgan/main.py, returned as a closure. With
    ``amp_dtype`` the networks run under autocast the way torch's AMP recipe adds it to such a
    loop: BCELoss on the float32 output (it is unsafe under autocast), a GradScaler for fp16."""
    cfg, netG, netD_logits = _models(image_size, features)
    netG, netD_logits = recipe_activations(netG), recipe_activations(netD_logits)
    netD = nn.Sequential(netD_logits, nn.Sigmoid())  # the recipe's D ends in a sigmoid
    netG, netD = netG.to(device), netD.to(device)
    criterion = nn.BCELoss()
    optimizerD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizerG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = (torch.rand(batch, 1, image_size, image_size) * 2 - 1).to(device)
    real_label, fake_label = 1.0, 0.0
    dev = torch.device(device).type
    scaler = torch.amp.GradScaler(dev, enabled=amp_dtype == torch.float16)

    def autocast():
        return torch.autocast(dev, dtype=amp_dtype, enabled=amp_dtype is not None)

    def step() -> float:
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        netD.zero_grad()
        label = torch.full((batch,), real_label, device=device)
        with autocast():
            output = netD(real).view(-1)
        errD_real = criterion(output.float(), label)
        scaler.scale(errD_real).backward()
        noise = torch.randn(batch, cfg.latent_dim, 1, 1, device=device)
        with autocast():
            fake = netG(noise)
            output = netD(fake.detach()).view(-1)
        label.fill_(fake_label)
        errD_fake = criterion(output.float(), label)
        scaler.scale(errD_fake).backward()
        scaler.step(optimizerD)
        # (2) Update G network: maximize log(D(G(z)))
        netG.zero_grad()
        label.fill_(real_label)
        with autocast():
            output = netD(fake).view(-1)
        errG = criterion(output.float(), label)
        scaler.scale(errG).backward()
        scaler.step(optimizerG)
        scaler.update()
        return (errD_real + errD_fake).item()

    return step


def ours_step_fn(mode: str):
    from xraygan.config import OptimConfig
    from xraygan.memory.measure import build_step, make_batch
    from xraygan.process import tune_malloc

    amp, channels_last, malloc = MODES[mode]
    if malloc:
        tune_malloc(True)
    cfg, _, _ = _models()
    step = build_step(cfg, OptimConfig(name="adam"), device=torch.device("cpu"), amp_dtype=amp,
                      channels_last=channels_last)
    real, _ = make_batch(cfg, BATCH, torch.device("cpu"))

    def run() -> float:
        z = torch.randn(BATCH, cfg.latent_dim)
        return step(real, z)[0].item()

    return run


def measure(mode: str, steps: int, warmup: int) -> dict:
    fn = reference_step_fn() if mode == "reference" else ours_step_fn(mode)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    median = times[len(times) // 2]
    return {"mode": mode, "images_per_s": BATCH / median, "step_s_median": median,
            "step_s_min": times[0], "steps": steps, "threads": torch.get_num_threads()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["reference", *MODES])
    p.add_argument("--steps", type=int_type(1, 10**6), default=5)
    p.add_argument("--warmup", type=int_type(0, 10**6), default=2)
    args = p.parse_args()
    print(json.dumps(measure(args.mode, args.steps, args.warmup)))


if __name__ == "__main__":
    main()
