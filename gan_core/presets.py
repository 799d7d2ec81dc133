"""Named model configurations from the paper, each at any power-of-two image size.

``get_preset("paper-elu", image_size=128, g_features=32)`` returns a checked ModelConfig; the
keyword overrides are ModelConfig fields and are applied before the check, so an override that
breaks the geometry fails here with the layer at fault.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from .config import ModelConfig
from .errors import ConfigError
from .models import check_model_config
from .registry import Registry

PresetFactory = Callable[[int], ModelConfig]
"""Takes the image size and returns the preset's ModelConfig at that size."""

PRESETS: Registry[PresetFactory] = Registry("preset")


@PRESETS.register("dcgan")
def dcgan(image_size: int) -> ModelConfig:
    """The paper's baseline (Table I, last row): DCGAN of Radford et al. 2016.

    ReLU in G, LeakyReLU 0.2 in D, batch norm in both (G: all layers but the output;
    D: hidden layers), stride-2 kernel-4 geometry.
    """
    return ModelConfig(
        image_size=image_size,
        g_activation="relu",
        d_activation="leaky_relu",
        leaky_slope=0.2,
        batchnorm="both",
    )


@PRESETS.register("paper-elu")
def paper_elu(image_size: int) -> ModelConfig:
    """The paper's best configuration (Table II): ELU in G and D, batch norm in D's hidden layers."""
    return ModelConfig(
        image_size=image_size,
        g_activation="elu",
        d_activation="elu",
        batchnorm="d",
    )


@PRESETS.register("paper-elu-nobn")
def paper_elu_nobn(image_size: int) -> ModelConfig:
    """Table II without any batch norm: isolates what D's batch norm contributes."""
    return dataclasses.replace(paper_elu(image_size), batchnorm="none")


def get_preset(name: str, image_size: int = 64, **overrides: Any) -> ModelConfig:
    """The preset ``name`` at ``image_size`` with ModelConfig fields ``overrides``, checked.

    Unknown names and fields raise ConfigError listing the valid ones; an impossible geometry
    raises GeometryError (a ConfigError) naming the layer.
    """
    factory = PRESETS.get(name, field="preset")
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ConfigError(
            f"preset {name!r}: unknown model field(s) {', '.join(unknown)}; "
            f"valid fields: {', '.join(sorted(fields))}"
        )
    if isinstance(image_size, bool) or not isinstance(image_size, int):
        raise ConfigError(f"model.image_size: expected an integer, got {image_size!r}")

    cfg = dataclasses.replace(factory(image_size), **overrides)
    check_model_config(cfg)  # fields, activation names and both geometries; allocates nothing
    return cfg
