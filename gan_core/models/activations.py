"""Activations and normalizations by name (as timm's ``create_act``): an unknown name fails
with the valid list.

Activations are picked separately for G and D from the config (the paper compares ELU against
DCGAN's ReLU / LeakyReLU 0.2). The registries import torch only when a module is made, so
configs and the command line check names without loading it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..lazy import lazy_module
from ..registry import Registry

nn = lazy_module("torch.nn")

if TYPE_CHECKING:
    from torch import nn

ActivationFactory = Callable[[float], "nn.Module"]
"""Takes the negative slope (only leaky activations use it) and returns a fresh module."""

ACTIVATIONS: Registry[ActivationFactory] = Registry("activation")


def _activation(name: str, cls: str, uses_slope: bool = False) -> None:
    def make(slope: float) -> nn.Module:
        return getattr(nn, cls)(slope) if uses_slope else getattr(nn, cls)()

    ACTIVATIONS.add(name, make)


def _elu(slope: float) -> nn.Module:
    from .fast_elu import ELU

    return ELU()


ACTIVATIONS.add("elu", _elu)  # the paper's choice (Table II); from exp, not expm1 (fast_elu.py)
_activation("relu", "ReLU")  # DCGAN generator
_activation("leaky_relu", "LeakyReLU", uses_slope=True)  # DCGAN discriminator, 0.2
_activation("selu", "SELU")
_activation("celu", "CELU")
_activation("gelu", "GELU")
_activation("silu", "SiLU")
_activation("mish", "Mish")
_activation("softplus", "Softplus")
_activation("tanh", "Tanh")
_activation("sigmoid", "Sigmoid")
_activation("identity", "Identity")


def make_activation(name: str, slope: float = 0.2, field: str | None = None) -> nn.Module:
    """A fresh activation module by registry name; ``field`` names the config field in errors."""
    return ACTIVATIONS.get(name, field=field)(slope)


def check_activation(name: str, field: str, slope: float) -> None:
    """Fail before allocation on an unknown activation or a meaningless leaky slope."""
    ACTIVATIONS.get(name, field=field)
    if name == "leaky_relu" and not 0.0 <= slope < 1.0:
        raise ConfigError(f"model.leaky_slope: expected a value in [0, 1), got {slope}")


NormFactory = Callable[[int], "nn.Module"]
"""Takes the number of channels and returns a fresh normalization module."""

NORMALIZATIONS: Registry[NormFactory] = Registry("normalization")


def _batchnorm(channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels)


def _no_norm(channels: int) -> nn.Module:
    return nn.Identity()


NORMALIZATIONS.add("batchnorm", _batchnorm)
NORMALIZATIONS.add("none", _no_norm)


def make_norm(name: str, channels: int) -> nn.Module:
    """A fresh normalization module for ``channels`` feature maps."""
    return NORMALIZATIONS.get(name)(channels)
