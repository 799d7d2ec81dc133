"""Quality against an ablated axis (feature-map width): the trend of every metric, not only FID.

The paper's Fig. 7/8 plot memory against width; what a reader also needs is whether the width
buys quality, and on which axis: fidelity (FID, precision), diversity (recall, coverage),
frequency content (high-frequency deficit), the compression artifact (blockiness). One row per
(image size, metric): Spearman's rho of the metric against width over every completed trial
(seeds included, so n counts trials), its p-value, and the metric's mean at the narrowest and
widest width; a figure with the mean and 95 % interval over seeds per width.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import seaborn as sns
from scipy import stats

from xraygan.claims.stats import fmt
from xraygan.trials import completed

from .figures import FigureUnavailable, save_figure, theme
from .tables import markdown

# metric column -> label; "better" says which direction is an improvement
TREND_METRICS: dict[str, tuple[str, str]] = {
    "fid": ("FID", "lower"),
    "precision": ("precision", "higher"),
    "recall": ("recall", "higher"),
    "coverage": ("coverage", "higher"),
    "hf_deficit": ("HF deficit", "lower"),
    "blockiness": ("blockiness", "lower"),
}
AXIS = "g_features"
MIN_LEVELS = 3  # a rank correlation over two widths says nothing a difference does not


def _usable(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    done = completed(df)
    if AXIS not in done.columns:
        return done.iloc[0:0], []
    done = done[pd.to_numeric(done[AXIS], errors="coerce").notna()].copy()
    done[AXIS] = done[AXIS].astype(int)
    metrics = [m for m in TREND_METRICS if m in done.columns
               and pd.to_numeric(done[m], errors="coerce").notna().sum() >= MIN_LEVELS]
    return done, metrics


def trend_frame(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (image size, metric) with at least MIN_LEVELS widths measured."""
    done, metrics = _usable(df)
    rows = []
    for size, part in done.groupby("image_size", sort=True):
        for m in metrics:
            vals = part[[AXIS, m]].apply(pd.to_numeric, errors="coerce").dropna()
            if vals[AXIS].nunique() < MIN_LEVELS:
                continue
            rho, p = stats.spearmanr(vals[AXIS], vals[m])
            means = vals.groupby(AXIS)[m].mean()
            label, better = TREND_METRICS[m]
            rows.append({"image_size": int(size), "metric": label, "column": m, "better": better,
                         "n": len(vals), "widths": int(vals[AXIS].nunique()),
                         "spearman_rho": float(rho), "p": float(p),
                         "at_min": float(means.iloc[0]), "at_max": float(means.iloc[-1]),
                         "min_width": int(means.index[0]), "max_width": int(means.index[-1])})
    return pd.DataFrame(rows)


def _direction(r: pd.Series) -> str:
    if not (math.isfinite(r["p"]) and r["p"] < 0.05):
        return "no trend (p >= 0.05)"
    up = r["spearman_rho"] > 0
    improves = up == (r["better"] == "higher")
    return f"{'rises' if up else 'falls'} with width ({'better' if improves else 'worse'})"


def trend_markdown(df: pd.DataFrame) -> str:
    tf = trend_frame(df)
    if tf.empty:
        return (f"Fewer than {MIN_LEVELS} widths with quality metrics per image size: no trend "
                "computed.\n")
    rows = [[r["image_size"], r["metric"], r["n"], fmt(r["spearman_rho"], 2), fmt(r["p"], 3),
             f"{fmt(r['at_min'], 3)} (w{r['min_width']})", f"{fmt(r['at_max'], 3)} (w{r['max_width']})",
             _direction(r)] for _, r in tf.iterrows()]
    return markdown(["Image", "Metric", "n", "Spearman ρ vs width", "p", "Narrowest", "Widest",
                     "Trend"], rows, ["r", "l", "r", "r", "r", "r", "r", "l"])


def quality_vs_width(df: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    """One panel per metric: mean and 95 % interval over seeds against width, a line per image
    size. Returns the long form plotted."""
    done, metrics = _usable(df)
    if not metrics or done[AXIS].nunique() < 2:
        raise FigureUnavailable("fewer than two widths with quality metrics")
    data = done.melt(id_vars=[AXIS, "image_size"], value_vars=metrics, var_name="metric",
                     value_name="value")
    data["value"] = pd.to_numeric(data["value"], errors="coerce")
    data = data.dropna(subset=["value"])
    data["metric"] = data["metric"].map(lambda m: TREND_METRICS[m][0])
    data["image_size"] = data["image_size"].map(lambda s: f"{int(s)} px")
    with theme():
        grid = sns.relplot(data=data, x=AXIS, y="value", hue="image_size", col="metric",
                           col_wrap=min(3, len(metrics)), kind="line", markers=True,
                           errorbar=("ci", 95), height=2.6, aspect=1.2,
                           facet_kws={"sharey": False})
        grid.set_axis_labels("feature-map width", "")
        grid.set_titles("{col_name}")
        save_figure(grid.figure, path)
    return data
