"""Optimizers by name, with their default hyperparameters, and TTUR learning-rate resolution.

``OPTIMIZERS`` maps a name (``OptimConfig.name``) to an :class:`OptimizerSpec`; the trainer
calls :func:`build_optimizers` and never names an optimizer class itself. Config values are
checked here, before any optimizer exists, so a bad value is a :class:`ConfigError` naming the
``optim.*`` field instead of a torch traceback.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..config import (
    TTUR_D_FACTOR,
    TTUR_G_FACTOR,
    OptimConfig,
    check_learning_rate,
    check_section,
)
from ..errors import ConfigError
from ..registry import Registry
from .adas import DEFAULTS as ADAS_DEFAULTS
from .adas import Adas


@dataclass(frozen=True)
class OptimizerSpec:
    """How to build one optimizer; ``beta1``/``beta2`` are the defaults for ``None`` in the
    config (``None`` here: the optimizer has no betas)."""

    default_lr: float
    build: Callable[[list[Tensor], OptimConfig, float], torch.optim.Optimizer]
    beta1: float | None = None
    beta2: float | None = None
    description: str = ""


OPTIMIZERS: Registry[OptimizerSpec] = Registry("optimizer")


def _betas(cfg: OptimConfig, spec: OptimizerSpec) -> tuple[float, float]:
    b1 = spec.beta1 if cfg.beta1 is None else cfg.beta1
    b2 = spec.beta2 if cfg.beta2 is None else cfg.beta2
    assert b1 is not None and b2 is not None
    return b1, b2


def _build_adam(params: list[Tensor], cfg: OptimConfig, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(
        params,
        lr=lr,
        betas=_betas(cfg, ADAM),
        eps=cfg.eps,
        weight_decay=cfg.weight_decay,
        foreach=True,
    )


def _build_sgd(params: list[Tensor], cfg: OptimConfig, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, foreach=True
    )


def _build_adas(params: list[Tensor], cfg: OptimConfig, lr: float) -> torch.optim.Optimizer:
    b1, b2 = _betas(cfg, ADAS)
    return Adas(
        params,
        lr=lr,
        lr2=cfg.lr2,
        lr3=cfg.lr3,
        betas=(b1, b2, cfg.beta3),
        eps=cfg.eps,
        weight_decay=cfg.weight_decay,
    )


# DCGAN (Radford et al. 2015, sec. 4): Adam, lr 2e-4, beta1 0.5.
ADAM = OPTIMIZERS.add("adam", OptimizerSpec(2e-4, _build_adam, 0.5, 0.999, "Adam (DCGAN settings)"))
SGD = OPTIMIZERS.add("sgd", OptimizerSpec(0.01, _build_sgd, None, None, "SGD, optional momentum"))
# Eliyahu's reference defaults; lr is the *initial* per-input learning rate.
ADAS = OPTIMIZERS.add(
    "adas",
    OptimizerSpec(
        ADAS_DEFAULTS["lr"],
        _build_adas,
        ADAS_DEFAULTS["betas"][0],
        ADAS_DEFAULTS["betas"][1],
        "AdaS (Eliyahu): learned per-input learning rates",
    ),
)


def _check_lr(field: str, lr: float | None) -> None:
    check_learning_rate(field, lr)  # the one definition, from the config's field metadata


def check_config(cfg: OptimConfig) -> OptimizerSpec:
    """Validate the fields ``cfg.name`` uses; return its spec. Fields another optimizer would
    use and that the user set away from their neutral value are rejected, not ignored."""
    spec = OPTIMIZERS.get(cfg.name, field="optim.name")
    check_section(cfg, "optim")  # ranges of every field (lrs, betas, eps, ...): config metadata
    if spec.beta1 is None:
        for name in ("beta1", "beta2"):
            if getattr(cfg, name) is not None:
                raise ConfigError(f"optim.{name}: {cfg.name} has no betas; leave it unset")
    else:
        for name in ("beta1", "beta2"):
            value = getattr(cfg, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise ConfigError(f"optim.{name}: expected 0 <= {name} < 1, got {value}")
    if cfg.name == "sgd":
        if not 0.0 <= cfg.momentum < 1.0:
            raise ConfigError(f"optim.momentum: expected 0 <= momentum < 1, got {cfg.momentum}")
    elif cfg.momentum != 0.0:
        raise ConfigError(f"optim.momentum: only sgd uses momentum, not {cfg.name}; leave it 0")
    if cfg.name in ("adam", "adas") and not (math.isfinite(cfg.eps) and cfg.eps > 0):
        raise ConfigError(f"optim.eps: expected a finite value > 0, got {cfg.eps}")
    if cfg.name == "adas":
        for name in ("lr2", "lr3"):
            value = getattr(cfg, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"optim.{name}: expected a finite value >= 0, got {value}")
        if not 0.0 <= cfg.beta3 < 1.0:
            raise ConfigError(f"optim.beta3: expected 0 <= beta3 < 1, got {cfg.beta3}")
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


def build_optimizer(params: Iterable[Tensor], cfg: OptimConfig, lr: float) -> torch.optim.Optimizer:
    """The optimizer ``cfg.name`` over ``params`` with learning rate ``lr`` (for AdaS: the
    initial per-input rate) and the other hyperparameters from ``cfg``."""
    spec = check_config(cfg)
    _check_lr("lr", lr)
    return spec.build(list(params), cfg, float(lr))


def build_optimizers(
    g_params: Iterable[Tensor], d_params: Iterable[Tensor], cfg: OptimConfig
) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """``(opt_g, opt_d)`` with the learning rates of :func:`resolved_lrs`."""
    lr_g, lr_d = resolved_lrs(cfg)
    return build_optimizer(g_params, cfg, lr_g), build_optimizer(d_params, cfg, lr_d)
