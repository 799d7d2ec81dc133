"""Metrics of finished runs: a registry of named metrics returning flat dicts (the
stylegan2-ada habit), and :func:`run_metrics`, which the trainer calls at the end of a run and
``xraygan metrics`` calls later.

Cheap metrics (seconds on a CPU): ``dloss`` (Table I's D-loss statistics, T0, stats after T0),
``collapse_loss`` (the loss signature of mode collapse), ``samples`` (blockiness and diversity
of generated samples, or of the latest sample grid when there is no checkpoint).
Expensive: ``fid`` (Inception features of ``fid_samples`` generated images against the cached
statistics of the run's dataset; KID too when asked).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import runs
from ..errors import XrayganError
from ..registry import Registry
from .artifacts import blockiness, split_grid
from .collapse import diversity, loss_explosion, pixel_features
from .dynamics import dloss_metrics

__all__ = ["METRICS", "CHEAP_METRICS", "RunContext", "run_metrics", "fid_of_images"]


@dataclass
class RunContext:
    """What metrics read from a run folder, loaded on first use."""

    run: Path
    device: str = "cpu"
    fid_samples: int = 2048
    diversity_samples: int = 256
    batch_size: int = 64
    kid: bool = False
    seed: int = 12345  # noise seed of evaluation samples: not the training seed
    progress: bool = False
    notes: list[str] = field(default_factory=list)

    @cached_property
    def config(self):
        return runs.read_config(self.run)

    @cached_property
    def log(self):
        return runs.read_metrics(self.run)

    @cached_property
    def generator(self):
        if not runs.checkpoint_path(self.run).is_file():
            return None
        from ..sampling import load_generator

        return load_generator(self.run, device=self.device)[0]

    def generate(self, n: int) -> torch.Tensor:
        from ..sampling import generate_images

        return generate_images(self.generator, n, self.config.model.latent_dim,
                               batch_size=256, seed=self.seed, device=self.device)  # fmt: skip

    def real_images(self, n: int | None = None) -> tuple[torch.Tensor, str]:
        """(images, fingerprint) of the run's dataset at its image size; at most ``n``."""
        from ..data import load_dataset

        cfg = self.config
        data = load_dataset(cfg.data, cfg.model.image_size, cfg.model.channels)
        images = data.images if n is None else data.images[:n]
        return images, data.fingerprint

    def samples(self) -> tuple[torch.Tensor, str]:
        """Samples for the cheap image metrics: generated, or the tiles of the latest grid."""
        if self.generator is not None:
            return self.generate(self.diversity_samples), "generated"
        grids = runs.sample_paths(self.run)
        if not grids:
            raise XrayganError(f"{self.run}: no checkpoint and no sample grid to evaluate")
        from PIL import Image

        grid = np.asarray(Image.open(grids[-1]))
        tiles = split_grid(grid, self.config.model.image_size)
        return torch.from_numpy(tiles), grids[-1].name


Metric = Callable[[RunContext], dict[str, Any]]
METRICS: Registry[Metric] = Registry("metric")
CHEAP_METRICS = ("dloss", "collapse_loss", "samples")


@METRICS.register("dloss")
def _dloss(ctx: RunContext) -> dict[str, Any]:
    return dloss_metrics(ctx.log)


@METRICS.register("collapse_loss")
def _collapse_loss(ctx: RunContext) -> dict[str, Any]:
    df = ctx.log
    return loss_explosion(df["step"], df["loss_g"], df["loss_d"])


@METRICS.register("samples")
def _samples(ctx: RunContext) -> dict[str, Any]:
    images, source = ctx.samples()
    out: dict[str, Any] = {"samples_source": source, "samples_n": len(images)}
    out.update(blockiness(images))
    real = None
    try:
        real, _ = ctx.real_images(len(images))
    except XrayganError as e:  # dataset gone or unreadable: diversity without the real scale
        ctx.notes.append(f"samples: no real images for the diversity ratio ({e})")
    if len(images) >= 2:
        out.update(diversity(pixel_features(images), None if real is None else pixel_features(real)))
    return out


@METRICS.register("fid")
def _fid(ctx: RunContext) -> dict[str, Any]:
    if ctx.generator is None:
        raise XrayganError(f"{ctx.run}: FID needs a checkpoint ({runs.checkpoint_path(ctx.run)})")
    real, fingerprint = ctx.real_images()
    fake = ctx.generate(ctx.fid_samples)
    return fid_of_images(fake, real, real_fingerprint=fingerprint, device=ctx.device,
                         batch_size=ctx.batch_size, kid=ctx.kid, progress=ctx.progress)  # fmt: skip


def fid_of_images(
    images1: torch.Tensor,
    images2: torch.Tensor,
    *,
    real_fingerprint: str | None = None,
    device: str = "cpu",
    batch_size: int = 64,
    kid: bool = False,
    progress: bool = False,
    stats_cache: str | Path | None = None,
) -> dict[str, Any]:
    """FID (and KID) between two uint8 image sets (N, C, H, W); ``images2`` is the reference.

    With ``real_fingerprint`` the reference statistics are cached (see features.dataset_stats);
    KID needs raw features, so it recomputes them.
    """
    from .features import InceptionFeatures, dataset_stats, feature_stats
    from .frechet import FewSamplesWarning, frechet_distance
    from .kid import kernel_inception_distance

    ex = InceptionFeatures(device)
    s1 = feature_stats(images1, ex, batch_size=batch_size, keep_features=kid,
                       progress=progress and "features A")  # fmt: skip
    if real_fingerprint is not None and not kid:
        s2 = dataset_stats(images2, real_fingerprint, ex, cache_dir=stats_cache,
                           batch_size=batch_size, progress=progress and "features B")  # fmt: skip
    else:
        s2 = feature_stats(images2, ex, batch_size=batch_size, keep_features=kid,
                           progress=progress and "features B")  # fmt: skip
    few = min(s1.n, s2.n) < s1.dims
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewSamplesWarning)
        value = frechet_distance(s1.mean, s1.cov, s2.mean, s2.cov)
    out: dict[str, Any] = {"fid": value, "fid_n1": s1.n, "fid_n2": s2.n, "fid_few_samples": few}
    if kid:
        m, sd = kernel_inception_distance(s1.all_features(), s2.all_features())
        out.update({"kid": m, "kid_std": sd})
    return out


def run_metrics(
    run_dir: str | Path,
    *,
    fid: bool = False,
    fid_samples: int = 2048,
    device: str = "cpu",
    kid: bool = False,
    metrics: tuple[str, ...] | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> dict[str, Any]:
    """Flat dict of the cheap metrics of a finished run, plus FID when ``fid`` is true.

    A metric that cannot be computed (e.g. no checkpoint and no sample grid) is skipped with
    its reason in ``notes``; the D-loss metrics need only metrics.csv.
    """
    ctx = RunContext(Path(run_dir), device=device, fid_samples=fid_samples, kid=kid,
                     batch_size=batch_size, progress=progress)  # fmt: skip
    names = list(metrics or CHEAP_METRICS) + (["fid"] if fid and "fid" not in (metrics or ()) else [])
    out: dict[str, Any] = {}
    for name in names:
        fn = METRICS.get(name, field="metric")
        try:
            out.update(fn(ctx))
        except XrayganError as e:
            if name == "fid":  # asked for explicitly: the caller must hear about it
                raise
            ctx.notes.append(f"{name}: {e}")
    if ctx.notes:
        out["notes"] = "; ".join(ctx.notes)
    return out
