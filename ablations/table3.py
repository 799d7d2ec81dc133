"""Table III: the compression grid, scored by FID and the blurry-squares score.

The paper (Sec. "Compression") varied four things, each in D only, G only and both, 12 runs
that all "failed" by eye with "blurry squares with homogeneous colors". Here each cell gets
numbers (FID, ``blockiness`` from xraygan.metrics.artifacts) next to the uncompressed
``baseline`` cell, the deep model they are compared with:

- ``strides``: fewer, larger-stride layers: DCGAN's stride-2 layers merged pairwise into
  stride 4 (64 px: 2,2,2,2 -> 4,4), kernels solved from eq. 5 (K = S + 2P = 6).
- ``fc``: one fully connected layer at D's input / G's output (on the flattened image).
- ``latent``: the code at each network's narrow end. G: z of 16 instead of 100. D has no
  latent input; its counterpart is the map its logit reads, shrunk from 4x4 to 2x2 by a
  stride-4 last layer (our reading: the paper does not say what "latent size in D" meant).
- ``fmaps``: a quarter of the base feature-map width (64 -> 16).
"""

from __future__ import annotations

import dataclasses

from xraygan.config import ModelConfig

from .spec import STUDIES, Cell, StudyContext, StudySpec, first_metric, named

FACTORS = ("strides", "fc", "latent", "fmaps")
SIDES = ("d", "g", "both")
SMALL_LATENT = 16
WIDTH_DIVISOR = 4


def dcgan_strides(image_size: int) -> tuple[int, ...]:
    """DCGAN's stride-2 layers from 4x4 to ``image_size`` (log2(size / 4) of them)."""
    return (2,) * (image_size.bit_length() - 3)


def merged_strides(image_size: int) -> tuple[int, ...]:
    """Pairs of stride-2 layers merged into stride 4: half the depth, same scale factor."""
    n = len(dcgan_strides(image_size))
    return (4,) * (n // 2) + (2,) * (n % 2)


def compress(model: ModelConfig, factor: str, side: str) -> ModelConfig:
    """``model`` with ``factor`` compressed in D, G or both."""
    nets = ("d", "g") if side == "both" else (side,)
    changes: dict[str, object] = {}
    size = model.image_size
    for net in nets:
        if factor == "strides":
            changes[f"{net}_strides"] = merged_strides(size)
        elif factor == "fc":
            changes[f"{net}_fc_layers"] = 1
        elif factor == "latent":
            if net == "g":
                changes["latent_dim"] = SMALL_LATENT
            else:  # D's last strided layer takes stride 4: the logit reads 2x2 instead of 4x4
                changes["d_strides"] = dcgan_strides(size)[:-1] + (4,)
        elif factor == "fmaps":
            width = getattr(model, f"{net}_features")
            changes[f"{net}_features"] = max(1, width // WIDTH_DIVISOR)
        else:
            raise ValueError(f"unknown factor {factor!r}")
    return dataclasses.replace(model, **changes)


def cells(ctx: StudyContext) -> list[Cell]:
    base = ctx.config()
    out = [Cell("baseline", named(base, "baseline"), {"factor": "none", "side": "none"},
                reference=True)]
    for factor in FACTORS:
        for side in SIDES:
            key = f"{factor}-{side}"
            cfg = dataclasses.replace(base, model=compress(base.model, factor, side))
            out.append(Cell(key, named(cfg, key), {"factor": factor, "side": side}))
    return out


STUDIES.add("table3", StudySpec(
    name="table3",
    description="Table III: strides, FC layers, latent size, widths compressed in D/G/both "
                "(12 cells + the deep baseline)",
    cells=cells,
    score=first_metric("fid", "blockiness"),
    sections=("protocol", "trials", "table3", "quality", "throughput", "dynamics", "samples",
              "spectrum", "collapse", "claims"),
))
