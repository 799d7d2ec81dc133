"""One GAN iteration (a D update, then a G update), shared by the trainer, the memory
measurements and the benchmarks, so that all three measure the same code."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from .losses import GANLoss


class GANStep:
    """``step(real, z)`` runs one iteration and returns a detached float tensor
    ``[loss_d, loss_g, D(x), D(G(z))]`` (D outputs as mean probabilities), still on the device:
    the caller decides when to synchronize.

    amp_dtype: autocast dtype (bfloat16 / float16) or None for fp32. With float16 a GradScaler
    guards against underflow; bfloat16 has fp32's range and needs none.
    """

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module,
        opt_g: torch.optim.Optimizer,
        opt_d: torch.optim.Optimizer,
        loss: GANLoss,
        *,
        device: torch.device,
        amp_dtype: torch.dtype | None = None,
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        self.G, self.D, self.opt_g, self.opt_d, self.loss = G, D, opt_g, opt_d, loss
        self.device = device
        self.amp_dtype = amp_dtype
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
        self.d_params = [p for p in D.parameters() if p.requires_grad]
        self.g_fn, self.d_fn = (torch.compile(G), torch.compile(D)) if compile else (G, D)

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def __call__(self, real: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        real = real.contiguous(memory_format=self.memory_format)

        # (1) D: maximize log D(x) + log(1 - D(G(z)))
        with self.autocast():
            fake = self.g_fn(z)  # (B, C, H, W) in [-1, 1]
            real_logits = self.d_fn(real)  # (B,)
            fake_logits = self.d_fn(fake.detach())
            loss_d = self.loss.d_loss(real_logits.float(), fake_logits.float())
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(loss_d).backward()
        self.scaler.step(self.opt_d)

        # (2) G: the configured G objective on the same fake batch. D's weights are frozen for
        # this backward: their gradients would be thrown away by the next D step anyway.
        _requires_grad(self.d_params, False)
        try:
            with self.autocast():
                loss_g = self.loss.g_loss(self.d_fn(fake).float())
            self.opt_g.zero_grad(set_to_none=True)
            self.scaler.scale(loss_g).backward()
            self.scaler.step(self.opt_g)
            self.scaler.update()
        finally:
            _requires_grad(self.d_params, True)

        with torch.no_grad():
            return torch.stack([
                loss_d.detach(), loss_g.detach(),
                torch.sigmoid(real_logits.detach().float()).mean(),
                torch.sigmoid(fake_logits.detach().float()).mean(),
            ])


def _requires_grad(params: list[nn.Parameter], flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)
