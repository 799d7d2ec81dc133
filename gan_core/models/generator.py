"""The generator: z (B, latent) -> image (B, C, H, W) in [-1, 1], built from a layer plan.

DCGAN family (Radford et al. 2016; Table II of the paper): a transposed conv from the 1x1 latent
map to the initial size, strided transposed convs up to the image size, optional fully connected
layers on the flattened image (the paper's compression study), tanh.
"""

from __future__ import annotations

import torch

from ..config import ModelConfig
from .geometry import plan_generator
from .planned import PlannedNet


class Generator(PlannedNet):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg, plan_generator(cfg), cfg.g_activation, "model.g_activation")

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

    def extra_repr(self) -> str:
        c = self.cfg
        return (
            f"latent={c.latent_dim}, image={c.channels}x{c.image_size}x{c.image_size}, "
            f"features={c.g_features}, activation={c.g_activation}, batchnorm={c.batchnorm}"
        )
