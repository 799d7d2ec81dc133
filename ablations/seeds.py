"""Repeat one configuration over N seeds, so a table can show a mean and a confidence interval.

The configuration is ``--config FILE`` (e.g. a run's config.json), ``--cell STUDY:KEY`` (a
cell of another grid study at this scale), or by default Table II's paper-elu with AdaS.
Only ``train.seed`` changes (weights, noise, batch order); the dataset stays the same.
(Every grid study also takes ``--seeds N`` to repeat each of its cells.)
"""

from __future__ import annotations

import dataclasses

from xraygan.errors import ConfigError

from .spec import STUDIES, Cell, StudyContext, StudySpec, first_metric

DEFAULT_SEEDS = 5


def cells(ctx: StudyContext) -> list[Cell]:
    base = ctx.base if ctx.base is not None else ctx.config(name="paper-elu-adas")
    n = ctx.seeds  # the CLI passes DEFAULT_SEEDS when --seeds is not given; 1 means one
    return [
        Cell(f"seed{s}", dataclasses.replace(
            base, name=f"{base.name}-seed{s}", train=dataclasses.replace(base.train, seed=s)),
            {"seed": s})
        for s in range(n)
    ]


def cell_of(study: str, key: str, ctx: StudyContext) -> Cell:
    """The cell ``key`` of grid study ``study`` at ``ctx``'s scale (for ``--cell STUDY:KEY``)."""
    spec = STUDIES.get(study, field="--cell")
    if not spec.is_grid or spec.name == "seeds":
        raise ConfigError(f"--cell: {study} is not a grid study with named cells")
    found = {c.key: c for c in spec.grid(dataclasses.replace(ctx, seeds=1))}
    if key not in found:
        raise ConfigError(f"--cell: study {study} has no cell {key!r}; cells: {', '.join(found)}")
    return found[key]


STUDIES.add("seeds", StudySpec(
    name="seeds",
    description=f"one configuration over N seeds (--seeds N, default {DEFAULT_SEEDS}; "
                "--cell STUDY:KEY or --config FILE)",
    cells=cells,
    score=first_metric("fid", "d_loss_mean"),
    repeat_seeds=False,
    default_seeds=DEFAULT_SEEDS,
    takes_base=True,
    sections=("protocol", "trials", "table1", "quality", "anatomy", "correlation", "throughput", "dynamics",
              "samples", "spectrum", "memorization", "collapse", "claims"),
))
