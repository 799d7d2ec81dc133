"""The discriminator: image (B, C, H, W) -> logits (B,), built from a layer plan.

DCGAN family (Radford et al. 2016; Table II of the paper): optional fully connected layers on the
flattened input (the paper's compression study), strided convs down, a conv of the final map
size to a 1x1 logit. No sigmoid: it lives in the loss (BCE with logits is the numerically stable
form of the paper's sigmoid + BCE).
"""

from __future__ import annotations

import torch

from ..config import ModelConfig
from .geometry import plan_discriminator
from .planned import PlannedNet


class Discriminator(PlannedNet):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg, plan_discriminator(cfg), cfg.d_activation, "model.d_activation")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        expected = (c.channels, c.image_size, c.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"Discriminator expects images of shape (B, {c.channels}, {c.image_size}, "
                f"{c.image_size}), got {tuple(x.shape)}"
            )
        return self.net(x).reshape(x.shape[0])  # (B, 1, 1, 1) -> (B,)

    def extra_repr(self) -> str:
        c = self.cfg
        return (
            f"image={c.channels}x{c.image_size}x{c.image_size}, features={c.d_features}, "
            f"activation={c.d_activation}, batchnorm={c.batchnorm}"
        )
