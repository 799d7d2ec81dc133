"""Figures (seaborn on matplotlib's Agg backend, PNG): the paper's Fig. 3-8 from our runs.

Every function writes one PNG and returns the data it plotted (a long-form DataFrame, or the
matrix drawn), so tests and the report check the series, not pixels. A function given nothing
to plot raises ValueError instead of writing an empty figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on CI machines and workers; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from gan_core import runs as runs_io  # noqa: E402

DPI = 110


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def loss_frame(run: str | Path, label: str) -> pd.DataFrame:
    """A run's D and G losses in long form: label, step, net (D or G), loss."""
    log = runs_io.read_metrics(run)
    d = pd.DataFrame({"label": label, "step": log["step"], "net": "D", "loss": log["loss_d"]})
    g = pd.DataFrame({"label": label, "step": log["step"], "net": "G", "loss": log["loss_g"]})
    return pd.concat([d, g], ignore_index=True)


def loss_curves(runs: Mapping[str, str | Path], path: str | Path,
                t0: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Fig. 3/4: D and G loss against iteration, one panel per run, T0 as a dashed line.

    ``t0`` per label defaults to gan_core.metrics.dynamics.find_t0 of the run's D loss. The
    returned frame carries ``attrs["t0"]`` (label -> T0 as marked).
    """
    from gan_core.metrics.dynamics import find_t0

    if not runs:
        raise ValueError("loss_curves: no runs to plot")
    data = pd.concat([loss_frame(r, label) for label, r in runs.items()], ignore_index=True)
    marks = {}
    for label in runs:
        if t0 is not None and label in t0:
            marks[label] = float(t0[label])
        else:
            d = data[(data["label"] == label) & (data["net"] == "D")]
            marks[label] = find_t0(d["step"].to_numpy(), d["loss"].to_numpy())
    grid = sns.relplot(data=data, x="step", y="loss", hue="net", col="label",
                       col_wrap=min(2, len(runs)), kind="line", height=2.8, aspect=1.5,
                       facet_kws={"sharey": False}, linewidth=0.8)
    for label, ax in grid.axes_dict.items():
        if math.isfinite(marks[label]):
            ax.axvline(marks[label], color="k", ls="--", lw=0.8)
            ax.text(marks[label], ax.get_ylim()[1], " T0", va="top", fontsize=8)
    grid.set_axis_labels("iteration", "loss")
    grid.set_titles("{col_name}")
    _save(grid.figure, path)
    data.attrs["t0"] = marks
    return data


def correlation_figure(table: pd.DataFrame, path: str | Path,
                       columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Fig. 5: Pearson correlation matrix of FID and the D-loss statistics over runs
    (gan_core.metrics.correlation); returns the matrix drawn."""
    from gan_core.metrics.correlation import DEFAULT_COLUMNS, correlation_matrices

    pearson, _ = correlation_matrices(table, columns or DEFAULT_COLUMNS)
    if pearson.shape[0] < 2 or len(table) < 3:
        raise ValueError("correlation_figure: need at least 2 columns over 3 runs")
    fig, ax = plt.subplots(figsize=(4.6, 3.8))
    sns.heatmap(pearson, vmin=-1, vmax=1, cmap="vlag", annot=True, fmt=".2f", square=True, ax=ax)
    ax.set_title(f"Pearson correlation over {len(table)} runs")
    _save(fig, path)
    return pearson


def sample_grids(runs: Mapping[str, str | Path], path: str | Path,
                 step: int | None = None) -> pd.DataFrame:
    """Fig. 6: the last sample grid of each run (or the one at ``step``), side by side,
    titled by configuration. Returns label, source PNG path and step per panel."""
    from PIL import Image

    rows = []
    for label, run in runs.items():
        grids = runs_io.sample_paths(run)
        if step is not None:
            grids = [g for g in grids if int(g.stem.split("_")[1]) == step]
        if grids:
            rows.append({"label": label, "path": str(grids[-1]),
                         "step": int(grids[-1].stem.split("_")[1])})
    data = pd.DataFrame(rows, columns=["label", "path", "step"])
    if data.empty:
        raise ValueError("sample_grids: no run has a sample grid")
    n = len(data)
    cols = min(4, n)
    nrows = math.ceil(n / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 3.4 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (_, r) in zip(axes.flat, data.iterrows(), strict=False):
        img = np.asarray(Image.open(r["path"]))
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255)
        ax.set_title(f"{r['label']}\nstep {r['step']}", fontsize=9)
    _save(fig, path)
    return data


def memory_vs_width(memory: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    """Fig. 7/8: memory (MiB) against feature-map width, one panel per image size, estimated
    and measured, one line style per batch-norm placement. ``memory`` is
    reports.tables.memory_frame; the long form plotted is returned."""
    if memory.empty:
        raise ValueError("memory_vs_width: no memory measurements")
    data = memory.melt(id_vars=["image_size", "features", "batchnorm"],
                       value_vars=["estimate_mib", "measured_mib"], var_name="kind",
                       value_name="mib")
    data["kind"] = data["kind"].map({"estimate_mib": "estimated", "measured_mib": "measured"})
    data["batchnorm"] = "BN " + data["batchnorm"].astype(str)
    data = data.sort_values(["image_size", "kind", "batchnorm", "features"]).reset_index(drop=True)
    grid = sns.relplot(data=data, x="features", y="mib", hue="kind", style="batchnorm",
                       col="image_size", kind="line", markers=True, height=3.0, aspect=1.2,
                       facet_kws={"sharey": False})
    grid.set_axis_labels("feature-map width", "memory of one step (MiB)")
    grid.set_titles("{col_name} px")
    _save(grid.figure, path)
    return data


def collapse_curves(run: str | Path, path: str | Path, onset: float | None = None,
                    margin: float = 0.5) -> pd.DataFrame:
    """D and G losses around a mode collapse: from ``onset`` - margin * onset to the end of
    the log, log-scale y (an exponential rise is a straight line). ``onset`` defaults to
    gan_core.metrics.collapse.loss_explosion's; no collapse: ValueError."""
    from gan_core.metrics.collapse import loss_explosion

    log = runs_io.read_metrics(run)
    if onset is None:
        onset = loss_explosion(log["step"], log["loss_g"], log["loss_d"])["collapse_onset"]
    if onset is None or not math.isfinite(onset):
        raise ValueError(f"collapse_curves: no collapse detected in {run}")
    start = onset - margin * max(onset, 1.0)
    data = loss_frame(run, Path(run).name)
    data = data[data["step"] >= start].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    sns.lineplot(data=data, x="step", y="loss", hue="net", ax=ax, linewidth=0.8)
    ax.set_yscale("log")
    ax.axvline(onset, color="r", ls="--", lw=0.8)
    ax.text(onset, ax.get_ylim()[1], " collapse onset", va="top", fontsize=8, color="r")
    ax.set_xlabel("iteration")
    ax.set_title(f"{Path(run).name}: losses around the collapse")
    _save(fig, path)
    data.attrs["onset"] = float(onset)
    return data
