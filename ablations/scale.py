"""How big a sweep's runs are: ``quick`` (CPU, minutes) or ``full`` (the paper's scale, GPU).

A study defines *what* varies; the scale defines everything else about a run (image size,
base width, length, batch, FID sample). Studies build their configs from
:func:`base_config`, so ``table1 --quick`` and ``table1 --full`` differ only in scale.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from xraygan.config import DataConfig, ExperimentConfig, OptimConfig, TrainConfig
from xraygan.errors import ConfigError
from xraygan.presets import get_preset
from xraygan.registry import Registry


@dataclass(frozen=True)
class Scale:
    name: str
    image_size: int  # side of generated images
    features: int  # base width of G and D (64 in the paper) unless a study varies it
    steps: int  # iterations per run; 0 = use epochs
    epochs: float
    batch_size: int
    num_images: int  # training images (phantoms generated; for real data: at most this many)
    fid: bool  # compute FID at the end of each trial (needs the Inception weights)
    fid_samples: int  # generated images for FID; the reference is the whole training set
    log_every: int
    sample_every: int
    checkpoint_every: int  # also what a killed trial resumes from
    device: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_overrides(self, **changes: Any) -> Scale:
        """A copy with the non-None ``changes``; unknown names raise ConfigError."""
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - fields)
        if unknown:
            raise ConfigError(f"scale: unknown field(s) {', '.join(unknown)}; valid: {', '.join(sorted(fields))}")
        changes = {k: v for k, v in changes.items() if v is not None}
        if "steps" in changes and "epochs" not in changes:
            changes["epochs"] = 0.0
        if "epochs" in changes and "steps" not in changes:
            changes["steps"] = 0
        return dataclasses.replace(self, **changes)


SCALES: Registry[Scale] = Registry("scale")

# CPU-sized: the quick reproduction (`nox -s quickstart`) is Table I with QUICK_SEEDS seeds per
# configuration (12 trials) on QUICK_WORKERS worker processes of one intra-op thread each.
#
# The criterion, fixed before any verdict at this scale was looked at (docs/claims.md, "How the
# quick scale was chosen"):
#   A. long enough that every Table I configuration leaves T0 (xraygan.metrics.dynamics.find_t0
#      on the run's own log) in every probed seed, at most at 75 % of the run's length: an
#      optimizer comparison before T0 measures which optimizer leaves it first;
#   B. the whole quick start within 25 minutes on two quiet cores of the slower CPU class
#      seen (AVX2 EPYC, 2.45 GHz; ~0.7x the AVX-512 development machine's sgemm).
# Choices, in order: the batch and length meeting A at the least training time, then the
# largest (FID samples, training images) of (256, 2048), (128, 2048), (128, 1024) that meets B
# with a 10 % margin.
#
# Measured with ablations/scale_probe.py (T0 of every shorter run read off one long run; time
# scaled to a quiet AVX2 core by a reference workload timed in the same process every 250
# iterations, 438 images/s quiet there; the development machine was shared, load 6-10; the
# table: docs/claims.md):
#   batch 64: Adam never left T0 in 1500 iterations (issue 10's runs), excluded;
#   batch 16: adam-elu seed 0 left T0 only in runs of >= 3000 iterations; 77 s per 1000;
#   batch 32: adam-elu T0 1405, 1390 in 2000-iteration runs (seeds 0, 1) but seed 2 none (1785
#             in a 2500-run): A needs 2500 iterations; AdaS cells 110-370; 75 s per 1000
#             iterations (= 427 images/s, the known 438 within 3 %).
# B at batch 32 x 2500 iterations, per worker of 6 trials: training 6 x 188 s + FID and
# per-trial metrics 6 x ~40 s (128 samples) + reference statistics ~202 s (1,024 + 512
# held-out images) = 26.3 min with the smallest FID and data options: A and B cannot both
# be met. So the quick scale is the longest that meets B, batch 32 x 2000 iterations, FID on
# 128 samples, 1,024 training images (22.5 min predicted; (256, 2048) 27.8 min, (128, 2048)
# 24.8 min without margin), and the claims that need every configuration past T0 say
# "untestable at quick scale" (:func:`t0_shortfall`), whatever a sweep's seeds happen to do.
# FID on 128 samples is biased upwards far more than at 2,048 (the same N in every cell, so
# cells compare with each other; FID_inf and KID are recorded beside it; `nox -s fid_check`
# re-scores at 2,048); precision/recall use 128 real and 128 generated images (equal sets).
QUICK_SEEDS = 3
QUICK_WORKERS = 2
QUICK = SCALES.add("quick", Scale(
    name="quick", image_size=32, features=32, steps=2000, epochs=0.0, batch_size=32,
    num_images=1024, fid=True, fid_samples=128, log_every=5, sample_every=500,
    checkpoint_every=500,
))

# The paper's scale (paper.md, "Setup" and "Training dynamics"): 64x64, base width 64 (Table
# II), 150 epochs ("150 epochs separate clearly worse Adam samples from AdaS samples at
# 64x64"), batch 128 (the batch that worked with Adam; 256 made no progress), FID on 10,000
# generated samples against up to 10,000 training images ("a portion" of VinBigData).
FULL = SCALES.add("full", Scale(
    name="full", image_size=64, features=64, steps=0, epochs=150.0, batch_size=128,
    num_images=10000, fid=True, fid_samples=10000, log_every=10, sample_every=1000,
    checkpoint_every=1000,
))
FULL_SEEDS = 3  # Table I at full scale: the same seeds-per-cell as the quick reproduction
FULL_STUDIES = ("table1", "table3", "batchnorm", "fmaps")  # what `nox -s full` runs


REAL_DATA_HOLDOUT = 0.1
"""Default held-out fraction of a folder, DICOM or cache dataset in a sweep (``--holdout``).

Every FID trial also runs the memorization test, which compares generated images with real
images the model never saw. Phantoms have an endless supply; a fixed set of real images must
give some up: a tenth of 2,000-odd radiographs leaves about 200 to test against (the test's
default cap is 512) and keeps 90 % for training. ``docs/real-data.md`` explains it."""


def holdout_for(data: str, holdout: float | None = None) -> float:
    """The held-out fraction a sweep uses for ``data``: phantoms need none, real data
    :data:`REAL_DATA_HOLDOUT` unless ``holdout`` is given."""
    if data.split(":")[0] == "phantom":
        return 0.0
    return REAL_DATA_HOLDOUT if holdout is None else float(holdout)


def base_config(
    scale: Scale,
    *,
    preset: str = "paper-elu",
    data: str = "phantom",
    holdout: float | None = None,
    optimizer: str = "adas",
    name: str = "run",
    **model_overrides: Any,
) -> ExperimentConfig:
    """The preset at the scale's size and width, trained as the scale says.

    ``model_overrides`` are ModelConfig fields applied before the geometry check;
    ``holdout`` is the held-out fraction of real data (None: :func:`holdout_for`'s default).
    """
    model_overrides.setdefault("g_features", scale.features)
    model_overrides.setdefault("d_features", scale.features)
    model = get_preset(preset, scale.image_size, **model_overrides)
    return ExperimentConfig(
        name=name,
        model=model,
        optim=OptimConfig(name=optimizer),
        data=DataConfig(source=data, num_images=scale.num_images,
                        holdout=holdout_for(data, holdout)),
        train=TrainConfig(
            steps=scale.steps, epochs=scale.epochs, batch_size=scale.batch_size,
            device=scale.device, log_every=scale.log_every, sample_every=scale.sample_every,
            checkpoint_every=scale.checkpoint_every,
        ),
    )
