"""Feature-map width sweep: memory, throughput and quality against width and image size.

The paper (Fig. 7/8) varied the width of every block from 32 to 320 at 64x64 and 128x128
and called the memory growth "exponentially proportional" to it; the measured peaks here say
how it actually grows. Quick scale shrinks both axes to what a CPU trains in minutes.
"""

from __future__ import annotations

import dataclasses

from .spec import STUDIES, Cell, StudyContext, StudySpec, first_metric, named

FULL_WIDTHS = (32, 64, 128, 192, 256, 320)
FULL_SIZES = (64, 128)
QUICK_WIDTHS = (8, 16, 32, 64)
QUICK_SIZES = (16, 32)


def axes(ctx: StudyContext) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if ctx.scale.name == "full":
        return FULL_WIDTHS, FULL_SIZES
    return QUICK_WIDTHS, QUICK_SIZES


def cells(ctx: StudyContext) -> list[Cell]:
    widths, sizes = axes(ctx)
    out = []
    for size in sizes:
        for width in widths:
            key = f"w{width}-s{size}"
            scale = ctx.scale.with_overrides(image_size=size)
            cfg = dataclasses.replace(ctx, scale=scale).config(g_features=width, d_features=width)
            out.append(Cell(key, named(cfg, key), {"features": width, "image_size": size}))
    return out


STUDIES.add("fmaps", StudySpec(
    name="fmaps",
    description="feature-map width 32..320 at 64 and 128 px (quick: 8..64 at 16 and 32)",
    cells=cells,
    score=first_metric("fid", "d_loss_mean"),
    sections=("protocol", "trials", "memory", "memory_figure", "quality_trend", "throughput",
              "dynamics", "samples", "collapse", "claims"),
))
