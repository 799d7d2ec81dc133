"""Markdown tables: pure functions from a trials frame (reports.load) to a markdown string.

Each table with a ``*_frame`` companion computes its numbers there (tested directly) and only
formats them in the markdown function. Where a configuration was repeated over seeds, a cell
shows ``mean ± h`` with h the half-width of the 95 % t interval (reports.stats.mean_ci) and
the table says n.

One way to print things, used by every table, figure and claim (gan_core/claims/engine.py too), so
that a number quoted in a claim is the number in the table beside it:
  * :func:`fmt_value` ``(x, kind)``: a number at the precision of its kind (FID to 0.1,
    D-loss statistics to 0.001, seeds and T0 as integers, ...; :data:`DECIMALS`);
  * :func:`fmt_ci_value`: ``mean ± half`` of a MeanCI at its kind's precision;
  * :func:`display_name`: optimizer, activation and other registry names as a paper writes
    them (``adas`` -> AdaS, ``leaky_relu`` -> LeakyReLU; :data:`DISPLAY_NAMES`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from xraygan import paper
from xraygan.claims.frames import (  # noqa: F401  (re-exported for the report modules)
    BN_PAIRS,
    MIB,
    MIN_WIDTHS,
    bn_savings_frame,
    column_ci,
    growth_frame,
    memory_frame,
    memory_rows_frame,
    ordered_groups,
    table3_frame,
)
from xraygan.claims.stats import MeanCI, fmt
from xraygan.markdown import markdown  # noqa: F401  (the report modules' table renderer)
from xraygan.metrics.correlation import correlations_with
from xraygan.trials import TrialStatus, completed

# --------------------------------------------------------------------------- formatting
DECIMALS = {
    "fid": 1,  # FID's seed-to-seed spread is several units: more digits are noise
    "kid": 4,
    "loss": 3,  # D- and G-loss statistics (Table I: 0.845)
    "blockiness": 3,
    "score": 3,  # other [0, 1] scores (diversity, collapse)
    "r": 3,  # correlation coefficients
    "p": 3,
    "mib": 2,
    "pct": 2,
    "ratio": 3,
    "images_per_s": 1,
    "seconds": 1,
    "value": 3,  # anything else
}
INTEGER_KINDS = ("seed", "t0", "steps", "count", "trial")
"""Kinds printed as whole numbers (``count`` with thousands separators)."""

COLUMN_KINDS = {
    "fid": "fid", "kid": "kid", "kid_mean": "kid", "kid_std": "kid",
    "t0": "t0", "seed": "seed", "train_seed": "seed", "trial": "trial", "n": "count",
    "steps": "steps", "params_g": "count", "params_d": "count",
    "blockiness": "blockiness", "excess": "blockiness",
    "images_per_s": "images_per_s", "wall_time_s": "seconds", "train_time_s": "seconds",
    "eval_time_s": "seconds", "collapse_onset": "steps",
}


def kind_of(column: str) -> str:
    """The formatting kind of a frame column or metric name."""
    if column in COLUMN_KINDS:
        return COLUMN_KINDS[column]
    if column.startswith(("d_loss", "g_loss", "loss")):
        return "loss"
    for suffix, kind in (("_mib", "mib"), ("_pct", "pct"), ("_s", "seconds"), ("_r", "r"),
                         ("_p", "p"), ("ratio", "ratio")):
        if column.endswith(suffix):
            return kind
    return "value"


def fmt_value(x: object, kind: str = "value") -> str:
    """``x`` as a table cell or a claim quotes it: at the precision of ``kind`` (a key of
    :data:`DECIMALS`, one of :data:`INTEGER_KINDS`, or a column name, see :func:`kind_of`);
    None / NaN as an em dash, booleans as yes / no, p-values below 0.001 as "< 0.001"."""
    if kind not in DECIMALS and kind not in INTEGER_KINDS:
        kind = kind_of(kind)
    if x is None or isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        return fmt(x)
    v = float(x)
    if not math.isfinite(v):
        return "—"
    if kind in INTEGER_KINDS:
        n = int(round(v))
        return f"{n:,}" if kind == "count" else str(n)
    if kind == "p" and 0 <= v < 0.001:
        return "< 0.001"
    return fmt(v, DECIMALS[kind])


def fmt_ci_value(ci: MeanCI, kind: str = "value") -> str:
    """``mean`` for one run, ``mean ± half`` (95 % t interval) for several, at ``kind``'s
    precision (an integer kind keeps one decimal on the half-width only when it is below 1)."""
    if ci.n >= 2 and math.isfinite(ci.half):
        half = fmt_value(ci.half, kind)
        return f"{fmt_value(ci.mean, kind)} ± {half}"
    return fmt_value(ci.mean, kind)


DISPLAY_NAMES = {
    # optimizers (xraygan.optim)
    "adas": "AdaS", "adam": "Adam", "sgd": "SGD",
    # activations (xraygan.models.activations.ACTIVATIONS)
    "elu": "ELU", "celu": "CELU", "gelu": "GELU", "relu": "ReLU", "leaky_relu": "LeakyReLU",
    "selu": "SELU", "silu": "SiLU", "mish": "Mish", "tanh": "Tanh", "sigmoid": "Sigmoid",
    "softplus": "Softplus", "identity": "identity",
    # batch-norm placement, losses
    "none": "none", "d": "D", "g": "G", "both": "D and G",
    "nonsaturating": "non-saturating", "saturating": "saturating",
}


def display_name(name: object) -> str:
    """A registry name as the paper writes it; unknown names unchanged."""
    if name is None or (isinstance(name, float) and math.isnan(name)):
        return "—"
    return DISPLAY_NAMES.get(str(name), str(name))


def activation_label(g: object, d: object) -> str:
    """``ELU`` when G and D share it, else ``ReLU/LeakyReLU`` (G/D), as Table I writes it."""
    return display_name(g) if g == d else f"{display_name(g)}/{display_name(d)}"






# --------------------------------------------------------------------------- trials
def cells_frame(df: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: its final attempt (the completed one, else the latest), with
    ``attempts`` (how many trials the cell took: killed and requeued, interrupted, duplicated)
    and ``earlier`` (the statuses of the attempts before it). In first-trial order."""
    if df.empty:
        return df.assign(attempts=pd.Series(dtype=int), earlier=pd.Series(dtype=object))
    rows = []
    ordered = df.sort_values("trial")
    for cell in dict.fromkeys(ordered["cell"]):
        part = ordered[ordered["cell"] == cell]
        done = part[part["status"] == TrialStatus.COMPLETED]
        final = (done if len(done) else part).iloc[-1]
        others = part[part["trial"] != final["trial"]]
        rows.append({**final.to_dict(), "attempts": len(part),
                     "earlier": [_outcome(r) for _, r in others.iterrows()]})
    return pd.DataFrame(rows).reset_index(drop=True)


