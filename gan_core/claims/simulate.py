"""Models of the data each claim reads, for its calibration (gan_core/claims/calibration.py):
simulated studies whose truth is known, drawn per run with the failures real sweeps show.

Each claim registers its simulator (``register_claim(..., simulate=...)``): a function of
(truth, rng, seeds) returning what the claim's ``reads`` picks. Truths:

    null       the claim is false, at the boundary of its null hypothesis
    effect     the claim is true at its declared smallest effect
    stuck      null, and one compared cell's D loss stuck low all run (never past T0)
    late       null, and one cell leaves T0 late or never in some of its seeds
    short      a sweep of 15-step runs: no run has trained (none past T0)
    noise, copies, constant, undertrained   degenerate generators (their metric signatures)
    one-run    (utility) a single run

A Table I run is drawn as

    log FID   = 5.4 + configuration effect + N(0, sd of its cell)   per-cell sds from the
              quick scale's pilot (pooled 0.118; per cell 0.047-0.186; CELL_SD)
    T0        decided per run by t0_phase's default rule (t0_past, t0_* thresholds recorded)
    precision ~ 0.5, density ~ 0.8, recall ~ 0.3 + N(0, 0.05), equal 128/128 sets
    C_T       ~ t(5) in both spaces (heavier tails than the normal the test assumes)
    copies    ~ BetaBinomial(128, q, overdispersion RHO) / 128
    spectrum  log HF/LF power ratio per configuration + N(0, 0.05), low frequencies learned

Stuck and late runs carry the FID of a generator that has barely trained (log FID + 0.6):
a rule that lets them in decides on how long each optimizer's T0 lasts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from xraygan import paper
from xraygan.metrics.dynamics import (
    T0_ENTER_LEVEL,
    T0_LEAVE_LEVEL,
    T0_MAX_SHARE,
    T0_MIN_STEPS,
    T0_WINDOW,
)

from .frames import memory_rows_frame

CELLS = tuple(paper.TABLE1)  # adas-elu, adam-elu, adas-elu-ttur, adas-dcgan
# per-seed sd of log FID per cell at the quick scale (pilot: pooled 0.118, cells 0.047-0.186)
CELL_SD = {"adas-elu": 0.186, "adam-elu": 0.047, "adas-elu-ttur": 0.118, "adas-dcgan": 0.10}
N_GEN = 128  # the quick scale's FID samples (ablations/scale.py)
STEPS = 3500  # the quick scale's run length
RHO = 0.02  # intra-run correlation of copies (beta-binomial overdispersion)
UNTRAINED = 0.6  # log-FID penalty of a run that has not left T0
DEGENERATE = ("noise", "copies", "constant", "undertrained")
T0_SCENARIOS = ("stuck", "late", "short")
RULE = {"t0_enter_level": T0_ENTER_LEVEL, "t0_leave_level": T0_LEAVE_LEVEL,
        "t0_max_share": T0_MAX_SHARE, "t0_min_steps": float(T0_MIN_STEPS),
        "t0_window": float(T0_WINDOW)}


def beta_binomial(rng: np.random.Generator, n: int, q: float, rho: float = RHO) -> int:
    """Copies among n generated images when the copy rate varies between runs (mean q)."""
    if rho <= 0 or q <= 0 or q >= 1:
        return int(rng.binomial(n, q))
    s = (1 - rho) / rho
    return int(rng.binomial(n, rng.beta(q * s, (1 - q) * s)))


def table1_study(rng: np.random.Generator, seeds: int, *,
                 fid: Mapping[str, float] | None = None,
                 dloss: Mapping[str, float] | None = None,
                 recall: Mapping[str, float] | None = None,
                 hf: Mapping[str, float] | None = None,
                 copy_rate: float = 0.05, cells: tuple[str, ...] = CELLS) -> pd.DataFrame:
    """A Table I-shaped trials frame, every column the claims read (see the module doc)."""
    fid = fid or {}
    rows = []
    for c in cells:
        for s in range(seeds):
            lf = rng.normal(0, 0.1)
            h = (hf or {}).get(c, 0.0) + rng.normal(0, 0.05)
            t0 = 150.0 + rng.normal(0, 30) if c.startswith("adas") else 1800 + rng.normal(0, 150)
            rows.append({
                "group": c, "cell": f"{c}-s{s}", "seed": s, "status": "completed",
                "study": "table1", "scale": "sim", "image_size": 32, "data_source": "phantom",
                "num_images": 2048, "fid_n1": N_GEN, "fid_n2": N_GEN, "steps": STEPS,
                "config_steps": STEPS, "batch_size": 32, "g_features": 32, "d_features": 32,
                "fid": math.exp(5.4 + fid.get(c, 0.0) + rng.normal(0, CELL_SD.get(c, 0.118))),
                "t0": t0, "t0_past": 1.0, "t0_entered": 1.0, "t0_left": 1.0,
                "t0_share": t0 / STEPS, "t0_why_not": "", **RULE,
                "d_loss_mean": (dloss or {}).get(c, 1.0) + rng.normal(0, 0.1),
                "precision": 0.5 + rng.normal(0, 0.05), "density": 0.8,
                "recall": (recall or {}).get(c, 0.3) + rng.normal(0, 0.05), "coverage": 0.5,
                "prdc_n_real": N_GEN, "prdc_n_fake": N_GEN,
                "mem_ct": float(rng.standard_t(5)), "mem_px_ct": float(rng.standard_t(5)),
                "mem_copy_fraction": beta_binomial(rng, N_GEN, copy_rate) / N_GEN,
                "mem_px_copy_fraction": beta_binomial(rng, N_GEN, copy_rate) / N_GEN,
                "lf_deficit": 1 - math.exp(lf), "hf_deficit": 1 - math.exp(h + lf),
            })
    return pd.DataFrame(rows)


def not_past_t0(df: pd.DataFrame, rows: np.ndarray, why: str, *, entered: bool = True,
                share: float = math.nan) -> pd.DataFrame:
    """Mark ``rows`` (a boolean mask) as runs not past T0, with a barely trained FID."""
    out = df.copy()
    out.loc[rows, ["t0", "t0_past", "t0_left"]] = [math.nan, 0.0, float(share == share)]
    out.loc[rows, "t0_entered"] = float(entered)
    out.loc[rows, "t0_share"] = share
    out.loc[rows, "t0_why_not"] = why
    out.loc[rows, "fid"] = out.loc[rows, "fid"] * math.exp(UNTRAINED)
    out.loc[rows, "d_loss_mean"] = 0.08
    return out


def t0_failure(df: pd.DataFrame, kind: str, cell: str, rng: np.random.Generator) -> pd.DataFrame:
    """``stuck``: every run of ``cell`` stuck low all run; ``late``: of ``cell``'s seeds, one
    never leaves and one leaves at 80 % of the run (the rest normal); ``short``: every run 15
    iterations long, its loss never in or out of a low phase."""
    g = df["group"].to_numpy()
    if kind == "stuck":
        return not_past_t0(df, g == cell, "never left the low phase (D loss >= 0.3) in 3,500 "
                           "iterations")
    if kind == "late":
        idx = np.flatnonzero(g == cell)
        out = not_past_t0(df, np.isin(np.arange(len(df)), idx[:1]), "never left the low phase")
        return not_past_t0(out, np.isin(np.arange(len(df)), idx[1:2]),
                           "left the low phase at 80% of the run", share=0.8)
    if kind == "short":
        out = not_past_t0(df, np.ones(len(df), bool), "never entered the low phase and ran 15 "
                          "of the 2,750 iterations a run needs to have trained", entered=False)
        return out.assign(steps=15, config_steps=15)
    raise ValueError(f"unknown T0 scenario {kind!r}")


def degenerate(df: pd.DataFrame, kind: str, rng: np.random.Generator) -> pd.DataFrame:
    """Replace every run by the signature a degenerate generator leaves in the metrics."""
    n = len(df)
    out = df.copy()
    if kind in ("noise", "constant", "undertrained", "quarter-copies"):
        out = not_past_t0(out, np.ones(n, bool), "never left the low phase")
        out["d_loss_mean"] = rng.uniform(0.002, 0.01, n)
        out[["precision", "density", "recall", "coverage"]] = 0.0
        out["fid"] = np.exp(6.0 + rng.normal(0, 0.05, n))
    if kind in ("noise", "quarter-copies"):
        out["mem_ct"] = 7 + rng.normal(0, 0.5, n)
        out["mem_px_ct"] = 6.5 + rng.normal(0, 0.5, n)
        out[["mem_copy_fraction", "mem_px_copy_fraction"]] = 0.0
        out["hf_deficit"] = -15.0 + rng.normal(0, 1, n)  # noise adds high frequencies
        out["lf_deficit"] = -3.0 + rng.normal(0, 0.3, n)
    if kind == "quarter-copies":  # a quarter exact training images among noise
        out["mem_ct"] = 3.5 + rng.normal(0, 0.5, n)
        for c in ("mem_copy_fraction", "mem_px_copy_fraction"):
            out[c] = rng.binomial(N_GEN, 0.25, n) / N_GEN
    if kind == "constant":
        out["mem_ct"] = 9 + rng.normal(0, 0.5, n)
        out["mem_px_ct"] = 9 + rng.normal(0, 0.5, n)
        out[["mem_copy_fraction", "mem_px_copy_fraction"]] = 0.0
        out[["hf_deficit", "lf_deficit"]] = 1.0
    if kind == "undertrained":
        out["mem_ct"] = 5 + rng.normal(0, 0.5, n)
        out["mem_px_ct"] = 4 + rng.normal(0, 0.5, n)
        out[["mem_copy_fraction", "mem_px_copy_fraction"]] = 0.0
        out["lf_deficit"] = 0.9  # blurry blobs: little structure at any frequency
        out["hf_deficit"] = 0.99
    if kind == "copies":
        out["mem_ct"] = -15 + rng.normal(0, 1, n)
        out["mem_px_ct"] = -20 + rng.normal(0, 1, n)
        out[["mem_copy_fraction", "mem_px_copy_fraction"]] = 1.0
        out[["precision", "density"]] = 1.0
        out["fid"] = np.exp(1.0 + rng.normal(0, 0.05, n))
        out[["hf_deficit", "lf_deficit"]] = 0.0
    return out


def finish(df: pd.DataFrame, truth: str, rng: np.random.Generator,
           t0_cell: str = "adam-elu") -> pd.DataFrame:
    """Apply a T0 or degenerate scenario to a study drawn under the null."""
    if truth in T0_SCENARIOS:
        return t0_failure(df, truth, t0_cell, rng)
    if truth in (*DEGENERATE, "quarter-copies"):
        return degenerate(df, truth, rng)
    return df


# --------------------------------------------------------------------------- utility
def utility_study(rng: np.random.Generator, seeds: int, gap: float, *, cell: str = "adas-elu",
                  seed_sd: float = 0.03, test_se: float = 0.02) -> pd.DataFrame:
    """Utility trials: per run the AUROC gap (b) - (a) = ``gap`` + generator-seed variation
    (``seed_sd``) + the classifier's own and the test set's (``test_se``, also its reported
    bootstrap SE)."""
    rows = []
    for s in range(seeds):
        g = gap + rng.normal(0, seed_sd) + rng.normal(0, test_se)
        real = 0.8 + rng.normal(0, 0.02)
        rows.append({"group": cell, "cell": f"{cell}-s{s}", "seed": s, "status": "completed",
                     "study": "utility", "scale": "sim", "image_size": 32,
                     "data_source": "phantom", "num_images": 2048, "util_gap_synthetic": g,
                     "util_gap_synthetic_se": test_se, "util_auroc_real": real,
                     "util_auroc_synthetic": real + g, "util_gap_real_measured": 0.0,
                     "util_auroc_real_measured": real})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- memory, table3
def memory_study(claim: str, truth: str, rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for size in (16, 32):
        for w in (8, 16, 32, 64, 128):
            for bn in ("both", "d"):
                if truth == "effect":  # the paper's law: exponential growth, a 3 % saving
                    m = 0.5 * 2.0 ** (w / 16) if claim == "memory_exponential" else 0.2 + 0.001 * w**1.5
                    save = 1.03
                elif truth == "null":  # a power law; a 20 % saving
                    m, save = 0.2 + 0.001 * w**1.5, 1.20
                else:  # degenerate: nothing measured beside the d placement
                    m, save = 0.2 + 0.001 * w**1.5, 1.03
                m *= (size / 16) * (save if bn == "both" else 1.0) * (1 + rng.normal(0, 1e-4))
                rows.append({"image_size": size, "features": w, "batchnorm": bn,
                             "batch_size": 8, "optimizer": "adas", "device": "cpu",
                             "measured_peak_bytes": int(m * 2**20),
                             "estimate_bytes": int(0.95 * m * 2**20)})
    mf = memory_rows_frame(rows)
    if truth == "missing":
        mf = mf[(mf["batchnorm"] == "d") & (mf["features"] <= 16)]
    return mf


def table3_study(truth: str, rng: np.random.Generator) -> pd.DataFrame:
    rows = [{"group": "baseline", "cell": "baseline", "status": "completed", "reference": True,
             "param_factor": "none", "param_side": "none", "blockiness": 0.08, "fid": 100.0}]
    n = 4 if truth == "missing" else 12
    level = 0.4 if truth == "effect" else 0.09
    cells = [(f, s) for f in paper.TABLE3_FACTORS for s in paper.TABLE3_SIDES][:n]
    for f, s in cells:
        rows.append({"group": f"{f}-{s}", "cell": f"{f}-{s}", "status": "completed",
                     "reference": False, "param_factor": f, "param_side": s,
                     "blockiness": level + rng.normal(0, 0.01), "fid": 150.0})
    return pd.DataFrame(rows)
