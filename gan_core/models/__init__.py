"""DCGAN-family generator and discriminator, built from a frozen :class:`ModelConfig`.

``build_models(cfg)`` plans both networks (xraygan.models.geometry, the paper's eq. 5) and
checks every field before allocating a weight, so a bad configuration costs milliseconds and
names the field or layer at fault. Planning and checking need no torch; the modules load it
when first used (``Generator``, ``Discriminator``, ``dcgan_init``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import ModelConfig
from ..errors import ConfigError
from .activations import ACTIVATIONS, NORMALIZATIONS, check_activation, make_activation
from .geometry import (
    LayerPlan,
    conv_out_size,
    conv_transpose_out_size,
    describe_plan,
    plan_discriminator,
    plan_generator,
    solve_kernel,
)

if TYPE_CHECKING:
    from torch import nn

    from .discriminator import Discriminator
    from .generator import Generator

__all__ = [
    "ACTIVATIONS",
    "NORMALIZATIONS",
    "Discriminator",
    "Generator",
    "LayerPlan",
    "build_discriminator",
    "build_generator",
    "build_models",
    "check_model_config",
    "conv_out_size",
    "conv_transpose_out_size",
    "count_parameters",
    "dcgan_init",
    "describe_plan",
    "make_activation",
    "plan_discriminator",
    "plan_generator",
    "solve_kernel",
]

_TORCH_NAMES = {"Generator": "generator", "Discriminator": "discriminator", "dcgan_init": "layers"}


def __getattr__(name: str) -> Any:
    if name in _TORCH_NAMES:
        import importlib

        return getattr(importlib.import_module(f".{_TORCH_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_model_config(cfg: ModelConfig) -> None:
    """Every check of ``cfg`` that needs no allocation: fields, names, both geometries."""
    if not cfg.init_std > 0:
        raise ConfigError(f"model.init_std: expected a positive number, got {cfg.init_std}")
    check_activation(cfg.g_activation, "model.g_activation", cfg.leaky_slope)
    check_activation(cfg.d_activation, "model.d_activation", cfg.leaky_slope)
    plan_generator(cfg)
    plan_discriminator(cfg)


def build_generator(cfg: ModelConfig) -> Generator:
    from .generator import Generator

    check_model_config(cfg)
    return Generator(cfg)


def build_discriminator(cfg: ModelConfig) -> Discriminator:
    from .discriminator import Discriminator

    check_model_config(cfg)
    return Discriminator(cfg)


def build_models(cfg: ModelConfig) -> tuple[Generator, Discriminator]:
    """(G, D), both checked before either is allocated."""
    from .discriminator import Discriminator
    from .generator import Generator

    check_model_config(cfg)
    return Generator(cfg), Discriminator(cfg)


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (batch-norm running stats are buffers, not counted)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
