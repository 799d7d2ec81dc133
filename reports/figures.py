"""Figures (seaborn on matplotlib's Agg backend, PNG): the paper's Fig. 3-8 from our runs.

Every function writes one PNG and returns the data it plotted (a long-form DataFrame, or the
matrix drawn), so tests and the report check the series, not pixels. A function given nothing
to plot raises :class:`FigureUnavailable` (a ValueError) whose message says in words why the
figure is missing, for the report to print, instead of writing an empty figure.

One look for all of them (:func:`theme`: seaborn "whitegrid", "paper" context, the colorblind
palette; D and G always in the same two colours). Loss curves: each run on its own x-axis (a
300-step run beside a 3000-step one is not squashed into a tenth of the panel), the raw
logged loss drawn faint and an exponential moving average over it (:func:`ema`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on CI machines and workers; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from PIL import Image
from scipy import stats as st  # noqa: E402

from xraygan import runs as runs_io  # noqa: E402
from xraygan.errors import XrayganError  # noqa: E402
from xraygan.metrics.dynamics import find_t0

DPI = 110
EMA_FRACTION = 0.02  # the EMA's half-life: 2 % of a run's logged points...
EMA_MIN_HALFLIFE = 2.0  # ...but at least 2 points
RAW_ALPHA = 0.25
NET_COLORS = dict(zip(("D", "G"), sns.color_palette("colorblind", 2), strict=True))


MIN_CORRELATION_RUNS = 3  # as reports.tables.correlation_markdown


class FigureUnavailable(ValueError):
    """A figure cannot be drawn; the message is a sentence a report reader understands."""


@contextlib.contextmanager
def theme():
    """The one style of every figure (applied per figure: importing this module changes no
    global matplotlib state)."""
    with sns.axes_style("whitegrid"), sns.plotting_context("paper"), \
            sns.color_palette("colorblind"):
        yield


def ema(values: np.ndarray | pd.Series, halflife: float | None = None) -> np.ndarray:
    """Exponential moving average with bias correction at the start (pandas ``adjust=True``);
    ``halflife`` in points, default EMA_FRACTION of the series (at least EMA_MIN_HALFLIFE).
    NaN and inf points are skipped, not propagated."""
    x = pd.Series(np.asarray(values, dtype=np.float64))
    x = x.where(np.isfinite(x))
    hl = halflife or max(EMA_MIN_HALFLIFE, EMA_FRACTION * len(x))
    return x.ewm(halflife=hl, adjust=True, ignore_na=True).mean().to_numpy()


def _draw_losses(ax: plt.Axes, data: pd.DataFrame, *, log: bool = False,
                 smooth: bool = True) -> None:
    """D and G on ``ax``: the raw loss faint and its EMA solid, or (``smooth=False``) the raw
    loss solid."""
    for net, part in data.groupby("net", sort=True):
        color = NET_COLORS.get(net)
        if not smooth:
            ax.plot(part["step"], part["loss"], color=color, lw=1.0, label=net)
            continue
        ax.plot(part["step"], part["loss"], color=color, alpha=RAW_ALPHA, lw=0.6)
        ax.plot(part["step"], part["loss_ema"], color=color, lw=1.3, label=f"{net} (EMA)")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")


def save_figure(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def loss_frame(run: str | Path, label: str) -> pd.DataFrame:
    """A run's D and G losses in long form: label, step, net (D or G), loss, loss_ema
    (:func:`ema` of the loss), progress (step / the run's last step, 0..1)."""
    log = runs_io.read_metrics(run)
    last = float(log["step"].max()) if len(log) else 1.0
    parts = []
    for net, column in (("D", "loss_d"), ("G", "loss_g")):
        parts.append(pd.DataFrame({"label": label, "step": log["step"], "net": net,
                                   "loss": log[column], "loss_ema": ema(log[column]),
                                   "progress": log["step"] / max(last, 1.0)}))
    return pd.concat(parts, ignore_index=True)


def loss_curves(runs: Mapping[str, str | Path], path: str | Path,
                t0: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Fig. 3/4: D and G loss against iteration, one panel per run, T0 as a dashed line.

    ``t0`` per label defaults to xraygan.metrics.dynamics.find_t0 of the run's D loss. The
    returned frame carries ``attrs["t0"]`` (label -> T0 as marked).
    """
    if not runs:
        raise FigureUnavailable("no completed run has a loss log to plot")
    data = pd.concat([loss_frame(r, label) for label, r in runs.items()], ignore_index=True)
    marks = {}
    for label in runs:
        if t0 is not None and label in t0:
            marks[label] = float(t0[label])
        else:
            d = data[(data["label"] == label) & (data["net"] == "D")]
            marks[label] = find_t0(d["step"].to_numpy(), d["loss"].to_numpy())
    n = len(runs)
    cols = min(2, n)
    with theme():
        # one y scale for all panels, so that losses compare across configurations; each
        # run keeps its own x (its length)
        fig, axes = plt.subplots(math.ceil(n / cols), cols, figsize=(4.6 * cols, 2.9 * math.ceil(n / cols)),
                                 squeeze=False, sharey=True)
        for ax in axes.flat[n:]:
            ax.axis("off")
        for ax, label in zip(axes.flat, runs, strict=False):
            part = data[data["label"] == label]
            _draw_losses(ax, part)  # each run on its own x-axis: its length, not the longest's
            if math.isfinite(marks[label]):
                ax.axvline(marks[label], color="k", ls="--", lw=0.8)
                ax.text(marks[label], ax.get_ylim()[1], " T0", va="top", fontsize=8)
            ax.set_title(f"{label} ({int(part['step'].max()):,} iterations)", fontsize=9)
        data.attrs["xlim"] = {label: ax.get_xlim() for ax, label in zip(axes.flat, runs, strict=False)}
        axes.flat[0].legend(fontsize=7, loc="best")
        fig.tight_layout()
        save_figure(fig, path)
    data.attrs["t0"] = marks
    return data


def correlation_figure(table: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    """Fig. 5: mean D loss against mean FID, one point per configuration (the unit the claim
    is decided on: runs of one configuration are not independent), each with its seeds'
    runs as faint dots and a 95 % interval of the FID mean; returns the configuration means
    drawn (group, d_loss_mean, fid, n)."""
    need = {"fid", "d_loss_mean", "group"}
    with_fid = int(pd.to_numeric(table["fid"], errors="coerce").notna().sum()) \
        if "fid" in table.columns else 0
    if with_fid < MIN_CORRELATION_RUNS:  # the same rule as the correlation table beside it
        raise FigureUnavailable(
            f"the correlation of FID with the D-loss statistics needs an FID for at least "
            f"{MIN_CORRELATION_RUNS} completed runs; {with_fid} of {len(table)} have one")
    if not need <= set(table.columns):
        raise FigureUnavailable("no mean D loss was recorded beside FID")
    runs = table[list(need)].apply(lambda c: c if c.name == "group" else
                                   pd.to_numeric(c, errors="coerce")).dropna()
    means = (runs.groupby("group", sort=False)
             .agg(d_loss_mean=("d_loss_mean", "mean"), fid=("fid", "mean"),
                  fid_sd=("fid", "std"), n=("fid", "size")).reset_index())
    if len(means) < 2:
        raise FigureUnavailable("fewer than two configurations have FID and D loss")
    half = [st.t.ppf(0.975, n - 1) * sd / math.sqrt(n) if n > 1 else 0.0
            for n, sd in zip(means["n"], means["fid_sd"], strict=True)]
    r = float(np.corrcoef(means["d_loss_mean"], means["fid"])[0, 1]) if len(means) > 2 else math.nan
    with theme():
        fig, ax = plt.subplots(figsize=(4.8, 3.8))
        for i, row in means.iterrows():
            color = f"C{i % 10}"
            part = runs[runs["group"] == row["group"]]
            ax.scatter(part["d_loss_mean"], part["fid"], s=12, alpha=0.35, color=color)
            ax.errorbar(row["d_loss_mean"], row["fid"], yerr=half[i], fmt="o", ms=7,
                        color=color, capsize=3, label=f"{row['group']} (n={int(row['n'])})")
        ax.set_xlabel("mean D loss")
        ax.set_ylabel("FID")
        r_text = f"r = {r:.2f} over {len(means)} configuration means" if math.isfinite(r) \
            else f"{len(means)} configurations"
        ax.set_title(f"{r_text}; dots: single runs", fontsize=9)
        ax.legend(fontsize=7, loc="best")
        save_figure(fig, path)
    return means.drop(columns="fid_sd")


def real_grid(run: str | Path) -> np.ndarray | None:
    """As many of the run's real training images as its sample grid holds, laid out like
    it (the reader's reference beside the generated panels), or None when the run's data
    cannot be read here (a folder on another machine)."""

    grids = runs_io.sample_paths(run)
    if not grids:
        return None
    try:
        cfg = runs_io.read_config(run)
        size = cfg.model.image_size
        with Image.open(grids[-1]) as g:
            per_row, rows = max(1, (g.width - 2) // (size + 2)), max(1, (g.height - 2) // (size + 2))
        # the real images are the run's own training data, rebuilt from its config: the loaders
        # need torch, which a report that draws no real grid never loads
        from xraygan.data.sources import load_dataset
        from xraygan.imageio import make_grid

        data = load_dataset(cfg.data, size, cfg.model.channels, progress=False)
    except (XrayganError, OSError, ValueError):
        return None
    return make_grid(data.images[: per_row * rows], nrow=per_row)


def sample_grids(runs: Mapping[str, str | Path], path: str | Path,
                 step: int | None = None, real: np.ndarray | None = None) -> pd.DataFrame:
    """Fig. 6: the last sample grid of each run (or the one at ``step``), side by side,
    titled by configuration, after a panel of real training images when ``real`` (a grid
    from :func:`real_grid`) is given. Returns label, source PNG path and step per panel."""

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
        at = f" at step {step}" if step is not None else ""
        raise FigureUnavailable(f"no run has a sample grid{at} (samples/ is empty)")
    panels = [("real training images", real)] if real is not None else []
    panels += [(f"{r['label']}\nstep {r['step']:,}", np.asarray(Image.open(r["path"])))
               for _, r in data.iterrows()]
    n = len(panels)
    cols = min(4, n)
    nrows = math.ceil(n / cols)
    with theme():
        fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 3.4 * nrows), squeeze=False)
        for ax in axes.flat:
            ax.axis("off")
        for ax, (title, img) in zip(axes.flat, panels, strict=False):
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255)
            ax.set_title(title, fontsize=9)
        save_figure(fig, path)
    data.attrs["real"] = real is not None
    return data


def memory_vs_width(memory: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    """Fig. 7/8: memory (MiB) against feature-map width, one panel per image size, estimated
    and measured, one line style per batch-norm placement. ``memory`` is
    reports.tables.memory_frame; the long form plotted is returned."""
    if memory.empty:
        raise FigureUnavailable("no trial recorded a measured memory peak")
    data = memory.melt(id_vars=["image_size", "features", "batchnorm"],
                       value_vars=["estimate_mib", "measured_mib"], var_name="kind",
                       value_name="mib")
    data["kind"] = data["kind"].map({"estimate_mib": "estimated", "measured_mib": "measured"})
    data["batchnorm"] = "BN " + data["batchnorm"].astype(str)
    data = data.sort_values(["image_size", "kind", "batchnorm", "features"]).reset_index(drop=True)
    with theme():
        grid = sns.relplot(data=data, x="features", y="mib", hue="kind", style="batchnorm",
                           col="image_size", kind="line", markers=True, height=3.0, aspect=1.2,
                           facet_kws={"sharey": False})
        grid.set_axis_labels("feature-map width", "memory of one step (MiB)")
        grid.set_titles("{col_name} px")
        save_figure(grid.figure, path)
    return data


def collapse_curves(run: str | Path, path: str | Path, onset: float | None = None,
                    margin: float = 0.5) -> pd.DataFrame:
    """D and G losses (raw, not smoothed) around a mode collapse: from ``onset`` - margin *
    onset to the end of the log, log-scale y (an exponential rise is a straight line).
    ``onset`` defaults to xraygan.metrics.collapse.loss_explosion's; no collapse:
    FigureUnavailable."""
    from xraygan.metrics.collapse import loss_explosion

    log = runs_io.read_metrics(run)
    if onset is None:
        onset = loss_explosion(log["step"], log["loss_g"], log["loss_d"])["collapse_onset"]
    if onset is None or not math.isfinite(onset):
        raise FigureUnavailable(f"no mode collapse was detected in {Path(run).name}")
    start = onset - margin * max(onset, 1.0)
    data = loss_frame(run, Path(run).name)
    data = data[data["step"] >= start].reset_index(drop=True)
    with theme():
        fig, ax = plt.subplots(figsize=(6, 3.2))
        # raw, unsmoothed: an EMA lags an exponential rise and would move the visible onset;
        # log y: an exponential rise is a straight line
        _draw_losses(ax, data, log=True, smooth=False)
        ax.axvline(onset, color="r", ls="--", lw=0.8)
        ax.text(onset, ax.get_ylim()[1], " collapse onset", va="top", fontsize=8, color="r")
        ax.legend(fontsize=7)
        ax.set_title(f"{Path(run).name}: losses around the collapse")
        save_figure(fig, path)
    data.attrs["onset"] = float(onset)
    return data
