"""Downstream utility: do a configuration's generated radiographs train a classifier as well as
real ones? (train on synthetic, test on real; xraygan.metrics.utility, docs/utility.md)

Each cell trains one GAN on labelled data, then its trial computes, beside FID and the other
metrics, the ``anatomy`` distances (CTR and lung-area distributions of generated vs real
images) and the ``utility`` test: a small CNN for cardiomegaly trained on (a) the real training
images, (b) as many generated images labelled by the anatomy measurer, (c) both, (d) the real
images labelled by the measurer (the ceiling of (b)), each tested on held-out real images:
AUROC with bootstrap intervals and the gaps to (a). The trial's value is the gap (b) - (a).

| cell     | optimizer | activations (G / D) |
|----------|-----------|---------------------|
| adas-elu | AdaS      | ELU / ELU           |
| adam-elu | Adam      | ELU / ELU           |

Data: labelled sources only. The study's default is ``phantom:v2``, the phantom series that
draws cardiomegaly (30 %), effusion and nodules; ``--data phantom:v2,...`` sets other
prevalences; ``dicom:PATH`` / ``cache:PATH`` take the labels from VinBigData's train.csv,
with the sweep's held-out part (``--holdout``) as the test images; ``folder:PATH`` takes them
from a CSV of ``file,label`` rows (FOLDER/labels.csv, or ``folder:PATH,labels=FILE.csv``;
docs/sweeps.md, "Your own X-rays"). The original phantoms (``phantom``) and image folders without a labels
file carry no labels: refused when the cells are built.
"""

from __future__ import annotations

from xraygan.data.labels import unlabelled_reason
from xraygan.errors import ConfigError

from .spec import STUDIES, Cell, StudyContext, StudySpec, first_metric, named

ROWS = (("adas-elu", "adas"), ("adam-elu", "adam"))
LABELLED_PHANTOMS = "phantom:v2"


def check_data(data: str) -> None:
    """ConfigError unless ``data`` has labels a classifier can learn."""
    why = unlabelled_reason(data)
    if why:
        raise ConfigError(f"--data {data}: the utility study needs labelled images ({why}): "
                          f"{LABELLED_PHANTOMS} (phantoms with findings, the default), a "
                          "VinBigData DICOM folder with train.csv (dicom:PATH), or an image "
                          "folder with labels.csv (folder:PATH, or folder:PATH,labels=FILE.csv)")


def cells(ctx: StudyContext) -> list[Cell]:
    data = ctx.data
    check_data(data)
    out = []
    for key, optimizer in ROWS:
        # real data: the sweep's held-out part (--holdout) is the classifiers' test set;
        # phantoms hold out the images after the training set
        cfg = ctx.config(optimizer=optimizer)
        out.append(Cell(key, named(cfg, key), {"optimizer": optimizer, "data": data}))
    return out


STUDIES.add("utility", StudySpec(
    name="utility",
    description="train on synthetic, test on real: cardiomegaly classifiers on real, generated "
                "and mixed images; anatomy distributions (labelled data: phantom:v2 or VinBigData)",
    cells=cells,
    score=first_metric("util_gap_synthetic"),
    direction="maximize",
    metrics=("utility",),
    data=LABELLED_PHANTOMS,
    sections=("protocol", "trials", "utility", "anatomy", "table1", "quality", "throughput",
              "dynamics", "samples", "claims"),
))
