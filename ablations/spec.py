"""What a study is: a grid of named cells or a sampler-driven search, and how trials score.

A *cell* is one configuration with a stable key (``adas-elu``, ``strides-g``, ``w64-s128``);
the key is stored on the trial (user attr ``cell``) and is what makes grids idempotent: a cell
that already has a trial is never enqueued again, by any worker or machine.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xraygan.config import ExperimentConfig, replace_path
from xraygan.errors import ConfigError
from xraygan.registry import Registry

from .scale import Scale, base_config

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class Cell:
    key: str  # unique within a study; also names the run folder
    config: ExperimentConfig
    params: Mapping[str, Any] = field(default_factory=dict)  # the factors this cell sets, for reports
    reference: bool = False  # the baseline other cells are compared with (compress-search)


@dataclass(frozen=True)
class StudyContext:
    """Everything a study's definition may read: the scale, the data, the base config."""

    scale: Scale
    data: str = "phantom"
    seeds: int = 1  # repeats of every grid cell (train.seed 0..seeds-1)
    base: ExperimentConfig | None = None  # the `seeds` study's configuration (None: paper-elu)
    trials: int | None = None  # search studies: total trials (None: the study's default)
    holdout: float | None = None  # held-out fraction of real data (None: scale.REAL_DATA_HOLDOUT)

    def config(self, **kwargs: Any) -> ExperimentConfig:
        return base_config(self.scale, data=self.data, holdout=self.holdout, **kwargs)


Score = Callable[[Mapping[str, Any]], tuple[str, float]]
"""A trial's record (its flat metrics plus params_g, params_d, images_per_s,
peak_memory_bytes) -> (name of the quantity used, value): the trial's Optuna value."""


DEFAULT_SECTIONS = ("protocol", "trials", "anatomy", "throughput", "dynamics", "samples", "collapse",
                    "claims")


@dataclass(frozen=True)
class StudySpec:
    name: str
    description: str
    score: Score
    direction: str = "minimize"
    cells: Callable[[StudyContext], list[Cell]] | None = None  # grid studies
    # search studies: the trial's cell from its suggestions, the study's sampler and pruner
    suggest: Callable[[optuna.Trial, StudyContext], Cell] | None = None
    # search studies: the suggest() params of the reference trial, run and finished first
    reference: Callable[[StudyContext], dict[str, Any]] | None = None
    sampler: Callable[[StudyContext], optuna.samplers.BaseSampler] | None = None
    pruner: Callable[[StudyContext, Mapping[str, Any] | None], optuna.pruners.BasePruner] | None = None
    finish: Callable[[StudyContext, Cell, Mapping[str, Any], Mapping[str, Any] | None], dict[str, Any]] | None = None
    # (ctx, cell, trial attrs, reference attrs) -> extra attrs (e.g. TPE constraints)
    # a constrained search: how many constraints each trial carries (Trial.set_constraint,
    # from its "constraints" attr); pruned and failed trials get 1.0 each, infeasible
    constraints: int = 0
    default_trials: int = 0
    repeat_seeds: bool = True  # False: the study handles ctx.seeds itself (the seeds study)
    default_seeds: int = 1  # seeds per cell when `--seeds` is not given
    takes_base: bool = False  # its configuration may come from `--cell STUDY:KEY` or `--config`
    # The study's report page: its sections in order (names in reports/build.py SECTIONS) and
    # the claims it bears on beyond those that name the study (gan_core/claims/engine.py registry).
    sections: tuple[str, ...] = DEFAULT_SECTIONS
    claims: tuple[str, ...] = ()
    # metrics its trials compute beyond the default ones (xraygan.metrics registry names)
    metrics: tuple[str, ...] = ()
    data: str | None = None  # the data source when `--data` is not given (None: phantom)

    @property
    def is_grid(self) -> bool:
        return self.cells is not None

    def grid(self, ctx: StudyContext) -> list[Cell]:
        """The study's cells, each repeated over ``ctx.seeds`` seeds; keys checked unique."""
        if self.cells is None:
            raise ConfigError(f"study {self.name!r} is a search, not a grid")
        cells = self.cells(ctx)
        if self.repeat_seeds:
            cells = with_seeds(cells, ctx.seeds)
        keys = [c.key for c in cells]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ConfigError(f"study {self.name!r}: duplicated cell keys {', '.join(dup)}")
        return cells


STUDIES: Registry[StudySpec] = Registry("study")


def with_seeds(cells: list[Cell], seeds: int) -> list[Cell]:
    """Each cell repeated with ``train.seed`` 0..seeds-1 (keys ``KEY-s0``...); 1 = unchanged."""
    if seeds < 1:
        raise ConfigError(f"--seeds: expected >= 1, got {seeds}")
    if seeds == 1:
        return cells
    out = []
    for cell in cells:
        for s in range(seeds):
            cfg = replace_path(cell.config, "train.seed", s)
            out.append(dataclasses.replace(
                cell, key=f"{cell.key}-s{s}", config=dataclasses.replace(cfg, name=f"{cell.key}-s{s}"),
                params={**cell.params, "seed": s},
            ))
    return out


def first_metric(*names: str) -> Score:
    """Score by the first of ``names`` present and finite in the metrics (e.g. FID, then a
    fallback when FID was not computed)."""

    def score(metrics: Mapping[str, Any]) -> tuple[str, float]:
        for name in names:
            value = metrics.get(name)
            if isinstance(value, (int, float)) and math.isfinite(value):
                return name, float(value)
        raise ValueError(f"none of the metrics {', '.join(names)} is available and finite")

    return score


def named(cfg: ExperimentConfig, key: str) -> ExperimentConfig:
    return dataclasses.replace(cfg, name=key)
