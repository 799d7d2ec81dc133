"""Memory regression baselines: deterministic figures of a few small configs, committed to
``benchmarks/baselines/memory.json`` and checked by ``tests/test_memory_baselines.py``.

A figure that grows beyond its tolerance fails the check with the config and the figure named;
a figure that shrinks passes (and is reported, so the baseline can be lowered). Update the
file deliberately with ``xraygan memory --update-baselines`` and commit it with the change
that moved the numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import OptimConfig
from ..runs import atomic_write_text
from .report import memory_row

BASELINE_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "baselines" / "memory.json"

# Small enough for the default test run (well under a second each on two cores), varied enough
# to cover both presets' layers, every BN placement kind and every optimizer's state.
BASELINE_CONFIGS: dict[str, dict[str, Any]] = {
    "paper-elu-16-w8-b8-adas": dict(preset="paper-elu", image_size=16, features=8, batch=8,
                                    optimizer="adas"),
    "paper-elu-nobn-32-w8-b8-adam": dict(preset="paper-elu-nobn", image_size=32, features=8,
                                         batch=8, optimizer="adam"),
    "dcgan-32-w16-b4-sgd": dict(preset="dcgan", image_size=32, features=16, batch=4,
                                optimizer="sgd", momentum=0.9),
}

FIGURE_TOLERANCES: dict[str, float] = {
    "param_bytes": 0.0,  # exact: any new weight is a deliberate change
    "torchinfo_batch_bytes": 0.0,
    "estimate_bytes": 0.0,
    # The measured CPU peak depends on oneDNN's kernel choice and scratch sizes; 2 % absorbs a
    # different kernel for one layer, not a new activation kept alive.
    "measured_peak_bytes": 0.02,
}


@dataclass(frozen=True)
class Regression:
    config: str
    figure: str
    baseline: int
    current: int
    tolerance: float

    def __str__(self) -> str:
        growth = 100.0 * (self.current / self.baseline - 1.0)
        return (f"{self.config}: {self.figure} grew {growth:+.2f}% ({self.baseline:,} -> "
                f"{self.current:,} bytes; tolerance {100 * self.tolerance:.1f}%)")


def compute_figures(name: str) -> dict[str, int]:
    """The figures of baseline config ``name``, on the CPU, fp32."""
    from ..presets import get_preset

    spec = BASELINE_CONFIGS[name]
    model = get_preset(spec["preset"], spec["image_size"], g_features=spec["features"],
                       d_features=spec["features"])
    optim = OptimConfig(name=spec["optimizer"], momentum=spec.get("momentum", 0.0))
    row = memory_row(model, optim, spec["batch"], preset=spec["preset"], device="cpu")
    return {fig: int(getattr(row, fig)) for fig in FIGURE_TOLERANCES}


def current_baselines() -> dict[str, Any]:
    return {
        "torch": torch.__version__,
        "tolerances": FIGURE_TOLERANCES,
        "configs": {name: {"spec": spec, "figures": compute_figures(name)}
                    for name, spec in BASELINE_CONFIGS.items()},
    }


def write_baselines(path: str | Path = BASELINE_PATH) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(current_baselines(), indent=2, sort_keys=True) + "\n")
    return path


def read_baselines(path: str | Path = BASELINE_PATH) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def compare(name: str, baseline: dict[str, int], current: dict[str, int],
            tolerances: dict[str, float] = FIGURE_TOLERANCES) -> list[Regression]:
    """The figures of ``name`` that grew beyond their tolerance."""
    out = []
    for fig, tol in tolerances.items():
        if fig in baseline and current[fig] > baseline[fig] * (1.0 + tol):
            out.append(Regression(name, fig, baseline[fig], current[fig], tol))
    return out
