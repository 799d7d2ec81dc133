"""Optimizers by name: one :class:`OptimizerSpec` per optimizer holds everything the project
knows about it, as timm's ``OptimInfo`` does, so a new optimizer is one registration.

The spec carries the default learning rate and betas, its capabilities (betas, momentum), its
builder and the model of the state it keeps per parameter (used by the memory estimate and the
resource guard before anything is allocated). Value ranges live once, in the config's field
metadata (``OptimConfig``); :func:`check_config` adds only what depends on the optimizer.

Importing this module does not import torch: the command line lists and checks optimizer names
without it. Builders import torch when called.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..config import (
    TTUR_D_FACTOR,
    TTUR_G_FACTOR,
    OptimConfig,
    check_learning_rate,
    check_section,
)
from ..errors import ConfigError
from ..lazy import lazy_module
from ..registry import Registry

torch = lazy_module("torch")  # the command line lists optimizer names without torch


class ParamLike(Protocol):
    """What a state model reads of a parameter: a tensor, or the guard's shape stand-in."""

    shape: Sequence[int]

    def numel(self) -> int: ...
    def element_size(self) -> int: ...
    def dim(self) -> int: ...


STEP_BYTES = 4  # the per-parameter ``step`` counter: a 0-d float32 tensor in torch and AdaS


