"""How big a sweep's runs are: ``quick`` (CPU, minutes) or ``full`` (the paper's scale, GPU).

A study defines *what* varies; the scale defines everything else about a run (image size,
base width, length, batch, FID sample). Studies build their configs from
:func:`base_config`, so ``table1 --quick`` and ``table1 --full`` differ only in scale.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from gan_core.config import DataConfig, ExperimentConfig, OptimConfig, TrainConfig
from gan_core.errors import ConfigError
from gan_core.presets import get_preset
from gan_core.registry import Registry


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

# CPU-sized: table1 (4 trials) on the built-in phantoms in about 10 minutes on two quiet cores
# (measured; see the README). 32x32 keeps the DCGAN depth (3 strided layers), so the studies
# that change depth still have something to remove. 1500 iterations (47 epochs) are long enough
# for AdaS to leave its T0 phase and draw recognisable chests (FID about 100); FID on 2048
# samples, as many as Inception's feature dimensions, keeps the covariance full-rank.
QUICK = SCALES.add("quick", Scale(
    name="quick", image_size=32, features=32, steps=1500, epochs=0.0, batch_size=64,
    num_images=2048, fid=True, fid_samples=2048, log_every=5, sample_every=500,
    checkpoint_every=250,
))

# The paper's scale: 64x64, about 150 epochs (Sec. "Training dynamics": 150 epochs separate
# Adam from AdaS), base width 64 (Table II), batch 128 (the batch that worked with Adam), FID on
# 10,000 generated samples.
FULL = SCALES.add("full", Scale(
    name="full", image_size=64, features=64, steps=0, epochs=150.0, batch_size=128,
    num_images=10000, fid=True, fid_samples=10000, log_every=10, sample_every=1000,
    checkpoint_every=1000,
))


def base_config(
    scale: Scale,
    *,
    preset: str = "paper-elu",
    data: str = "phantom",
    optimizer: str = "adas",
    name: str = "run",
    **model_overrides: Any,
) -> ExperimentConfig:
    """The preset at the scale's size and width, trained as the scale says.

    ``model_overrides`` are ModelConfig fields applied before the geometry check.
    """
    model_overrides.setdefault("g_features", scale.features)
    model_overrides.setdefault("d_features", scale.features)
    model = get_preset(preset, scale.image_size, **model_overrides)
    return ExperimentConfig(
        name=name,
        model=model,
        optim=OptimConfig(name=optimizer),
        data=DataConfig(source=data, num_images=scale.num_images),
        train=TrainConfig(
            steps=scale.steps, epochs=scale.epochs, batch_size=scale.batch_size,
            device=scale.device, log_every=scale.log_every, sample_every=scale.sample_every,
            checkpoint_every=scale.checkpoint_every,
        ),
    )
