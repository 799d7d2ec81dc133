"""Optimizers: Adam, SGD and AdaS by name, with TTUR learning-rate resolution."""

from .adas import Adas, adas_update
from .factory import (
    OPTIMIZERS,
    OptimizerSpec,
    build_optimizer,
    build_optimizers,
    check_config,
    resolved_lrs,
)

__all__ = [
    "OPTIMIZERS",
    "Adas",
    "OptimizerSpec",
    "adas_update",
    "build_optimizer",
    "build_optimizers",
    "check_config",
    "resolved_lrs",
]
