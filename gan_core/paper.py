"""The paper's numbers (Belmekki et al., ICIIBMS 2022), as restated in ../shared/paper.md.

Reports print these beside ours; claims test ours against them. Keys of :data:`TABLE1` are the
cell keys of the ``table1`` study (ablations/table1.py), so a row of ours finds its paper row.
"""

from __future__ import annotations

from dataclasses import dataclass

CITATION = (
    "Z. Belmekki, J. Li, K. Jenkins, P. Reuter, D. A. Gomez Jauregui, \"An Empirical Evaluation "
    "of Generative Adversarial Nets in Synthesizing X-ray Chest Images\", ICIIBMS 2022, "
    "doi:10.1109/ICIIBMS55689.2022.9971542"
)


@dataclass(frozen=True)
class Table1Row:
    optimizer: str
    activation: str
    ttur: bool
    d_loss_mean: float
    d_loss_var: float
    d_loss_std: float
    fid: float
    t0: str  # the paper gives T0 as a range in the text ("Training dynamics"), not per row


# Table I, one run per configuration, no seeds or error bars. T0: AdaS "before about 200
# iterations", Adam "around 400 to 480"; TTUR "shortens T0" (no number).
TABLE1: dict[str, Table1Row] = {
    "adas-elu": Table1Row("AdaS", "ELU", False, 0.845, 0.637, 0.798, 104.552, "< 200"),
    "adam-elu": Table1Row("Adam", "ELU", False, 0.418, 0.209, 0.458, 238.254, "400-480"),
    "adas-elu-ttur": Table1Row("AdaS", "ELU", True, 1.185, 4.066, 2.016, 100.581, "< 200"),
    "adas-dcgan": Table1Row("AdaS", "ReLU/LeakyReLU", False, 1.135, 0.970, 0.985, 111.882, "< 200"),
}
BEST_CELL = "adas-elu-ttur"  # "ELU + TTUR + AdaS is best" (lowest FID of Table I)

T0_ADAS_MAX = 200  # iterations
T0_ADAM_RANGE = (400, 480)

# Memory (Fig. 7, 8): the paper's worked example, torchinfo-style per-image sizes x batch.
MEMORY_EXAMPLE = {"batch_size": 64, "image_size": 64, "features": 64,
                  "per_image_mb": (53.96, 46.72), "total_mb": 6443.52}
MEMORY_WIDTHS = (32, 320)  # feature-map widths varied "from 32 to 320" in every block
MEMORY_SIZES = (64, 128)
BN_SAVING_PCT = (1.2, 7.0)  # removing batch norm from G saves 1.2 to 7 % of memory
MEMORY_GROWTH = "exponential"  # "exponentially proportional to feature maps size"

# Table III: 12 compression experiments (4 factors x D, G, both), all "failed" by eye.
TABLE3_FACTORS = ("strides", "fc", "latent", "fmaps")
TABLE3_SIDES = ("d", "g", "both")
TABLE3_VERDICT = "failed"
