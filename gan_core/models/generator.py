"""The generator: z (B, latent) -> image (B, C, H, W) in [-1, 1], built from a layer plan.

DCGAN family (Radford et al. 2016; Table II of the paper): a transposed conv from the 1x1 latent
map to the initial size, strided transposed convs up to the image size, optional fully connected
layers on the flattened image (the paper's compression study), tanh.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..config import ModelConfig
from .geometry import LayerPlan, describe_plan, plan_generator
from .layers import block_from_plan, check_activation, dcgan_init


class Generator(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        # Validate everything before the first allocation: geometry, then names.
        plans = plan_generator(cfg)
        check_activation(cfg.g_activation, "model.g_activation", cfg.leaky_slope)
        self.cfg = cfg
        self.plans: tuple[LayerPlan, ...] = tuple(plans)
        self.net = nn.Sequential(
            OrderedDict((f"layer{p.index}", block_from_plan(p, cfg.leaky_slope)) for p in plans)
        )
        dcgan_init(self, cfg.init_std)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # (B, latent) or (B, latent, 1, 1) -> (B, latent, 1, 1) -> ... -> (B, C, H, W)
        latent = self.cfg.latent_dim
        if z.ndim == 2 and z.shape[1] == latent:
            z = z[:, :, None, None]
        elif not (z.ndim == 4 and tuple(z.shape[1:]) == (latent, 1, 1)):
            raise ValueError(
                f"Generator expects z of shape (B, {latent}) or (B, {latent}, 1, 1), "
                f"got {tuple(z.shape)}"
            )
        return self.net(z)

    def layers(self) -> list[LayerPlan]:
        return list(self.plans)

    def describe(self) -> str:
        return describe_plan(list(self.plans))

    def extra_repr(self) -> str:
        c = self.cfg
        return (
            f"latent={c.latent_dim}, image={c.channels}x{c.image_size}x{c.image_size}, "
            f"features={c.g_features}, activation={c.g_activation}, batchnorm={c.batchnorm}"
        )
