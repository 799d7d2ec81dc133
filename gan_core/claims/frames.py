"""The data frames claims decide on, computed from trials and memory frames: Table III cells,
memory rows, batch-norm savings and growth-law fits, and the distinct values of a column.
Reports render these same frames (reports/tables.py); the claims engine never imports a
report module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

from xraygan.trials import completed

from .stats import MeanCI, mean_ci

MIB = 2**20


def ordered_groups(df: pd.DataFrame, first: Sequence[str] = ()) -> list[str]:
    groups = list(dict.fromkeys(df["group"]))
    return [g for g in first if g in groups] + [g for g in groups if g not in first]


def column_ci(df: pd.DataFrame, column: str) -> MeanCI:
    if column not in df.columns:
        return MeanCI(math.nan, math.nan, 0)
    return mean_ci(pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float))


def table3_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Per cell: factor, side, status, n, MeanCI of FID and blockiness, and the blockiness
    excess over the baseline (reference) cell. Every trial with a number counts, failed or
    not: a diverged run's last samples still show whether it made blurry squares."""
    rows = []
    ref = df[df["reference"].astype(bool)] if "reference" in df.columns else df.iloc[:0]
    base_block = column_ci(ref, "blockiness").mean
    for g in ordered_groups(df, ["baseline"]):
        part = df[df["group"] == g]
        first = part.iloc[0]
        statuses = sorted(set(part["status"]))
        blk = column_ci(part, "blockiness")
        rows.append({"group": g, "factor": first.get("param_factor", "none"),
                     "side": first.get("param_side", "none"), "status": ", ".join(statuses),
                     "n": len(part), "fid": column_ci(part, "fid"), "blockiness": blk,
                     "excess": blk.mean - base_block,
                     "filled": bool(part.get("filled", pd.Series(False)).any())})
    return pd.DataFrame(rows)


def memory_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Per completed trial with a measured peak: size, widths, BN, estimate vs measured (MiB)."""
    done = completed(df)
    if "measured_peak_bytes" not in done.columns:
        return pd.DataFrame()
    done = done[done["measured_peak_bytes"].notna()]
    out = pd.DataFrame({
        "cell": done["cell"], "seed": done["seed"], "image_size": done["image_size"], "features": done["g_features"],
        "d_features": done["d_features"], "batchnorm": done["batchnorm"],
        "optimizer": done["optimizer"], "batch_size": done["batch_size"],
        "estimate_mib": done["estimate_bytes"] / MIB,
        "measured_mib": done["measured_peak_bytes"] / MIB,
        "resident_mib": done["measured_resident_bytes"] / MIB,
        "device": done["memory_device"],
    })
    out["ratio"] = out["estimate_mib"] / out["measured_mib"]
    return out.reset_index(drop=True)


def memory_rows_frame(rows: Sequence[Mapping[str, object]]) -> pd.DataFrame:
    """``xraygan memory --json`` rows (xraygan.memory.report.MemoryRow dicts) as a memory
    frame, the same columns as :func:`memory_frame` plus the paper's torchinfo method."""
    out = pd.DataFrame([{
        "cell": f"w{r['features']}-s{r['image_size']}-bn-{r['batchnorm']}", "seed": 0,
        "image_size": r["image_size"], "features": r["features"], "d_features": r["features"],
        "batchnorm": r["batchnorm"], "optimizer": r["optimizer"], "batch_size": r["batch_size"],
        "estimate_mib": _mib(r.get("estimate_bytes")),
        "measured_mib": _mib(r.get("measured_peak_bytes")),
        "resident_mib": math.nan, "torchinfo_mib": _mib(r.get("torchinfo_batch_bytes")),
        "device": r.get("device", ""),
    } for r in rows])
    if not out.empty:
        out["ratio"] = out["estimate_mib"] / out["measured_mib"]
    return out


def _mib(v: object) -> float:
    return float(v) / MIB if isinstance(v, (int, float)) else math.nan


