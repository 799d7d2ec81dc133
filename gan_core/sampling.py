"""Generators from run folders, and images from generators.

Every path from a generator to images runs in batches (``batch_size``), so a sample grid or an
FID sample of thousands of images holds one batch of activations at a time, not all of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import torch

from . import runs
from .checkpoint import check_against_run, load_checkpoint
from .config import ExperimentConfig
from .imageio import to_uint8
from .models import build_generator


def load_generator(run: str | Path, device: str | torch.device = "cpu"):
    """The generator of ``run``'s last checkpoint, in eval mode, and the run's config."""
    path = runs.checkpoint_path(run)
    ckpt = load_checkpoint(path, map_location=device)
    check_against_run(ckpt, path, run)
    cfg = ExperimentConfig.from_dict(ckpt["config"])
    g = build_generator(cfg.model).to(device)
    g.load_state_dict(ckpt["G"])
    g.eval()
    return g, cfg


@torch.inference_mode()
def generate_images(
    generator: torch.nn.Module,
    n: int,
    latent_dim: int,
    *,
    batch_size: int = 256,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """``n`` samples as uint8 (N, C, H, W); the noise is drawn on the CPU from ``seed``, so
    the same seed gives the same images on any device."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        z = torch.randn(b, latent_dim, generator=gen).to(device)
        out.append(to_uint8(generator(z)).cpu())
    return torch.cat(out) if out else torch.empty(0, dtype=torch.uint8)


SAMPLE_BATCH = 64
"""Images per forward when drawing a sample grid: the training batch's order of memory."""


@torch.no_grad()
def generate_from_noise(
    generator: torch.nn.Module,
    z: torch.Tensor,
    *,
    batch_size: int = SAMPLE_BATCH,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> torch.Tensor:
    """G(z) as float32 (N, C, H, W) in [-1, 1] on the CPU, ``batch_size`` rows of ``z`` at a
    time. Call it with G in eval mode (as sample grids always were): batch norm then uses its
    running statistics, so batching changes no image.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    out = []
    for start in range(0, len(z), batch_size):
        with autocast():
            out.append(generator(z[start : start + batch_size]).float().cpu())
    if not out:
        raise ValueError("no noise rows to generate from")
    return torch.cat(out)
