"""What G and D share: a module built block by block from a validated layer plan."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import nn

from ..config import ModelConfig
from .activations import check_activation
from .geometry import LayerPlan, describe_plan
from .layers import block_from_plan, dcgan_init


class PlannedNet(nn.Module):
    """``net`` holds one block per plan (``layer{i}``: conv, bn, act), DCGAN-initialised.

    Everything is validated before the first allocation: the plans (geometry) come in already
    checked, the activation name is checked here.
    """

    def __init__(self, cfg: ModelConfig, plans: Sequence[LayerPlan], activation: str, field: str) -> None:
        super().__init__()
        check_activation(activation, field, cfg.leaky_slope)
        self.cfg = cfg
        self.plans: tuple[LayerPlan, ...] = tuple(plans)
        self.net = nn.Sequential(
            OrderedDict((f"layer{p.index}", block_from_plan(p, cfg.leaky_slope)) for p in plans)
        )
        dcgan_init(self, cfg.init_std)

    def layers(self) -> list[LayerPlan]:
        return list(self.plans)

    def describe(self) -> str:
        return describe_plan(list(self.plans))
