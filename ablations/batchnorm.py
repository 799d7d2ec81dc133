"""Batch norm on and off in G and D: memory, throughput and quality.

The paper (Fig. 7/8) reports that removing batch norm from G saves 1.2 to 7 % of memory.
Each cell records the measured peak memory of one training step and the estimate
(xraygan.memory), the training throughput (images/s) and the quality metrics.
"""

from __future__ import annotations

from xraygan.config import BATCHNORM_PLACEMENTS

from .spec import STUDIES, Cell, StudyContext, StudySpec, first_metric, named


def cells(ctx: StudyContext) -> list[Cell]:
    return [
        Cell(f"bn-{where}", named(ctx.config(batchnorm=where), f"bn-{where}"),
             {"batchnorm": where, "bn_g": where in ("g", "both"), "bn_d": where in ("d", "both")})
        for where in BATCHNORM_PLACEMENTS
    ]


STUDIES.add("batchnorm", StudySpec(
    name="batchnorm",
    description="batch norm none / D only / G only / both: memory, throughput, quality",
    cells=cells,
    score=first_metric("fid", "d_loss_mean"),
    sections=("protocol", "trials", "table1", "quality", "memory", "throughput", "dynamics",
              "samples", "collapse", "claims"),
))