# batch norm removed from G, everything else equal: (with, without)
BN_PAIRS = (("both", "d"), ("g", "none"))


def bn_savings_frame(mf: pd.DataFrame) -> pd.DataFrame:
    """Memory saved by removing batch norm from G: each row of the memory frame with BN in G
    paired with the row without it that matches it in everything else (size, widths,
    optimizer, batch, seed); saving = (with - without) / with, in %, measured and estimated."""
    if mf.empty:
        return pd.DataFrame()
    keys = ["image_size", "features", "d_features", "optimizer", "batch_size", "seed"]
    keys += ["source"] if "source" in mf.columns else []  # never pair across studies or files
    rows = []
    for with_bn, without in BN_PAIRS:
        a = mf[mf["batchnorm"] == with_bn]
        b = mf[mf["batchnorm"] == without]
        for _, ra in a.iterrows():
            match = b
            for k in keys:
                match = match[match[k] == ra[k]]
            if not len(match):
                continue
            rb = match.iloc[0]
            rows.append({
                "with": ra["cell"], "without": rb["cell"],
                "image_size": ra["image_size"], "features": ra["features"],
                "measured_with_mib": ra["measured_mib"], "measured_without_mib": rb["measured_mib"],
                "saving_measured_pct": 100 * (ra["measured_mib"] - rb["measured_mib"]) / ra["measured_mib"],
                "saving_estimate_pct": 100 * (ra["estimate_mib"] - rb["estimate_mib"]) / ra["estimate_mib"],
            })
    return pd.DataFrame(rows)


MIN_WIDTHS = 4  # xraygan.memory.fit's three-parameter laws need four widths


def growth_frame(mf: pd.DataFrame) -> pd.DataFrame:
    """Per image size, BN placement and quantity (measured, estimate): the power law
    m = a w^k + c and the exponential m = a e^{bw} + c of xraygan.memory.fit, their R^2 (same
    space, same parameter count) and, with >= 5 widths, the error of each extrapolated to the
    largest width from the others. ``better``: the law both criteria prefer, else "mixed"."""
    from xraygan.memory.fit import extrapolation_error, fit_exponential, fit_power_law

    rows = []
    if mf.empty:
        return pd.DataFrame()
    for (size, bn), part in mf.groupby(["image_size", "batchnorm"], sort=True):
        for quantity in ("measured", "estimate"):
            pts = part[["features", f"{quantity}_mib"]].dropna().groupby("features").mean()
            w, m = pts.index.to_numpy(dtype=float), pts.iloc[:, 0].to_numpy(dtype=float)
            if len(w) < MIN_WIDTHS:
                continue
            p, e = fit_power_law(w, m), fit_exponential(w, m)
            row = {"image_size": size, "batchnorm": bn, "quantity": quantity, "n_widths": len(w),
                   "power_exponent": p.k, "r2_power": p.r2, "exp_rate": e.k,
                   "r2_exponential": e.r2, "extrap_err_power": math.nan,
                   "extrap_err_exponential": math.nan}
            votes = {"exponential" if e.r2 > p.r2 else "power"}
            if len(w) >= 5:
                row["extrap_err_power"] = extrapolation_error("power", w, m)
                row["extrap_err_exponential"] = extrapolation_error("exponential", w, m)
                votes.add("exponential" if abs(row["extrap_err_exponential"])
                          < abs(row["extrap_err_power"]) else "power")
            row["better"] = votes.pop() if len(votes) == 1 else "mixed"
            rows.append(row)
    return pd.DataFrame(rows)



def _str(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def natural_values(series: pd.Series) -> list[str]:
    """Distinct non-empty values as strings, numbers in numeric order (20, not 20.0)."""
    return sorted({_str(v) for v in series.dropna() if str(v) != ""}, key=_natural)


def _natural(s: str) -> tuple:
    try:
        return (0, float(s), s)
    except ValueError:
        return (1, 0.0, s)