def _nbytes(p: ParamLike) -> int:
    return p.numel() * p.element_size()


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer: defaults, capabilities, builder and state-memory model."""

    default_lr: float
    build: Callable[[list[Any], OptimConfig, float], torch.optim.Optimizer]
    state_bytes: Callable[[Sequence[ParamLike], OptimConfig], int]
    """Bytes of the state kept for these parameters after the first step."""
    betas: tuple[float, float] | None = None
    """Defaults for ``optim.beta1``/``beta2`` left unset; None: the optimizer has no betas."""
    has_momentum: bool = False
    """Reads ``optim.momentum``; without it, a momentum other than 0 is an error."""
    description: str = ""


OPTIMIZERS: Registry[OptimizerSpec] = Registry("optimizer")


def betas_of(cfg: OptimConfig, spec: OptimizerSpec) -> tuple[float, float]:
    assert spec.betas is not None
    b1 = spec.betas[0] if cfg.beta1 is None else cfg.beta1
    b2 = spec.betas[1] if cfg.beta2 is None else cfg.beta2
    return b1, b2


# --------------------------------------------------------------------------- Adam
def _build_adam(params: list[Any], cfg: OptimConfig, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr, betas=betas_of(cfg, ADAM), eps=cfg.eps,
                            weight_decay=cfg.weight_decay, foreach=True)


def _adam_state(params: Sequence[ParamLike], cfg: OptimConfig) -> int:
    """exp_avg and exp_avg_sq (torch.optim.Adam), plus the step counter."""
    return sum(2 * _nbytes(p) + STEP_BYTES for p in params)


# DCGAN (Radford et al. 2015, sec. 4): Adam, lr 2e-4, beta1 0.5.
ADAM = OPTIMIZERS.add("adam", OptimizerSpec(
    2e-4, _build_adam, _adam_state, betas=(0.5, 0.999), description="Adam (DCGAN settings)"))


# --------------------------------------------------------------------------- SGD
def _build_sgd(params: list[Any], cfg: OptimConfig, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                           foreach=True)


def _sgd_state(params: Sequence[ParamLike], cfg: OptimConfig) -> int:
    """A momentum buffer per parameter when momentum > 0; nothing otherwise."""
    return sum(_nbytes(p) for p in params) if cfg.momentum > 0 else 0


SGD = OPTIMIZERS.add("sgd", OptimizerSpec(
    0.01, _build_sgd, _sgd_state, has_momentum=True, description="SGD, optional momentum"))


# --------------------------------------------------------------------------- AdaS
ADAS_DEFAULTS: dict[str, Any] = {
    "lr": 0.001,
    "lr2": 0.005,
    "lr3": 0.0005,
    "betas": (0.999, 0.999, 0.9999),
    "eps": 1e-8,
    "weight_decay": 0.0,
}
"""Eliyahu's reference defaults (lr, lr2, lr3, beta_1, beta_2, beta_3, epsilon); weight decay
off. ``lr`` is the *initial* per-input learning rate."""


def _build_adas(params: list[Any], cfg: OptimConfig, lr: float) -> torch.optim.Optimizer:
    from .adas import Adas

    b1, b2 = betas_of(cfg, ADAS)
    return Adas(params, lr=lr, lr2=cfg.lr2, lr3=cfg.lr3, betas=(b1, b2, cfg.beta3), eps=cfg.eps,
                weight_decay=cfg.weight_decay)


def _adas_state(params: Sequence[ParamLike], cfg: OptimConfig) -> int:
    """exp_avg_sq and moment like p; lr, lr_exp_avg_sq, lr_moment of shape p.shape[1:] (one per
    input); master_lr and master_exp_avg_sq (0-d); the step counter."""
    total = 0
    for p in params:
        rest = math.prod(p.shape[1:]) if p.dim() > 0 else 1
        total += 2 * _nbytes(p) + (3 * rest + 2) * p.element_size() + STEP_BYTES
    return total


ADAS = OPTIMIZERS.add("adas", OptimizerSpec(
    ADAS_DEFAULTS["lr"], _build_adas, _adas_state,
    betas=(ADAS_DEFAULTS["betas"][0], ADAS_DEFAULTS["betas"][1]),
    description="AdaS (Eliyahu): learned per-input learning rates"))


# --------------------------------------------------------------------------- checks and TTUR
def check_config(cfg: OptimConfig) -> OptimizerSpec:
    """Validate ``cfg`` and return its spec. Ranges come from the config's field metadata;
    fields the optimizer does not read must keep their neutral value (rejected, not ignored)."""
    spec = OPTIMIZERS.get(cfg.name, field="optim.name")
    check_section(cfg, "optim")
    if spec.betas is None:
        for name in ("beta1", "beta2"):
            if getattr(cfg, name) is not None:
                raise ConfigError(f"optim.{name}: {cfg.name} has no betas; leave it unset")
    if not spec.has_momentum and cfg.momentum != 0.0:
        users = ", ".join(n for n in OPTIMIZERS.names() if OPTIMIZERS.get(n).has_momentum)
        raise ConfigError(f"optim.momentum: only {users} uses momentum, not {cfg.name}; "
                          "leave it 0")
    return spec


def resolved_lrs(cfg: OptimConfig) -> tuple[float, float]:
    """``(lr_g, lr_d)``: an explicit ``cfg.lr_g``/``cfg.lr_d`` wins; otherwise the optimizer's
    default, times ``TTUR_G_FACTOR``/``TTUR_D_FACTOR`` when ``cfg.ttur`` is on (Heusel et al.
    2017: D learns faster than G)."""
    spec = check_config(cfg)
    g_factor, d_factor = (TTUR_G_FACTOR, TTUR_D_FACTOR) if cfg.ttur else (1.0, 1.0)
    lr_g = cfg.lr_g if cfg.lr_g is not None else spec.default_lr * g_factor
    lr_d = cfg.lr_d if cfg.lr_d is not None else spec.default_lr * d_factor
    return float(lr_g), float(lr_d)


def state_bytes(params: Sequence[ParamLike], cfg: OptimConfig) -> int:
    """Bytes of optimizer state ``cfg.name`` keeps for ``params`` (after its first step)."""
    return OPTIMIZERS.get(cfg.name, field="optim.name").state_bytes(params, cfg)


def build_optimizer(params: Iterable[Any], cfg: OptimConfig, lr: float) -> torch.optim.Optimizer:
    """The optimizer ``cfg.name`` over ``params`` with learning rate ``lr`` (for AdaS: the
    initial per-input rate) and the other hyperparameters from ``cfg``."""
    spec = check_config(cfg)
    check_learning_rate("lr", lr)
    return spec.build(list(params), cfg, float(lr))


def build_optimizers(
    g_params: Iterable[Any], d_params: Iterable[Any], cfg: OptimConfig
) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """``(opt_g, opt_d)`` with the learning rates of :func:`resolved_lrs`."""
    lr_g, lr_d = resolved_lrs(cfg)
    return build_optimizer(g_params, cfg, lr_g), build_optimizer(d_params, cfg, lr_d)
