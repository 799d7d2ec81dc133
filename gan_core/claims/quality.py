"""Claims about what FID alone cannot tell: privacy (data copying), frequency bias, diversity.

Each reads the per-run metrics of xraygan.metrics (memorization, spectrum, prdc) and states
the preconditions under which its metric can speak: a generator far from the data cannot show
whether it copies, nor whether it misses high frequencies, and recall without precision
measures spread, not diversity. See gan_core/claims/engine.py for the registry.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import norm

from xraygan.metrics.memorization import COPY_QUANTILE
from xraygan.metrics.spectrum import CUTOFF
from xraygan.trials import completed

from . import decide
from .engine import NOT_COPYING, Finding, cell_values, describe, not_copying, num, register_claim
from .protocol import ClaimProtocol, Precondition
from .stats import fmt_ci, mean_ci

QUALITY = "beyond-fid"  # the Holm family of these claims
PRECISION_FLOOR = 0.10  # precision or density below this: no generated image on the real manifold
CT_NEAR = 3.0  # C_T above this: G underfits (farther from T than fresh data); copying untestable
COPY_MARGIN = 0.05  # "no copying": copy fraction below COPY_QUANTILE + this, shown by a test
LF_FACTOR = 2.0  # low-frequency power within this factor of the real images': G learned them
POWER_FLOOR = 1e-3  # relative power is clipped here before the logarithm (a flat image has 0)

QUALITY_FLOOR = Precondition(
    "precision_floor", f"mean precision or density >= {PRECISION_FLOOR:g} in every compared "
    "configuration (Kynkaanniemi et al. 2019, Naeem et al. 2020: with precision near 0 no "
    "generated image lies on the real manifold, recall and coverage measure spread)",
    PRECISION_FLOOR)


def _groups(df: pd.DataFrame) -> list[str]:
    return [str(g) for g in dict.fromkeys(completed(df)["group"])]


def quality_floor(df: pd.DataFrame, groups: list[str], floor: float) -> str:
    """'' when every group's mean precision (or density) reaches ``floor``; else which fail."""
    bad = []
    for g in groups:
        prec = cell_values(df, g, "precision")
        dens = cell_values(df, g, "density")
        best = max((float(np.nanmean(v)) for v in (prec, dens) if np.isfinite(v).any()),
                   default=math.nan)
        if not best >= floor:
            bad.append(f"{g} precision {num(np.nanmean(prec), 3) if len(prec) else '—'}")
    return f"precision_floor ({QUALITY_FLOOR.text}): " + ", ".join(bad) if bad else ""


# --------------------------------------------------------------------------- copying
@register_claim(ClaimProtocol(
    key="no_data_copying", version=2,
    statement=("Synthetic images do not copy training images (the paper's privacy argument "
               "for sharing generated radiographs)"),
    hypothesis=(f"in every configuration the copy fraction (generated images nearer a training image than "
                f"the {COPY_QUANTILE:.0%} quantile of held-out ones) is below "
                f"{COPY_QUANTILE + COPY_MARGIN:g}, and C_T is not significantly below 0."),
    direction="less",
    metric="copy fraction per run (Inception features and 16x16 pixels, the larger), and C_T",
    cells=("*",),
    test=(f"per configuration (its runs' generated images pooled), one-sided binomial test of "
          f"the copy fraction against {COPY_QUANTILE + COPY_MARGIN:g} (H0: at least that many "
          f"copies); holds when every configuration rejects (intersection-union). Does not hold when some run has C_T significantly "
          f"below 0 in either space (C_T is a standard normal z without copying) or a copy "
          f"fraction significantly above {COPY_QUANTILE:g} (binomial); Bonferroni over runs and "
          "the 4 tests of a run. Evidence of copying counts whatever the generator's fit."),
    family=QUALITY, sesoi=COPY_MARGIN, margin=COPY_MARGIN,
    preconditions=(Precondition("near_data", f"no copying found, and every configuration's "
                                f"mean C_T <= {CT_NEAR:g} (Meehan et al. 2020: C_T >> 0 is underfitting, "
                                "where the test cannot show the absence of copying)", CT_NEAR),
                   QUALITY_FLOOR),
    studies=("table1", "seeds", "runs"),
    transfer="other training-set sizes (copying grows as the set shrinks) and longer training",
    params=(("ct_near", CT_NEAR), ("copy_quantile", COPY_QUANTILE),
            ("copy_margin", COPY_MARGIN))),
    reads=lambda i: i.all_trials())
