"""Correlations between FID and the D-loss statistics across runs (the paper's Fig. 5).

The paper reports a Pearson correlation matrix of FID, mean, variance and std of D's loss over
its four Table I runs and reads a strong inverse correlation of mean D loss with FID. With so
few runs a rank correlation (Spearman) and p-values are the honest companions, so both are
given; p-values come from scipy.stats and are NaN below 3 runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

DEFAULT_COLUMNS = ("fid", "d_loss_mean", "d_loss_var", "d_loss_std")


def correlation_matrices(
    table: pd.DataFrame, columns: Sequence[str] = DEFAULT_COLUMNS
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(Pearson, Spearman) correlation matrices of ``columns`` over the rows (runs) of ``table``.

    Columns missing from ``table`` are left out; rows with a NaN in a pair are dropped pairwise.
    """
    cols = [c for c in columns if c in table.columns]
    data = table[cols].astype(float)
    return data.corr(method="pearson"), data.corr(method="spearman")


def correlations_with(
    table: pd.DataFrame, target: str = "fid", columns: Sequence[str] = DEFAULT_COLUMNS[1:]
) -> pd.DataFrame:
    """One row per metric: Pearson r and p, Spearman rho and p against ``target``, n runs."""
    rows = []
    for col in columns:
        if col not in table.columns or target not in table.columns:
            continue
        pair = table[[target, col]].astype(float).dropna()
        n = len(pair)
        x, y = pair[target].to_numpy(), pair[col].to_numpy()
        if n >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
            pr, pp = stats.pearsonr(x, y)
            sr, sp = stats.spearmanr(x, y)
        else:
            pr = pp = sr = sp = float("nan")
        rows.append({"metric": col, "pearson_r": float(pr), "pearson_p": float(pp),
                     "spearman_r": float(sr), "spearman_p": float(sp), "n": n})  # fmt: skip
    return pd.DataFrame(rows, columns=["metric", "pearson_r", "pearson_p", "spearman_r",
                                       "spearman_p", "n"])  # fmt: skip
