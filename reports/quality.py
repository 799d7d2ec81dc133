"""The metrics beyond FID per configuration, the table beside Table I and Table III:
fidelity and diversity (precision, recall, density, coverage), privacy (data-copying C_T, copy
fraction) and frequency content (spectral distance, high-frequency deficit)."""

from __future__ import annotations

import math

import pandas as pd

from xraygan.claims.stats import MeanCI, fmt_ci, mean_ci
from xraygan.trials import completed

from .tables import markdown

QUALITY_COLUMNS = (
    ("precision", "Precision", 3),
    ("recall", "Recall", 3),
    ("density", "Density", 3),
    ("coverage", "Coverage", 3),
    ("mem_ct", "C_T (copying)", 2),
    ("mem_copy_fraction", "Copy fraction", 3),
    ("spectral_distance", "Spectral dist.", 3),
    ("hf_deficit", "HF deficit", 3),
)


def _ci(part: pd.DataFrame, column: str) -> MeanCI:
    if column not in part.columns:
        return MeanCI(math.nan, math.nan, 0)
    return mean_ci(pd.to_numeric(part[column], errors="coerce").dropna().to_numpy(dtype=float))


def has_quality(df: pd.DataFrame) -> bool:
    return any(c in df.columns and df[c].notna().any() for c, _, _ in QUALITY_COLUMNS)


def quality_markdown(df: pd.DataFrame) -> str:
    """One row per configuration of completed trials; a dash where a metric was not computed,
    and a sentence saying why when none was."""
    done = completed(df)
    if done.empty or not has_quality(done):
        return ("No metrics beyond FID: the spectrum needs samples, precision/recall and "
                "memorization need Inception features (a scale with FID, or `xraygan metrics "
                "RUN --fid`).\n")
    rows = []
    for g in dict.fromkeys(done["group"]):
        part = done[done["group"] == g]
        rows.append([g, len(part), *(fmt_ci(_ci(part, c), d) for c, _, d in QUALITY_COLUMNS)])
    out = markdown(["Configuration", "n", *(t for _, t, _ in QUALITY_COLUMNS)], rows,
                   ["l", "r", *("r" for _ in QUALITY_COLUMNS)])
    notes = ["precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. "
             "2020) on Inception pool3 features, k = 5",
             "C_T: Meehan et al.'s data-copying statistic (below -3: copying); copy fraction: "
             "generated images closer to a training image than 95 % of held-out real images "
             "(0.05 expected without copying)",
             "HF deficit: share of the real images' power above half the Nyquist radius that "
             "generated images lack (0: none; 1: all)"]
    if (done.groupby("group").size() > 1).any():
        notes.append("mean ± half-width of the 95 % t confidence interval over seeds")
    return out + "".join(f"\n{n}." for n in notes) + "\n"
