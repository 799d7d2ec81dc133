"""The discriminator: image (B, C, H, W) -> logits (B,), built from a layer plan.

DCGAN family (Radford et al. 2016; Table II of the paper): optional fully connected layers on the
flattened input (the paper's compression study), strided convs down, a conv of the final map
size to a 1x1 logit. No sigmoid: it lives in the loss (BCE with logits is the numerically stable
form of the paper's sigmoid + BCE).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..config import ModelConfig
from .geometry import LayerPlan, describe_plan, plan_discriminator
from .layers import block_from_plan, check_activation, dcgan_init


class Discriminator(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        plans = plan_discriminator(cfg)
        check_activation(cfg.d_activation, "model.d_activation", cfg.leaky_slope)
        self.cfg = cfg
        self.plans: tuple[LayerPlan, ...] = tuple(plans)
        self.net = nn.Sequential(
            OrderedDict((f"layer{p.index}", block_from_plan(p, cfg.leaky_slope)) for p in plans)
        )
        dcgan_init(self, cfg.init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        expected = (c.channels, c.image_size, c.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"Discriminator expects images of shape (B, {c.channels}, {c.image_size}, "
                f"{c.image_size}), got {tuple(x.shape)}"
            )
        return self.net(x).reshape(x.shape[0])  # (B, 1, 1, 1) -> (B,)

    def layers(self) -> list[LayerPlan]:
        return list(self.plans)

    def describe(self) -> str:
        return describe_plan(list(self.plans))

    def extra_repr(self) -> str:
        c = self.cfg
        return (
            f"image={c.channels}x{c.image_size}x{c.image_size}, features={c.d_features}, "
            f"activation={c.d_activation}, batchnorm={c.batchnorm}"
        )
