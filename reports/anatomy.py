"""Anatomy of generated images beside FID, and the downstream utility test, per configuration:
pure functions from a trials frame (reports.load) to markdown.

A configuration run once shows its bootstrap interval ``value [lo, hi]`` (the interval the
metric computed: over images, xraygan.metrics.anatomy_compare / utility); one run over several
seeds shows ``mean ± h`` over the seeds (reports.stats.mean_ci), the run-to-run spread.
"""

from __future__ import annotations

import math

import pandas as pd

from xraygan.claims.stats import fmt, fmt_ci, mean_ci
from xraygan.trials import completed

from .tables import markdown

ANATOMY_COLUMNS = (
    # metric, title, decimals, has a bootstrap interval
    ("fid", "FID", 1, False),
    ("anat_ctr_w1", "CTR W1", 3, True),
    ("anat_ctr_ks", "CTR KS", 2, True),
    ("anat_ctr_w1_null", "CTR W1 floor", 3, False),
    ("anat_lung_area_w1", "Lung area W1", 3, True),
    ("anat_lung_area_ks", "Lung area KS", 2, True),
    ("anat_implausible", "Implausible", 2, False),
)
UTILITY_COLUMNS = (
    ("util_auroc_real", "(a) real", 3, True),
    ("util_auroc_synthetic", "(b) synthetic", 3, True),
    ("util_auroc_mixed", "(c) real + synth.", 3, True),
    ("util_auroc_real_measured", "(d) real, measured labels", 3, True),
    ("util_gap_synthetic", "gap (b) − (a)", 3, True),
    ("util_gap_mixed", "gap (c) − (a)", 3, True),
    ("util_synthetic_positive", "synth. positive", 2, False),
)


def _num(part: pd.DataFrame, col: str) -> pd.Series:
    if col not in part.columns:
        return pd.Series(dtype=float)
    return pd.to_numeric(part[col], errors="coerce").dropna()


def cell_text(part: pd.DataFrame, col: str, digits: int, interval: bool) -> str:
    """One configuration's entry: the run's value with its bootstrap interval, or the mean ±
    half-width over seeds."""
    vals = _num(part, col)
    if len(vals) == 0:
        return "—"
    if len(vals) > 1:
        return fmt_ci(mean_ci(vals.to_numpy(dtype=float)), digits)
    text = fmt(float(vals.iloc[0]), digits)
    if interval:
        lo, hi = _num(part, f"{col}_lo"), _num(part, f"{col}_hi")
        if len(lo) and len(hi) and math.isfinite(lo.iloc[0]) and math.isfinite(hi.iloc[0]):
            text += f" [{fmt(float(lo.iloc[0]), digits)}, {fmt(float(hi.iloc[0]), digits)}]"
    return text


def _table(df: pd.DataFrame, columns: tuple) -> str:
    rows = []
    for g in dict.fromkeys(df["group"]):
        part = df[df["group"] == g]
        rows.append([g, len(part), *(cell_text(part, c, d, i) for c, _, d, i in columns)])
    return markdown(["Configuration", "n", *(t for _, t, _, _ in columns)], rows,
                    ["l", "r", *("r" for _ in columns)])


def has(df: pd.DataFrame, prefix: str) -> bool:
    return any(c.startswith(prefix) and df[c].notna().any() for c in df.columns)


def anatomy_markdown(df: pd.DataFrame) -> str:
    """CTR and lung-area distances of generated vs real images per configuration, FID beside;
    empty when no trial measured anatomy."""
    done = completed(df)
    if done.empty or not has(done, "anat_"):
        return ""
    notes = ["measured by xraygan.metrics.anatomy (thresholds and profiles, no learned model; "
             "its error on phantoms: docs/anatomy.md)",
             "W1: Wasserstein-1 distance between the generated and real distributions (CTR: a "
             "ratio; lung area: a fraction of the image); KS: the Kolmogorov-Smirnov statistic; "
             "[lo, hi]: 95 % percentile bootstrap over images",
             "W1 floor: the W1 between two halves of the real images, what sampling alone gives",
             "Implausible: share of generated images without a measurable heart between two "
             "lungs"]
    return _table(done, ANATOMY_COLUMNS) + "".join(f"\n{n}." for n in notes) + "\n"


def utility_markdown(df: pd.DataFrame) -> str:
    """AUROC of the classifiers per training set and the gaps to real-only, per configuration."""
    done = completed(df)
    if done.empty or not has(done, "util_"):
        return ("No utility test in these trials (`xraygan sweep utility`, or `xraygan metrics "
                "RUN --utility`).\n")
    labels = sorted({str(v) for v in done.get("util_label", pd.Series(dtype=object)).dropna()})
    n_test = _num(done, "util_n_test")
    notes = [f"label: {', '.join(labels) or 'cardiomegaly'}; AUROC on "
             f"{int(n_test.iloc[0]) if len(n_test) else '?'} held-out real images never seen by "
             "the GAN or the classifiers; [lo, hi]: 95 % percentile bootstrap over those images "
             "(paired for the gaps)",
             "synthetic images labelled by the anatomy measurer (measured CTR > 0.5); (d) is the "
             "real images with the measurer's labels: the most (b) can reach with such labels",
             "synth. positive: share of generated images the measurer labelled positive"]
    return _table(done, UTILITY_COLUMNS) + "".join(f"\n{n}." for n in notes) + "\n"
