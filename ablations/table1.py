"""Table I: the paper's four configurations, scored by FID and the D-loss statistics.

| cell          | optimizer | activations (G / D)   | TTUR |
|---------------|-----------|-----------------------|------|
| adas-elu      | AdaS      | ELU / ELU             | no   |
| adam-elu      | Adam      | ELU / ELU             | no   |
| adas-elu-ttur | AdaS      | ELU / ELU             | yes  |
| adas-dcgan    | AdaS      | ReLU / LeakyReLU 0.2  | no   |

All four share the Table II architecture (batch norm in D's hidden layers): the table's
"Activation" column is the only architectural change, so the last row swaps activations
only (the `dcgan` preset would also move batch norm into G, a second change at once).
Metrics per trial: FID, d_loss_mean/var/std (the table's columns), t0 (the initial
low-D-loss phase) and the collapse flags.
"""

from __future__ import annotations

from xraygan.config import replace_path

from .spec import STUDIES, Cell, StudyContext, StudySpec, first_metric, named

ROWS = (
    # key, optimizer, g activation, d activation, ttur
    ("adas-elu", "adas", "elu", "elu", False),
    ("adam-elu", "adam", "elu", "elu", False),
    ("adas-elu-ttur", "adas", "elu", "elu", True),
    ("adas-dcgan", "adas", "relu", "leaky_relu", False),
)


def cells(ctx: StudyContext) -> list[Cell]:
    out = []
    for key, optimizer, g_act, d_act, ttur in ROWS:
        cfg = ctx.config(optimizer=optimizer, g_activation=g_act, d_activation=d_act)
        cfg = named(replace_path(cfg, "optim.ttur", ttur), key)
        out.append(Cell(key, cfg, {"optimizer": optimizer, "g_activation": g_act,
                                   "d_activation": d_act, "ttur": ttur}))
    return out


STUDIES.add("table1", StudySpec(
    name="table1",
    description="Table I: AdaS/ELU, Adam/ELU, AdaS/ELU/TTUR, AdaS with DCGAN activations",
    cells=cells,
    score=first_metric("fid", "d_loss_mean"),
    sections=("protocol", "trials", "table1", "quality", "anatomy", "correlation", "throughput", "dynamics",
              "samples", "spectrum", "memorization", "collapse", "claims"),
))