def no_data_copying(trials: pd.DataFrame | None, p: ClaimProtocol) -> Finding:
    done = completed(trials) if trials is not None and not trials.empty else pd.DataFrame()
    if done.empty or "mem_ct" not in done.columns or done["mem_ct"].isna().all():
        return Finding("no run with a memorization test (needs Inception metrics: a scale with "
                       "FID, or xraygan metrics RUN --fid)", describe(trials), frame=trials)
    t = done[done["mem_ct"].notna()]
    n_gen = t["fid_n1"].astype(float).fillna(0).to_numpy() if "fid_n1" in t else np.zeros(len(t))
    frac = np.fmax(t["mem_copy_fraction"].astype(float).to_numpy(),
                   t.get("mem_px_copy_fraction", t["mem_copy_fraction"]).astype(float).to_numpy())
    ct = t["mem_ct"].astype(float).to_numpy()
    ct_px = t.get("mem_px_ct", t["mem_ct"]).astype(float).to_numpy()
    q0 = p.param("copy_quantile")
    bound = q0 + p.param("copy_margin")
    counts = np.round(frac * n_gen).astype(int)
    m = len(t)
    # evidence of copying, per run: C_T (a standard normal z under no copying, Meehan et al.)
    # significantly below 0 in either space, or more copies than fresh data give; 4 tests a
    # run (Bonferroni over runs and tests: the whole claim's error stays at alpha)
    p_ct = np.fmin(norm.cdf(ct), norm.cdf(np.nan_to_num(ct_px, nan=np.inf)))
    p_bin = np.array([decide.binomial_upper(k, int(n), q0) for k, n in
                      zip(counts, n_gen, strict=True)])
    p_run = np.fmin(1.0, 4 * m * np.fmin(p_ct, np.nan_to_num(p_bin, nan=1.0)))
    # absence of copying, per configuration (its seeds' generated images pooled): fewer
    # copies than the bound, shown by a binomial test; every configuration must show it
    pooled = pd.DataFrame({"group": t["group"].to_numpy(), "k": counts, "n": n_gen.astype(int)})
    pooled = pooled.groupby("group", sort=False)[["k", "n"]].sum()
    p_clean = [decide.binomial_lower(int(k), int(n), bound)
               for k, n in zip(pooled["k"], pooled["n"], strict=True)]
    copies = p_run < p.alpha
    test = decide.TestResult(  # a run that copies rules "holds" out, however diluted
        p_holds=max(p_clean) if p_clean and all(map(math.isfinite, p_clean))
        and not copies.any() else math.nan,
        p_opposite=float(p_run.min()) if m else math.nan, n=m)
    untestable = ""
    if not copies.any():
        by_cfg = t.assign(ct=ct).groupby("group", sort=False)["ct"].mean()
        far = by_cfg[by_cfg > p.param("ct_near")]
        if len(far):
            untestable = (f"near_data ({p.precondition('near_data').text}): mean C_T "
                          + ", ".join(f"{g} {num(v, 2)}" for g, v in far.items()))
        else:
            untestable = quality_floor(t, _groups(t), PRECISION_FLOOR)
    ev = (f"{int(copies.sum())} of {m} runs show copying; C_T (features) {num(ct.min(), 2)} to "
          f"{num(ct.max(), 2)}; copy fraction {num(frac.min(), 3)} to {num(frac.max(), 3)} "
          f"({q0:g} expected of fresh data) on {int(n_gen.max()) if m else 0} generated images")
    details = "; ".join(f"{r['group']}{_seed(r)}: C_T {num(r['mem_ct'], 2)} (features), "
                        f"{num(r.get('mem_px_ct', math.nan), 2)} (pixels), copy fraction "
                        f"{num(f, 3)}" for f, (_, r) in zip(frac, t.iterrows(), strict=True))
    return Finding(ev, describe(trials), details, test=test, untestable=untestable, frame=trials)


