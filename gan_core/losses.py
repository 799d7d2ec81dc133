"""GAN losses on logits. D returns logits; the sigmoid lives here (numerically stable).

The paper trains with the vanilla minimax loss (its eq. 1):
    min_G max_D  E[log D(x)] + E[log(1 - D(G(z)))]
D's side is binary cross-entropy with targets 1 (real) and 0 (fake). For G there are two forms:
  saturating      minimize  E[log(1 - D(G(z)))]   (eq. 1 as written; weak gradients early on)
  nonsaturating   minimize -E[log D(G(z))]         (Goodfellow et al.'s practical fix; DCGAN's)
With logits l: log D = -softplus(-l) and log(1 - D) = -softplus(l).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .lazy import lazy_module
from .registry import Registry

if TYPE_CHECKING:
    import torch

F = lazy_module("torch.nn.functional")  # the command line lists loss names without torch


class GANLoss(Protocol):
    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor: ...
    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor: ...


LOSSES: Registry[type] = Registry("loss")


def bce_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))]: the BCE sum of the real and the fake half.

    Reported as the sum of both halves, as pytorch/examples dcgan logs ``errD``; its value at
    D's chance level is 2 ln 2 = 1.386.
    """
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


@LOSSES.register("nonsaturating")
@dataclass(frozen=True)
class NonSaturatingLoss:
    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return bce_d_loss(real_logits, fake_logits)

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-fake_logits).mean()  # -E[log D(G(z))]


@LOSSES.register("saturating")
@dataclass(frozen=True)
class SaturatingLoss:
    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return bce_d_loss(real_logits, fake_logits)

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -F.softplus(fake_logits).mean()  # E[log(1 - D(G(z)))], minimized


def build_loss(name: str) -> GANLoss:
    return LOSSES.get(name, field="train.loss")()
