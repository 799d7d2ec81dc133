"""Building blocks chosen by name: activations, normalizations, and the DCGAN initialisation.

Activations are picked separately for G and D from the config (the paper compares ELU against
DCGAN's ReLU / LeakyReLU 0.2); an unknown name fails with the valid list, as in timm's
``create_act``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn

from ..errors import ConfigError
from ..registry import Registry
from .geometry import LayerPlan

ActivationFactory = Callable[[float], nn.Module]
"""Takes the negative slope (only leaky activations use it) and returns a fresh module."""

ACTIVATIONS: Registry[ActivationFactory] = Registry("activation")
ACTIVATIONS.add("elu", lambda slope: nn.ELU())  # the paper's choice (Table II)
ACTIVATIONS.add("relu", lambda slope: nn.ReLU())  # DCGAN generator
ACTIVATIONS.add("leaky_relu", lambda slope: nn.LeakyReLU(slope))  # DCGAN discriminator, 0.2
ACTIVATIONS.add("selu", lambda slope: nn.SELU())
ACTIVATIONS.add("celu", lambda slope: nn.CELU())
ACTIVATIONS.add("gelu", lambda slope: nn.GELU())
ACTIVATIONS.add("silu", lambda slope: nn.SiLU())
ACTIVATIONS.add("mish", lambda slope: nn.Mish())
ACTIVATIONS.add("softplus", lambda slope: nn.Softplus())
ACTIVATIONS.add("tanh", lambda slope: nn.Tanh())
ACTIVATIONS.add("sigmoid", lambda slope: nn.Sigmoid())
ACTIVATIONS.add("identity", lambda slope: nn.Identity())


def make_activation(name: str, slope: float = 0.2, field: str | None = None) -> nn.Module:
    """A fresh activation module by registry name; ``field`` names the config field in errors."""
    return ACTIVATIONS.get(name, field=field)(slope)


NormFactory = Callable[[int], nn.Module]
"""Takes the number of channels and returns a fresh normalization module."""

NORMALIZATIONS: Registry[NormFactory] = Registry("normalization")
NORMALIZATIONS.add("batchnorm", lambda channels: nn.BatchNorm2d(channels))
NORMALIZATIONS.add("none", lambda channels: nn.Identity())


def make_norm(name: str, channels: int) -> nn.Module:
    """A fresh normalization module for ``channels`` feature maps."""
    return NORMALIZATIONS.get(name)(channels)


def check_activation(name: str, field: str, slope: float) -> None:
    """Fail before allocation on an unknown activation or a meaningless leaky slope."""
    ACTIVATIONS.get(name, field=field)
    if name == "leaky_relu" and not 0.0 <= slope < 1.0:
        raise ConfigError(f"model.leaky_slope: expected a value in [0, 1), got {slope}")


@torch.no_grad()
def dcgan_init(module: nn.Module, std: float = 0.02) -> None:
    """DCGAN initialisation (Radford et al. 2016; pytorch/examples dcgan ``weights_init``).

    Conv, transposed conv and linear weights ~ N(0, std); batch-norm weights ~ N(1, std);
    all biases 0. Apply with ``model.apply(partial(dcgan_init, std=...))`` or call on a model:
    it walks the submodules itself.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


def block_from_plan(plan: LayerPlan, slope: float) -> nn.Sequential:
    """One layer of a plan as modules: conv / convT / linear, then batch norm, then activation.

    Order conv -> BN -> activation as in Table II and DCGAN. A linear plan works on the
    flattened map and gives it its shape back: (B, C, H, W) -> (B, C*H*W) -> (B, C, H, W).
    """
    parts: dict[str, nn.Module] = {}
    if plan.kind == "linear":
        parts["flatten"] = nn.Flatten(1)
        parts["fc"] = nn.Linear(plan.in_features, plan.out_features, bias=plan.bias)
    elif plan.kind in ("conv", "convT"):
        conv = nn.Conv2d if plan.kind == "conv" else nn.ConvTranspose2d
        parts["conv"] = conv(
            plan.in_channels,
            plan.out_channels,
            plan.kernel,
            stride=plan.stride,
            padding=plan.padding,
            bias=plan.bias,
        )
    else:
        raise ValueError(f"unknown layer kind {plan.kind!r}")
    if plan.batchnorm:
        parts["bn"] = make_norm("batchnorm", plan.out_channels)
    if plan.activation != "identity":
        parts["act"] = make_activation(plan.activation, slope)
    if plan.kind == "linear":
        parts["unflatten"] = nn.Unflatten(1, (plan.out_channels, plan.out_size, plan.out_size))
    return nn.Sequential(OrderedDict(parts))
