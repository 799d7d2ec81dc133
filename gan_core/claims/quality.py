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
from scipy import stats as sstats

from xraygan.metrics.memorization import COPY_QUANTILE
from xraygan.metrics.spectrum import CUTOFF
from xraygan.trials import completed

from . import decide, simulate
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


def quality_floor(df: pd.DataFrame, groups: list[str], p: ClaimProtocol) -> str:
    """'' when every group's mean precision (or density) reaches the registered floor
    (precondition ``precision_floor``); else which fail."""
    pre = p.precondition("precision_floor")
    floor = pre.threshold
    bad = []
    for g in groups:
        prec = cell_values(df, g, "precision")
        dens = cell_values(df, g, "density")
        best = max((float(np.nanmean(v)) for v in (prec, dens) if np.isfinite(v).any()),
                   default=math.nan)
        if not best >= floor:
            bad.append(f"{g} precision {num(np.nanmean(prec), 3) if len(prec) else '—'}")
    return f"precision_floor ({pre.text}): " + ", ".join(bad) if bad else ""


# --------------------------------------------------------------------------- copying
@register_claim(ClaimProtocol(
    key="no_data_copying", version=3,
    statement=("Synthetic images do not copy training images (the paper's privacy argument "
               "for sharing generated radiographs)"),
    hypothesis=(f"in every configuration the copy fraction (generated images nearer a training image than "
                f"the {COPY_QUANTILE:.0%} quantile of held-out ones) is below "
                f"{COPY_QUANTILE + COPY_MARGIN:g}, and C_T is not significantly below 0."),
    direction="less",
    metric="copy fraction per run (Inception features and 16x16 pixels, the larger), and C_T",
    cells=("*",),
    test=(f"per configuration, its copy rate below {COPY_QUANTILE + COPY_MARGIN:g} (standard "
          "error: the larger of the binomial one over its images and its runs' spread); holds when every configuration rejects "
          "(intersection-union). Does not hold when some configuration's copy rate is "
          f"shown above {COPY_QUANTILE + COPY_MARGIN:g} (non-inferiority rejects at the margin) "
          "or its mean C_T below 0 in either space (one-sample t; Bonferroni over "
          "configurations and the 3 tests). Evidence of copying counts whatever the "
          "generator's fit."),
    family=QUALITY, sesoi=COPY_MARGIN, margin=COPY_MARGIN,
    holds_at=COPY_QUANTILE + COPY_MARGIN, fails_at=COPY_QUANTILE + COPY_MARGIN,
    preconditions=(Precondition("near_data", f"no copying found, and every configuration's "
                                f"mean C_T <= {CT_NEAR:g} (Meehan et al. 2020: C_T >> 0 is underfitting, "
                                "where the test cannot show the absence of copying)", CT_NEAR),
                   QUALITY_FLOOR),
    studies=("table1", "seeds", "runs"),
    transfer="other training-set sizes (copying grows as the set shrinks) and longer training",
    params=(("ct_near", CT_NEAR), ("copy_quantile", COPY_QUANTILE),
            ("copy_margin", COPY_MARGIN))),
    reads=lambda i: i.all_trials(), simulate=lambda truth, rng, seeds: _sim_copy(truth, rng, seeds))
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
    m = len(t)
    # Per configuration, over its seeds (the runs are the units: copy counts vary between runs
    # far more than a binomial allows, and C_T has heavier tails than the normal, so per-run
    # binomial and z tests reject on one noisy run). Evidence of copying: the mean copy
    # fraction shown above the bound, or the mean C_T shown below 0 in either space
    # (Bonferroni over configurations and the 3 tests). Absence of copying: the mean copy
    # fraction shown below the bound in every configuration (intersection-union).
    groups = t["group"].astype(str).to_numpy()
    names = list(dict.fromkeys(groups))
    against, clean, copies = [], [], []
    for g in names:
        mine = groups == g
        rate = rate_test(frac[mine], n_gen[mine], bound)
        cts = [decide.one_sample(ct[mine], "less"), decide.one_sample(ct_px[mine], "less")]
        pg = min([rate.p_against] + [x.p_holds for x in cts if not x.untestable])
        against.append(pg)
        if math.isfinite(pg) and min(1.0, 3 * len(names) * pg) < p.alpha:
            copies.append(g)
        clean.append(rate)
    p_against = min(1.0, 3 * len(names) * min(against)) if any(map(math.isfinite, against)) \
        else math.nan
    iut = decide.intersection_union(clean)
    test = decide.TestResult(  # a configuration that copies rules "holds" out
        p_holds=iut.p_holds if not copies and not iut.untestable else math.nan,
        p_against=p_against, n=m,
        untestable="" if copies or not iut.untestable else f"copy fraction: {iut.untestable}")
    untestable = ""
    few = [g for g in names if (groups == g).sum() < 2]
    if not copies and few:
        untestable = (f"seeds: {', '.join(few)} with one run (a configuration needs 2 or more "
                      "runs: its runs, not its images, are the units)")
    elif not copies:
        by_cfg = t.assign(ct=ct).groupby("group", sort=False)["ct"].mean()
        far = by_cfg[by_cfg > p.param("ct_near")]
        if len(far):
            untestable = (f"near_data ({p.precondition('near_data').text}): mean C_T "
                          + ", ".join(f"{g} {num(v, 2)}" for g, v in far.items()))
        else:
            untestable = quality_floor(t, _groups(t), p)
    ev = (f"{len(copies)} of {len(names)} configurations show copying"
          f"{' (' + ', '.join(copies) + ')' if copies else ''}; {m} runs; C_T (features) {num(ct.min(), 2)} to "
          f"{num(ct.max(), 2)}; copy fraction {num(frac.min(), 3)} to {num(frac.max(), 3)} "
          f"({q0:g} expected of fresh data, bound {bound:g}) on "
          f"{int(n_gen.max()) if m else 0} generated images per run")
    details = "; ".join(f"{r['group']}{_seed(r)}: C_T {num(r['mem_ct'], 2)} (features), "
                        f"{num(r.get('mem_px_ct', math.nan), 2)} (pixels), copy fraction "
                        f"{num(f, 3)}" for f, (_, r) in zip(frac, t.iterrows(), strict=True))
    return Finding(ev, describe(trials), details, test=test, untestable=untestable, frame=trials)