def _outcome(r: pd.Series) -> str:
    """A trial's status in one word; a FAIL trial still marked running was killed (its worker
    died; ablations.runner.outcome says the same of a FrozenTrial)."""
    status = r.get("status") or ""
    if r.get("state") == "FAIL" and status in ("", TrialStatus.RUNNING, TrialStatus.WAITING):
        return "killed"
    return status or str(r.get("state", "unknown")).lower()


def trials_markdown(df: pd.DataFrame) -> str:
    """One row per cell (retries folded in, counted under Attempts): the final trial, seed,
    status, objective, wall time, and why it failed (or what the earlier attempts did)."""
    rows = []
    for _, r in cells_frame(df).iterrows():
        value = (f"{r['objective']} = {fmt_value(r['value'], r['objective'] or 'value')}"
                 if pd.notna(r.get("value")) else "—")
        why = r.get("failure") or ""
        if r["earlier"] and r["status"] == TrialStatus.COMPLETED:
            why = "earlier attempts: " + ", ".join(r["earlier"])
        rows.append([fmt_value(r["trial"], "trial"), r["cell"], fmt_value(r.get("seed"), "seed"),
                     _outcome(r), r["attempts"], value,
                     fmt_value(r.get("wall_time_s"), "seconds"), why])
    return markdown(["Trial", "Cell", "Seed", "Status", "Attempts", "Objective", "Wall time (s)",
                     "Failure"], rows, ["r", "l", "r", "l", "r", "l", "r", "l"])


# --------------------------------------------------------------------------- Table I
TABLE1_COLUMNS = ("d_loss_mean", "d_loss_var", "d_loss_std", "fid", "t0")