# --------------------------------------------------------------------------- frequencies
def hf_log_ratio(df: pd.DataFrame) -> pd.Series:
    """Per run: log of generated/real power above the cut-off minus the same below it (0: the
    high frequencies are reproduced as well as the low ones; < 0: missing). Symmetric, unlike
    the deficits (bounded by 1 on one side, unbounded on the other)."""
    hf = np.log(np.clip(1 - df["hf_deficit"].astype(float), POWER_FLOOR, None))
    lf = np.log(np.clip(1 - df["lf_deficit"].astype(float), POWER_FLOOR, None))
    return hf - lf


@register_claim(ClaimProtocol(
    key="hf_bias", version=2,
    statement=("GANs are biased against high frequencies (the paper's Discussion, after "
               "Khayatkhoei & Elgammal 2022)"),
    hypothesis=(f"over configurations, the mean log ratio of generated to real power above "
                f"{CUTOFF:g} x Nyquist, relative to the same below it, is below 0."),
    direction="less", metric="log(1 - hf_deficit) - log(1 - lf_deficit), configuration means",
    cells=("*",),
    test=("one-sample t over configuration means (n = configurations); does not hold on a "
          "significant positive mean or TOST within the margin."),
    family=QUALITY, sesoi=math.log(1 / 0.8), margin=math.log(1 / 0.9),
    preconditions=(QUALITY_FLOOR, NOT_COPYING,
                   Precondition("low_frequencies", f"every configuration's power below the "
                                f"cut-off within a factor {LF_FACTOR:g} of the real images' "
                                "(a generator that has not learned the low frequencies cannot "
                                "show missing high ones)", LF_FACTOR),
                   Precondition("configurations", "at least 3 configurations with spectra", 3)),
    studies=("table1", "table3", "seeds", "runs"),
    transfer="other image sizes (the cut-off is relative to Nyquist) and trained-to-convergence GANs"),
    reads=lambda i: i.all_trials())
def hf_bias(trials: pd.DataFrame | None, p: ClaimProtocol) -> Finding:
    done = completed(trials) if trials is not None and not trials.empty else pd.DataFrame()
    if done.empty or not {"hf_deficit", "lf_deficit"} <= set(done.columns):
        return Finding("no spectrum metrics", describe(trials), frame=trials)
    done = done.assign(h=hf_log_ratio(done), lf_log=np.log(np.clip(
        1 - done["lf_deficit"].astype(float), POWER_FLOOR, None)))
    groups = {g: part for g, part in done.groupby("group", sort=False) if part["h"].notna().any()}
    need = p.precondition("configurations").threshold
    means = {g: float(part["h"].mean()) for g, part in groups.items()}
    lf = {g: float(part["lf_log"].mean()) for g, part in groups.items()}
    test = decide.one_sample(list(means.values()), p.direction, p.margin)
    untestable = ""
    if len(groups) < need:
        untestable = f"configurations: {len(groups)} with spectra (need {need:g})"
    elif bad := [g for g, v in lf.items() if abs(v) > math.log(LF_FACTOR)]:
        untestable = (f"low_frequencies ({p.precondition('low_frequencies').text}): "
                      + ", ".join(f"{g} low-frequency power x{math.exp(lf[g]):.2f}" for g in bad))
    else:
        untestable = (quality_floor(done, list(groups), PRECISION_FLOOR)
                      or not_copying(done, list(groups)))
    ev = (f"mean log HF/LF power ratio over {len(groups)} configurations {num(test.estimate, 3)} "
          f"[{num(test.low, 3)}, {num(test.high, 3)}]")
    details = ", ".join(f"{g} {num(v, 3)} (low-frequency power x{math.exp(lf[g]):.2f})"
                        for g, v in means.items())
    return Finding(ev, describe(trials), details, test=test, untestable=untestable, frame=trials)


# --------------------------------------------------------------------------- diversity
RECALL_MARGIN = 0.05


