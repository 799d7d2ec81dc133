"""The two figures a person judges the new metrics by: closest generated/training pairs
(is that a copy?) and real against generated power spectra (where is power missing?).
Matplotlib with the Agg backend; written atomically."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch

from ..runs import atomic_write_bytes


def _save(fig, path: str | Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def closest_pairs_figure(gen: torch.Tensor, train: torch.Tensor, gen_idx: Sequence[int],
                         train_idx: Sequence[int], dist: Sequence[float], path: str | Path, *,
                         heldout_median: float | None = None) -> Path:  # fmt: skip
    """Top row: the generated images closest to a training image; bottom row: that training
    image; the pixel distance (16x16 grey levels, L2) over each pair."""
    matplotlib.use("Agg")

    n = len(gen_idx)
    fig, axes = plt.subplots(2, n, figsize=(1.3 * n, 3.0), squeeze=False)
    for j, (g, t, d) in enumerate(zip(gen_idx, train_idx, dist, strict=True)):
        for row, img in ((0, gen[g]), (1, train[t])):
            ax = axes[row, j]
            ax.imshow(img.float().mean(0).numpy(), cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, j].set_title(f"d={d:.3g}", fontsize=8)
    axes[0, 0].set_ylabel("generated", fontsize=8)
    axes[1, 0].set_ylabel("nearest train", fontsize=8)
    ref = "" if heldout_median is None else f"; held-out images sit at median d={heldout_median:.3g}"
    fig.suptitle(f"Closest generated/training pairs (16x16 pixel L2){ref}", fontsize=9)
    return _save(fig, path)


def spectrum_figure(curves: Mapping[str, Mapping[str, Sequence[float]]], path: str | Path, *,
                    cutoff: float | None = None) -> Path:  # fmt: skip
    """One panel per configuration: real and generated radial power, log scale."""
    matplotlib.use("Agg")

    if not curves:
        raise ValueError("no spectra to draw")
    names = list(curves)
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names, strict=False):
        c = curves[name]
        for label, style in (("real", "-"), ("generated", "--")):
            y = np.asarray(c.get(label, []), float)
            if len(y) > 1:
                ax.semilogy(np.arange(1, len(y)), y[1:], style, label=label)
        if cutoff is not None:
            top = len(c.get("real", [])) - 1
            ax.axvline(cutoff * top, color="grey", lw=0.8, ls=":")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("radius (cycles / image)", fontsize=8)
        ax.set_ylabel("power", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)
