"""Building blocks: one planned layer as modules, and the DCGAN initialisation."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .activations import make_activation, make_norm
from .geometry import LayerPlan


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