def table1_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Per configuration (group) of completed trials: n and MeanCI of each Table I column."""
    done = completed(df)
    rows = []
    for g in ordered_groups(done, list(paper.TABLE1)):
        part = done[done["group"] == g]
        first = part.iloc[0]
        row = {"group": g, "n": len(part), "optimizer": first.get("optimizer"),
               "g_activation": first.get("g_activation"), "d_activation": first.get("d_activation"),
               "ttur": first.get("ttur")}
        row.update({c: column_ci(part, c) for c in TABLE1_COLUMNS})
        rows.append(row)
    return pd.DataFrame(rows)


def table1_markdown(df: pd.DataFrame) -> str:
    """Table I: the paper's row above ours for each configuration; ours as mean ± 95 % CI
    half-width over seeds where repeated. Failed trials are counted in a note below."""
    tf = table1_frame(df)
    rows = []
    for _, r in tf.iterrows():
        p = paper.TABLE1.get(r["group"])
        if p is not None:
            rows.append([r["group"], p.optimizer, p.activation, fmt(p.ttur), "paper", 1,
                         *(fmt_value(getattr(p, c), c) for c in TABLE1_COLUMNS[:4]), p.t0])
        rows.append([r["group"], display_name(r["optimizer"]),
                     activation_label(r["g_activation"], r["d_activation"]),
                     fmt(bool(r["ttur"])), "ours", r["n"],
                     *(fmt_ci_value(r[c], c) for c in TABLE1_COLUMNS)])
    out = markdown(["Configuration", "Optimizer", "Activation", "TTUR", "Source", "n",
                    "D-loss mean", "variance", "std", "FID", "T0 (iter.)"], rows,
                   ["l", "l", "l", "l", "l", "r", "r", "r", "r", "r", "r"])
    notes = []
    if (tf["n"] > 1).any():
        notes.append("ours: mean ± half-width of the 95 % t confidence interval over n seeds")
    cells = cells_frame(df)
    failed = cells[cells["status"] != TrialStatus.COMPLETED]
    if len(failed):
        notes.append("not completed: " + ", ".join(
            f"{c} ({s})" for c, s in zip(failed["cell"], failed["status"], strict=True)))
    if "fid" not in df.columns or df["fid"].isna().all():
        notes.append("FID was not computed at this scale (—)")
    return out + "".join(f"\n{n}." for n in notes) + ("\n" if notes else "")


# --------------------------------------------------------------------------- Table III


def table3_markdown(df: pd.DataFrame) -> str:
    """Table III as two grids (FID, blockiness): factor x side, the baseline above, the
    paper's verdict ("failed", by eye) beside; then the cells in long form."""
    tf = table3_frame(df)
    out = []
    base = tf[tf["factor"] == "none"]
    for metric, title in (("fid", "FID"), ("blockiness", "Blockiness (blurry-squares score)")):
        rows = []
        if len(base):
            b = base.iloc[0]
            rows.append(["baseline (uncompressed)", fmt_ci_value(b[metric], metric), "", "", "ok (deep model)"])
        for factor in paper.TABLE3_FACTORS:
            cells = []
            for side in paper.TABLE3_SIDES:
                hit = tf[(tf["factor"] == factor) & (tf["side"] == side)]
                cells.append(fmt_ci_value(hit.iloc[0][metric], metric) if len(hit) else "not run")
            rows.append([factor, *cells, paper.TABLE3_VERDICT])
        out.append(f"**{title}**\n\n" + markdown(["Compressed", "D", "G", "both", "Paper"], rows))
    long_rows = []
    spectral = "hf_deficit" in df.columns  # the spectral deficit beside blockiness
    for _, r in tf.iterrows():
        hf = ([fmt_ci_value(column_ci(df[df["group"] == r["group"]], "hf_deficit"), "hf_deficit")]
              if spectral else [])
        long_rows.append([r["group"], r["factor"], r["side"], r["status"], r["n"],
                          fmt_ci_value(r["fid"], "fid"), fmt_ci_value(r["blockiness"], "blockiness"),
                          fmt_value(r["excess"], "blockiness"), *hf,
                          "yes" if r["filled"] else ""])
    out.append(markdown(["Cell", "Factor", "Side", "Status", "n", "FID", "Blockiness",
                         "Excess over baseline", *(["HF deficit"] if spectral else []),
                         "From last samples"], long_rows,
                        ["l", "l", "l", "l", "r", "r", "r", "r", *(["r"] if spectral else []), "l"]))
    return "\n".join(out)


# --------------------------------------------------------------------------- memory






def memory_markdown(mf: pd.DataFrame) -> str:
    """Estimated vs measured memory of one training step per configuration (MiB)."""
    if mf.empty:
        return "No measured memory.\n"
    has_ti = "torchinfo_mib" in mf.columns
    rows = [[r["cell"], r["image_size"], r["features"], r["batchnorm"], r["optimizer"],
             r["batch_size"], *([fmt_value(r["torchinfo_mib"], "mib")] if has_ti else []),
             fmt_value(r["estimate_mib"], "mib"), fmt_value(r["measured_mib"], "mib"),
             fmt_value(r["ratio"], "ratio"),
             r["device"]] for _, r in mf.iterrows()]
    head = ["Cell", "Image", "Width", "BN", "Optimizer", "Batch",
            *(["Paper method, torchinfo (MiB)"] if has_ti else []), "Estimate (MiB)",
            "Measured peak (MiB)", "Estimate / measured", "Device"]
    return markdown(head, rows, ["l", "r", "r", "l", "l", "r", *(["r"] if has_ti else []),
                                 "r", "r", "r", "l"])