def equal_sets(df: pd.DataFrame) -> str:
    """'' when every run's precision/recall used as many real as generated images."""
    if {"prdc_n_real", "prdc_n_fake"} <= set(df.columns):
        a, b = df["prdc_n_real"].astype(float), df["prdc_n_fake"].astype(float)
    elif {"fid_n1", "fid_n2"} <= set(df.columns):  # runs scored before the sets were equalised
        a, b = df["fid_n2"].astype(float), df["fid_n1"].astype(float)
    else:
        return "equal_sets: the real and generated set sizes were not recorded"
    bad = (a != b) & a.notna()
    if bad.any() or a.isna().all():
        return (f"equal_sets (coverage's expectation assumes as many real as generated images): "
                f"{int(a.max()) if a.notna().any() else '?'} real vs "
                f"{int(b.min()) if b.notna().any() else '?'} generated")
    return ""


@register_claim(ClaimProtocol(
    key="best_fid_best_recall", version=2,
    statement=("The best-FID configuration is also the most diverse (highest recall): FID "
               "alone ranks diversity"),
    hypothesis=(f"the lowest-FID configuration's mean recall is not lower than any other's by "
                f"{RECALL_MARGIN:g} or more (non-inferiority)."),
    direction="greater", metric="recall per seed (k = 5, equal real and generated sets)",
    cells=("*",),
    test=(f"one-sided Welch t of recall(best) - recall(other) > -{RECALL_MARGIN:g} against each "
          "other configuration, holds when all reject (intersection-union); does not hold when "
          "some configuration has significantly higher recall (Bonferroni over configurations)."),
    family=QUALITY, sesoi=RECALL_MARGIN, margin=RECALL_MARGIN,
    preconditions=(QUALITY_FLOOR, NOT_COPYING, Precondition("equal_sets", "precision/recall computed on as "
                                               "many real as generated images", 1.0),
                   Precondition("configurations", "at least 2 configurations with FID and "
                                "recall", 2)),
    studies=("table1", "seeds", "runs"), transfer="other feature extractors than Inception"),
    reads=lambda i: i.first("table1", "runs"))
def best_fid_best_recall(trials: pd.DataFrame | None, p: ClaimProtocol) -> Finding:
    if trials is None or trials.empty or not {"fid", "recall"} <= set(trials.columns):
        return Finding("no table1 study or runs with FID and recall", describe(trials),
                       frame=trials)
    both = [g for g in _groups(trials) if np.isfinite(cell_values(trials, g, "recall")).any()
            and np.isfinite(cell_values(trials, g, "fid")).any()]
    if len(both) < 2:
        return Finding(f"{len(both)} configurations with FID and recall", describe(trials),
                       frame=trials, untestable=f"configurations: {len(both)} with FID and "
                       "recall (need 2)")
    fid = {g: mean_ci(cell_values(trials, g, "fid")) for g in both}
    rec = {g: mean_ci(cell_values(trials, g, "recall")) for g in both}
    best = min(both, key=lambda g: fid[g].mean)
    parts = [decide.welch(cell_values(trials, best, "recall"), cell_values(trials, g, "recall"),
                          "greater", shift=-p.margin) for g in both if g != best]
    opposite = [decide.welch(cell_values(trials, best, "recall"),
                             cell_values(trials, g, "recall"), "less") for g in both if g != best]
    iut = decide.intersection_union(parts)
    opp = decide.intersection_union(opposite)
    test = decide.TestResult(iut.p_holds, opp.p_holds if math.isnan(opp.p_holds) else
                             min(1.0, len(opposite) * min(o.p_holds for o in opposite)),
                             n=iut.n)
    done = completed(trials)
    untestable = (quality_floor(trials, both, PRECISION_FLOOR) or not_copying(trials, both)
                  or equal_sets(done))
    top = max(both, key=lambda g: rec[g].mean)
    ev = (f"lowest FID: {best} ({fmt_ci(fid[best], 1)}), recall {fmt_ci(rec[best], 3)}; highest "
          f"recall: {top} ({fmt_ci(rec[top], 3)}, FID {fmt_ci(fid[top], 1)})")
    details = ", ".join(f"{g}: FID {fmt_ci(fid[g], 1)}, recall {fmt_ci(rec[g], 3)}" for g in both)
    return Finding(ev, describe(trials), details, test=test, untestable=untestable, frame=trials)


def _seed(row: pd.Series) -> str:
    """" seed N" for a run's row with a seed, so that per-run details say which run."""
    try:
        seed = float(row.get("seed"))
    except (TypeError, ValueError):
        return ""
    return f" seed {int(seed)}" if math.isfinite(seed) else ""