def rate_test(frac: np.ndarray, n: np.ndarray, bound: float) -> decide.TestResult:
    """A configuration's copy rate against ``bound`` over its runs: p_holds for "below",
    p_against for "above". The standard error is the larger of the binomial one at the bound
    (pooled images) and the one the runs' spread shows (copies vary between runs more than a
    binomial allows), with the normal quantiles. A configuration whose runs
    all copy alike (0 copies each) is decided on the binomial error: counts have no "no
    spread" degeneracy."""
    keep = np.isfinite(frac) & (n > 0)
    frac, n = frac[keep], n[keep]
    if not len(frac):
        return decide.TestResult(untestable="no run with a copy fraction")
    rate = float((frac * n).sum() / n.sum())
    se_b = math.sqrt(bound * (1 - bound) / n.sum())
    se_s = float(frac.std(ddof=1) / math.sqrt(len(frac))) if len(frac) >= 2 else 0.0
    z = (rate - bound) / max(se_b, se_s)
    return decide.TestResult(float(sstats.norm.cdf(z)), float(sstats.norm.sf(z)), rate,
                             n=len(frac))


# --------------------------------------------------------------------------- frequencies
def hf_log_ratio(df: pd.DataFrame) -> pd.Series:
    """Per run: log of generated/real power above the cut-off minus the same below it (0: the
    high frequencies are reproduced as well as the low ones; < 0: missing). Symmetric, unlike
    the deficits (bounded by 1 on one side, unbounded on the other)."""
    hf = np.log(np.clip(1 - df["hf_deficit"].astype(float), POWER_FLOOR, None))
    lf = np.log(np.clip(1 - df["lf_deficit"].astype(float), POWER_FLOOR, None))
    return hf - lf


