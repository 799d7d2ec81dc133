"""The metric registry and its runner (stylegan2-ada's ``metric_main.py``): named metrics of a
finished run returning flat dicts, the :class:`RunContext` they read, and :func:`run_metrics`,
which the trainer calls at the end of a run and ``xraygan metrics`` calls later. What each
metric measures: the package's docstring (xraygan.metrics)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .. import runs
from ..data import load_dataset
from ..data.holdout import heldout_set
from ..errors import RunFolderError, XrayganError
from ..registry import Registry
from ..sampling import generate_images, load_generator
from . import CLOSEST_PAIRS_FILE, SPECTRUM_FILE
from .anatomy import measure_anatomy
from .anatomy_compare import anatomy_distances
from .artifacts import blockiness, split_grid
from .collapse import diversity, loss_explosion, pixel_features
from .compare import SampleSet, compare_sets, fid_kid, memorization_of, prdc_of, spectrum_of
from .dynamics import dloss_metrics
from .utility import utility_of_run


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
    k: int = 5  # neighbours of the k-NN metrics (precision/recall, density/coverage)
    heldout_samples: int = 512  # held-out real images of the memorization test (at most)
    figures: bool = True  # write spectrum.json and closest_pairs.png into the run folder
    stats_cache: str | Path | None = None
    notes: list[str] = field(default_factory=list)
    echo: Callable[[str], None] | None = None  # progress lines of long metrics (utility)

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

        return load_generator(self.run, device=self.device)[0]

    def generate(self, n: int) -> torch.Tensor:
        return generate_images(self.generator, n, self.config.model.latent_dim,
                               batch_size=256, seed=self.seed, device=self.device)  # fmt: skip

    def real_images(self, n: int | None = None) -> tuple[torch.Tensor, str]:
        """(images, fingerprint) of the run's dataset at its image size; at most ``n``."""
        cfg = self.config
        data = load_dataset(cfg.data, cfg.model.image_size, cfg.model.channels)
        images = data.images if n is None else data.images[:n]
        return images, data.fingerprint

    def _set(self, name: str, images: torch.Tensor, fingerprint: str | None):
        return SampleSet(name, images, fingerprint, device=self.device,
                         batch_size=self.batch_size, progress=self.progress,
                         cache_dir=self.stats_cache)  # fmt: skip

    @cached_property
    def generated_set(self):
        """The ``fid_samples`` generated images with their features (one Inception pass)."""
        if self.generator is None:
            raise XrayganError(f"{self.run}: Inception metrics need a checkpoint "
                               f"({runs.checkpoint_path(self.run)})")
        return self._set("generated", self.generate(self.fid_samples), None)

    @cached_property
    def real_set(self):
        """The run's training images; features from the statistics cache."""
        cfg = self.config
        data = load_dataset(cfg.data, cfg.model.image_size, cfg.model.channels)
        return self._set("training", data.images, data.fingerprint)

    @cached_property
    def heldout_set(self):
        """Real images of the run's source never trained on (data/holdout.py)."""
        cfg = self.config
        data = heldout_set(cfg.data, cfg.model.image_size, cfg.model.channels,
                           self.heldout_samples)  # fmt: skip
        return self._set("held-out", data.images, data.fingerprint)

    def samples(self) -> tuple[torch.Tensor, str]:
        """Samples for the cheap image metrics: generated, or the tiles of the latest grid."""
        return self._samples

    @cached_property
    def _samples(self) -> tuple[torch.Tensor, str]:
        if self.generator is not None:
            return self.generate(self.diversity_samples), "generated"
        grids = runs.sample_paths(self.run)
        if not grids:  # nothing to evaluate is a fact of the run, not a broken file
            raise ValueError("no checkpoint and no sample grid to evaluate")

        try:
            with Image.open(grids[-1]) as im:
                grid = np.asarray(im)
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise RunFolderError(f"{grids[-1]}: not a readable sample grid "
                                 f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        tiles = split_grid(grid, self.config.model.image_size)
        return torch.from_numpy(tiles), grids[-1].name


Metric = Callable[[RunContext], dict[str, Any]]
METRICS: Registry[Metric] = Registry("metric")
CHEAP_METRICS = ("dloss", "collapse_loss", "samples", "spectrum", "anatomy")
ANATOMY_REAL = 512  # real images the anatomy metric measures (at most): ~2 s at 64 px
FEATURE_METRICS = ("fid", "prdc", "memorization")  # one Inception pass per set feeds all three


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
    if real is not None and len(real) < 2:  # one training image has no pairwise scale
        ctx.notes.append(f"samples: diversity ratio not applicable ({len(real)} real image)")
        real = None
    if len(images) >= 2:
        out.update(diversity(pixel_features(images), None if real is None else pixel_features(real)))
    return out


@METRICS.register("spectrum")
def _spectrum(ctx: RunContext) -> dict[str, Any]:
    images, _ = ctx.samples()
    real, _ = ctx.real_images()
    out, curves = spectrum_of(images, real, ctx.notes)
    if curves and ctx.figures:
        runs.atomic_write_json(ctx.run / SPECTRUM_FILE, curves)
    return out


@METRICS.register("anatomy")
def _anatomy(ctx: RunContext) -> dict[str, Any]:
    images, _ = ctx.samples()
    real, _ = ctx.real_images(ANATOMY_REAL)
    return anatomy_distances(measure_anatomy(images), measure_anatomy(real), seed=ctx.seed)


@METRICS.register("utility")
def _utility(ctx: RunContext) -> dict[str, Any]:
    return utility_of_run(ctx)


@METRICS.register("fid")
def _fid(ctx: RunContext) -> dict[str, Any]:
    return fid_kid(ctx.generated_set, ctx.real_set, ctx.notes, kid=ctx.kid)


@METRICS.register("prdc")
def _prdc(ctx: RunContext) -> dict[str, Any]:
    return prdc_of(ctx.generated_set, ctx.real_set, ctx.notes, ctx.k)


@METRICS.register("memorization")
def _memorization(ctx: RunContext) -> dict[str, Any]:
    held = ctx.heldout_set
    res = memorization_of(ctx.generated_set, ctx.real_set, held, ctx.notes, seed=ctx.config.data.seed)
    if res is None:
        return {}
    if ctx.figures:
        from .plots import closest_pairs_figure

        closest_pairs_figure(ctx.generated_set.images, ctx.real_set.images, res.closest_gen,
                             res.closest_train, res.closest_dist, ctx.run / CLOSEST_PAIRS_FILE,
                             heldout_median=res.metrics["mem_px_heldout_nn_train_median"])  # fmt: skip
    return {**res.metrics, "mem_heldout_n": held.n}


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
    k: int = 5,
) -> dict[str, Any]:
    """FID, KID (when asked), precision/recall/density/coverage and spectrum between two uint8
    image sets (N, C, H, W); ``images2`` is the reference. One Inception pass per set; with
    ``real_fingerprint`` the reference's statistics and features are cached
    (features.dataset_stats)."""
    kw = dict(device=device, batch_size=batch_size, progress=progress, cache_dir=stats_cache)
    a = SampleSet("A", images1, **kw)
    b = SampleSet("B", images2, real_fingerprint, **kw)
    return compare_sets(a, b, kid=kid, k=k)


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
    k: int = 5,
    heldout_samples: int = 512,
    figures: bool = True,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Flat dict of the cheap metrics of a finished run, plus the Inception metrics (FID,
    precision/recall/density/coverage, memorization) when ``fid`` is true.

    A metric that does not apply (no checkpoint and no sample grid, one training image) is
    skipped with its reason in ``notes``; the D-loss metrics need only metrics.csv. A run file
    that is there but unreadable (a corrupt metrics.csv, config.json or sample grid) is a
    RunFolderError naming every such file, after the other metrics were tried: a table of what
    could be read would hide that the run is damaged. Without a checkpoint, asking for FID is
    an error.
    """
    ctx = RunContext(Path(run_dir), device=device, fid_samples=fid_samples, kid=kid,
                     batch_size=batch_size, progress=progress, k=k,
                     heldout_samples=heldout_samples, figures=figures, echo=echo)  # fmt: skip
    names = list(metrics or CHEAP_METRICS)
    if fid:
        names += [m for m in FEATURE_METRICS if m not in names]
    out: dict[str, Any] = {}
    errors: list[str] = []
    for name in names:
        fn = METRICS.get(name, field="metric")
        try:
            out.update(fn(ctx))
        except XrayganError as e:
            if name == "fid":  # asked for explicitly: the caller must hear about it
                raise
            if str(e) not in errors:  # several metrics read the same broken file
                errors.append(str(e))
        except ValueError as e:  # a metric's own precondition (e.g. too few images)
            ctx.notes.append(f"{name}: not applicable ({e})")
    if errors:
        raise RunFolderError("; ".join(errors))
    if ctx.notes:
        out["notes"] = "; ".join(ctx.notes)
    return out