def bn_savings_markdown(mf: pd.DataFrame) -> str:
    bf = bn_savings_frame(mf)
    if bf.empty:
        return "No pair of configurations that differ only in batch norm in G.\n"
    lo, hi = paper.BN_SAVING_PCT
    rows = [[f"{r['with']} → {r['without']}", r["image_size"], r["features"],
             fmt_value(r["measured_with_mib"], "mib"), fmt_value(r["measured_without_mib"], "mib"),
             fmt_value(r["saving_measured_pct"], "pct"), fmt_value(r["saving_estimate_pct"], "pct"),
             f"{lo}–{hi}"]
            for _, r in bf.iterrows()]
    return markdown(["BN removed from G", "Image", "Width", "With BN (MiB)", "Without (MiB)",
                     "Saving measured (%)", "Saving estimated (%)", "Paper (%)"], rows)






def growth_markdown(mf: pd.DataFrame) -> str:
    gf = growth_frame(mf)
    if gf.empty:
        return f"Fewer than {MIN_WIDTHS} feature-map widths per image size: no growth law fitted.\n"
    rows = [[r["image_size"], r["batchnorm"], r["quantity"], r["n_widths"],
             fmt(r["power_exponent"]), fmt(r["r2_power"], 4), fmt(r["exp_rate"], 4),
             fmt(r["r2_exponential"], 4), fmt(r["extrap_err_power"]),
             fmt(r["extrap_err_exponential"]), r["better"]] for _, r in gf.iterrows()]
    return markdown(["Image", "BN", "Memory", "Widths", "Power exponent k (a w^k + c)",
                     "R² power", "Exp. rate b (a e^{bw} + c)", "R² exponential",
                     "Extrapolation error power", "Extrapolation error exp.", "Better fit"],
                    rows, ["r", "l", "l", "r", "r", "r", "r", "r", "r", "r", "l"])


# --------------------------------------------------------------------------- throughput
def throughput_frame(df: pd.DataFrame) -> pd.DataFrame:
    done = completed(df)
    rows = []
    for g in ordered_groups(done):
        part = done[done["group"] == g]
        rows.append({"group": g, "n": len(part), "images_per_s": column_ci(part, "images_per_s"),
                     "train_time_s": column_ci(part, "train_time_s"),
                     "params_g": part["params_g"].iloc[0], "params_d": part["params_d"].iloc[0],
                     "peak_mib": column_ci(part, "peak_memory_bytes").mean / MIB})
    return pd.DataFrame(rows)


def throughput_markdown(df: pd.DataFrame, context: str | None = None) -> str:
    """Parameters and peak memory per configuration, and training speed only with ``context``
    (how it was measured: machine, workers sharing it): without it, images/s differences
    between configurations (contention between workers, other load) would read as results."""
    tf = throughput_frame(df)
    if tf.empty:
        return "No completed trials.\n"
    speed = context is not None
    rows = [[r["group"], r["n"],
             *([fmt_ci_value(r["images_per_s"], "images_per_s"),
                fmt_ci_value(r["train_time_s"], "seconds")] if speed else []),
             fmt_value(r["params_g"], "count"), fmt_value(r["params_d"], "count"),
             fmt_value(r["peak_mib"], "mib")] for _, r in tf.iterrows()]
    head = ["Configuration", "n", *(["Images/s (training)", "Train time (s)"] if speed else []),
            "Params G", "Params D", "Peak memory (MiB)"]
    lead = (f"Speed measured {context}.\n\n" if speed else
            "Training speed is not shown: how it was measured (workers sharing the machine) "
            "was not recorded.\n\n")
    return lead + markdown(head, rows)


# --------------------------------------------------------------------------- correlation
def correlation_markdown(df: pd.DataFrame) -> str:
    """Pearson and Spearman correlation of each D-loss statistic with FID, with p and n
    (xraygan.metrics.correlation)."""
    done = completed(df)
    if "fid" not in done.columns or done["fid"].notna().sum() < 3:
        return "Fewer than three runs with an FID: no correlation computed.\n"
    cw = correlations_with(done)
    rows = [[r["metric"], fmt_value(r["pearson_r"], "r"), fmt_value(r["pearson_p"], "p"),
             fmt_value(r["spearman_r"], "r"), fmt_value(r["spearman_p"], "p"), r["n"]]
            for _, r in cw.iterrows()]
    return markdown(["Against FID", "Pearson r", "p", "Spearman ρ", "p", "n"], rows)
