"""Memory regression baselines: deterministic figures of a few small configs, committed to
``benchmarks/baselines/memory.json`` and checked by ``tests/memory/test_memory_baselines.py``.

Two kinds of figure, checked differently so the check holds on whatever machine CI lands on:

* **Machine-independent** (parameter bytes, torchinfo's batch figure, the project's estimate):
  pure arithmetic over shapes, compared exactly on every machine.
* **The measured peak** of a CPU step depends on the kernels oneDNN picks, which depend on the
  ISA level (AVX2 and AVX-512 allocate different scratch: +2.2 % for one config) and the torch
  release. Peaks are filed per :func:`xraygan.fingerprint.machine_class`, side by side
  (``"measured": {"cpu-avx2-torch2.14": {...}, "cpu-avx512-torch2.14": {...}}``), and compared
  against the entry of the current class within 2 %. On a class with no entry the peak is
  still checked, against the estimate: measured / estimate must lie in
  :data:`ESTIMATE_BAND`, set from a spread of configs on two machine classes (below), so the
  check never silently passes and never fails for a CPU it has not seen.

A figure that grows beyond its tolerance fails the check with the config and the figure named;
a figure that shrinks passes (and can be lowered). Update deliberately with ``xraygan memory
--update-baselines`` (rewrites the machine-independent figures and the current machine's
measured entry only; other classes' entries are kept) and commit the file with the change.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import OptimConfig
from ..fingerprint import fingerprint, machine_class
from ..presets import get_preset
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

MEASURED = "measured_peak_bytes"
# exact: any new weight or saved tensor is a deliberate change, and none depends on the machine
EXACT_FIGURES: dict[str, float] = {"param_bytes": 0.0, "torchinfo_batch_bytes": 0.0,
                                   "estimate_bytes": 0.0}
# Within one machine class the peak is reproducible to the byte (3 of 3 reruns); 2 % absorbs a
# different kernel for one layer after a minor oneDNN update, not a new activation kept alive.
MEASURED_TOLERANCE = 0.02
FIGURE_TOLERANCES: dict[str, float] = {**EXACT_FIGURES, MEASURED: MEASURED_TOLERANCE}

# measured / estimate on a machine class without an entry. Data (docs/performance.md "Memory regression
# check", 18 configs: 3 presets x 16/32/64 px x widths 8-32 x batch 4-64 x AdaS/Adam/SGD, at 1
# and 2 threads; plus the three baseline configs on AVX-512):
#   AMD EPYC, AVX2, torch 2.14.1:  0.992 (paper-elu 64px w32 b32 adam) .. 1.082 (paper-elu
#                                  16px w8 b8 adas, 2 threads; 1.063 at 1 thread)
#   AMD EPYC Zen 4, AVX-512:       1.020 (dcgan 32px) .. 1.088 (paper-elu 16px w8 b8 adas);
#                                  docs/performance.md's 64px widths 32-128 rows: 0.992 .. 1.058
# The smallest configs sit highest (a fixed oneDNN scratch weighs most there). The band adds
# 3 % on both sides, the largest AVX2-vs-AVX-512 difference seen for one config (+2.2 %)
# rounded up: a new kept activation map in a baseline config moves the ratio by 10 % or more
# and is caught; a CPU never seen before is not failed for its kernels.
ESTIMATE_BAND: tuple[float, float] = (0.96, 1.12)

# The peak depends on the intra-op thread count (per-thread oneDNN scratch: 2,085,448 bytes
# at 1 thread, 2,114,152 at 2 for paper-elu-nobn 32px): baselines are measured at one thread
# so a machine's core count does not move them.
BASELINE_THREADS = 1


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


@dataclass(frozen=True)
class EstimateMismatch:
    """A measured peak outside the estimate band, on a machine class with no baseline entry."""

    config: str
    machine_class: str
    estimate: int
    measured: int
    band: tuple[float, float]

    @property
    def ratio(self) -> float:
        return self.measured / self.estimate

    def __str__(self) -> str:
        return (f"{self.config}: {MEASURED} {self.measured:,} is {self.ratio:.3f}x the estimate "
                f"{self.estimate:,} (expected {self.band[0]:.2f}-{self.band[1]:.2f}x; no measured "
                f"baseline for machine class {self.machine_class}, so checked against the "
                "estimate)")


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def compute_figures(name: str) -> dict[str, int]:
    """The figures of baseline config ``name``, on the CPU, fp32, one intra-op thread."""
    spec = BASELINE_CONFIGS[name]
    model = get_preset(spec["preset"], spec["image_size"], g_features=spec["features"],
                       d_features=spec["features"])
    optim = OptimConfig(name=spec["optimizer"], momentum=spec.get("momentum", 0.0))
    with _threads(BASELINE_THREADS):
        row = memory_row(model, optim, spec["batch"], preset=spec["preset"], device="cpu")
    return {fig: int(getattr(row, fig)) for fig in FIGURE_TOLERANCES}


def read_baselines(path: str | Path = BASELINE_PATH) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def current_baselines(previous: dict[str, Any] | None = None,
                      figures: dict[str, dict[str, int]] | None = None) -> dict[str, Any]:
    """The baseline file for the current code on this machine: machine-independent figures
    recomputed, this machine class's measured entry replaced, other classes' entries kept.

    ``figures`` (name -> compute_figures(name)) may be passed when already computed.
    """
    figures = figures if figures is not None else {n: compute_figures(n) for n in BASELINE_CONFIGS}
    fp = fingerprint("cpu")
    # the process settings of whoever ran the update are not a property of the machine; the
    # measurement's own thread count is recorded instead
    machine = {k: v for k, v in fp.items() if k != "process"}
    measured = dict((previous or {}).get("measured", {}))
    measured[machine_class(fp)] = {
        "machine": machine,
        "threads": BASELINE_THREADS,
        "peaks": {n: f[MEASURED] for n, f in figures.items()},
    }
    return {
        "tolerances": {**EXACT_FIGURES, MEASURED: MEASURED_TOLERANCE},
        "estimate_band": list(ESTIMATE_BAND),
        "configs": {name: {"spec": spec,
                           "figures": {k: figures[name][k] for k in EXACT_FIGURES}}
                    for name, spec in BASELINE_CONFIGS.items()},
        "measured": measured,
    }


def write_baselines(path: str | Path | None = None) -> Path:
    """Rewrite ``path`` (default :data:`BASELINE_PATH`): machine-independent figures and this
    machine class's measured entry; other classes' entries are kept as they are."""
    path = Path(path if path is not None else BASELINE_PATH)
    previous = read_baselines(path) if path.exists() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(current_baselines(previous), indent=2, sort_keys=True) + "\n")
    return path


def compare(name: str, baseline: dict[str, int], current: dict[str, int],
            tolerances: dict[str, float] = FIGURE_TOLERANCES) -> list[Regression]:
    """The figures of ``name`` that grew beyond their tolerance."""
    out = []
    for fig, tol in tolerances.items():
        if fig in baseline and current[fig] > baseline[fig] * (1.0 + tol):
            out.append(Regression(name, fig, baseline[fig], current[fig], tol))
    return out


def check(name: str, data: dict[str, Any], current: dict[str, int], *,
          machine: str | None = None) -> tuple[list[Regression | EstimateMismatch], str]:
    """Check config ``name``'s ``current`` figures against the baseline file ``data``.

    Returns (problems, how the measured peak was checked). Exact figures are compared on every
    machine; the measured peak against this machine class's entry, or, with none, against
    the estimate band.
    """
    machine = machine or machine_class()
    problems: list[Regression | EstimateMismatch] = list(
        compare(name, data["configs"][name]["figures"], current, EXACT_FIGURES))
    entry = data.get("measured", {}).get(machine, {}).get("peaks", {})
    if name in entry:
        problems += compare(name, {MEASURED: entry[name]}, current, {MEASURED: MEASURED_TOLERANCE})
        return problems, f"against the {machine} baseline"
    low, high = data.get("estimate_band", ESTIMATE_BAND)
    ratio = current[MEASURED] / current["estimate_bytes"]
    if not low <= ratio <= high:
        problems.append(EstimateMismatch(name, machine, current["estimate_bytes"],
                                         current[MEASURED], (low, high)))
    return problems, f"against the estimate (no {machine} baseline; ratio {ratio:.3f})"