@register_claim(ClaimProtocol(
    key="hf_bias", version=3,
    statement=("GANs are biased against high frequencies: their power above half the Nyquist "
               "frequency, relative to below it, is more than 10 % weaker than the real images' "
               "(the paper's Discussion, after Khayatkhoei & Elgammal 2022)"),
    hypothesis=(f"over configurations, the mean log ratio of generated to real power above "
                f"{CUTOFF:g} x Nyquist, relative to the same below it, is below 0 by more than "
                "the margin (log 0.9: high frequencies more than 10 % weaker)."),
    direction="less", metric="log(1 - hf_deficit) - log(1 - lf_deficit), configuration means",
    cells=("*",),
    test=("one-sample t over configuration means (n = configurations) below -log(1/0.9); "
          "does not hold when the mean is shown above it (inside the margin or positive)."),
    family=QUALITY, sesoi=math.log(1 / 0.8), margin=math.log(1 / 0.9),
    holds_at=-math.log(1 / 0.9), fails_at=-math.log(1 / 0.9),
    preconditions=(QUALITY_FLOOR, NOT_COPYING,
                   Precondition("low_frequencies", f"every configuration's power below the "
                                f"cut-off within a factor {LF_FACTOR:g} of the real images' "
                                "(a generator that has not learned the low frequencies cannot "
                                "show missing high ones)", LF_FACTOR),
                   Precondition("configurations", "at least 3 configurations with spectra", 3)),
    studies=("table1", "table3", "seeds", "runs"),
    transfer="other image sizes (the cut-off is relative to Nyquist) and trained-to-convergence GANs"),
    reads=lambda i: i.all_trials(), simulate=lambda truth, rng, seeds: _sim_hf(truth, rng, seeds))
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
    test = decide.one_sample(list(means.values()), p.direction, p.holds_at, p.fails_at)
    untestable = ""
    if len(groups) < need:
        untestable = f"configurations: {len(groups)} with spectra (need {need:g})"
    elif bad := [g for g, v in lf.items()
                 if abs(v) > math.log(p.precondition("low_frequencies").threshold)]:
        untestable = (f"low_frequencies ({p.precondition('low_frequencies').text}): "
                      + ", ".join(f"{g} low-frequency power x{math.exp(lf[g]):.2f}" for g in bad))
    else:
        untestable = (quality_floor(done, list(groups), p)
                      or not_copying(done, list(groups), p))
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
    key="best_fid_best_recall", version=3,
    statement=("The best-FID configuration is also the most diverse (highest recall): FID "
               "alone ranks diversity"),
    hypothesis=(f"the lowest-FID configuration's mean recall is not lower than any other's by "
                f"{RECALL_MARGIN:g} or more (non-inferiority)."),
    direction="greater", metric="recall per seed (k = 5, equal real and generated sets)",
    cells=("*",),
    test=(f"one-sided Welch t of recall(best) - recall(other) > -{RECALL_MARGIN:g} against each "
          "other configuration, holds when all reject (intersection-union); does not hold when "
          f"some configuration's recall is shown higher by more than {RECALL_MARGIN:g} "
          "(non-inferiority rejects at the margin; Bonferroni over configurations)."),
    family=QUALITY, sesoi=RECALL_MARGIN, margin=RECALL_MARGIN, holds_at=-RECALL_MARGIN,
    fails_at=-RECALL_MARGIN,
    preconditions=(QUALITY_FLOOR, NOT_COPYING, Precondition("equal_sets", "precision/recall computed on as "
                                               "many real as generated images", 1.0),
                   Precondition("configurations", "at least 2 configurations with FID and "
                                "recall", 2)),
    studies=("table1", "seeds", "runs"), transfer="other feature extractors than Inception"),
    reads=lambda i: i.first("table1", "runs"),
    simulate=lambda truth, rng, seeds: _sim_recall(truth, rng, seeds))
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
                          "greater", p.holds_at, p.fails_at) for g in both if g != best]
    test = decide.intersection_union(parts)
    done = completed(trials)
    untestable = (quality_floor(trials, both, p) or not_copying(trials, both, p)
                  or equal_sets(done))
    top = max(both, key=lambda g: rec[g].mean)
    ev = (f"lowest FID: {best} ({fmt_ci(fid[best], 1)}), recall {fmt_ci(rec[best], 3)}; highest "
          f"recall: {top} ({fmt_ci(rec[top], 3)}, FID {fmt_ci(fid[top], 1)})")
    details = ", ".join(f"{g}: FID {fmt_ci(fid[g], 1)}, recall {fmt_ci(rec[g], 3)}" for g in both)
    return Finding(ev, describe(trials), details, test=test, untestable=untestable, frame=trials)


# --------------------------------------------------------------------------- simulators
def _sim_copy(truth: str, rng: np.random.Generator, seeds: int) -> pd.DataFrame:
    # null: copies at the bound (0.10); effect: as many as fresh data give (0.05)
    q = COPY_QUANTILE if truth == "effect" else COPY_QUANTILE + COPY_MARGIN
    return simulate.finish(simulate.table1_study(rng, seeds, copy_rate=q), truth, rng)


def _sim_hf(truth: str, rng: np.random.Generator, seeds: int) -> pd.DataFrame:
    h = -math.log(1 / 0.8) if truth == "effect" else -math.log(1 / 0.9)
    df = simulate.table1_study(rng, seeds, hf=dict.fromkeys(simulate.CELLS, h))
    return simulate.finish(df, truth, rng)


def _sim_recall(truth: str, rng: np.random.Generator, seeds: int) -> pd.DataFrame:
    # a clear best-FID configuration; null: its recall below another's by exactly the margin
    recall = {"adas-elu": 0.3 + (RECALL_MARGIN if truth != "effect" else 0.0)}
    df = simulate.table1_study(rng, seeds, fid={"adas-elu-ttur": -1.0}, recall=recall)
    return simulate.finish(df, truth, rng)


def _seed(row: pd.Series) -> str:
    """" seed N" for a run's row with a seed, so that per-run details say which run."""
    try:
        seed = float(row.get("seed"))
    except (TypeError, ValueError):
        return ""
    return f" seed {int(seed)}" if math.isfinite(seed) else ""
