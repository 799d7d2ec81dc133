"""The paper's Table I claims: AdaS beats Adam, ELU + TTUR + AdaS is best, and the mean D loss
correlates inversely with FID; each decided on log FID over seeds once every compared
configuration is past its early low-loss phase T0."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sstats

from xraygan import paper
from xraygan.trials import completed

from . import decide
from .engine import (
    ALPHA,
    FID_MARGIN,
    FID_SESOI,
    NOT_COPYING,
    Finding,
    cell_values,
    describe,
    not_copying,
    num,
    register_claim,
)
from .protocol import ClaimProtocol, Precondition
from .stats import effect, fmt_ci, fmt_effect, mean_ci

PAST_T0_SHARE = 0.5  # a cell is past T0 when more than this share of its seeds left T0
T0_MEASURED_AT = (32, 32)  # (image size, width) of the quick scale, where these lengths were measured

# Run lengths measured too short for every Table I configuration to leave T0 at 32 px, width
# 32 (criterion A above): batch size -> (iterations needed, the evidence).
T0_MIN_STEPS = {
    32: (2500, "at batch 32, adam-elu seed 2 stays in T0 through a 2000-iteration run and leaves "
         "it at 1785 of 2500 (seeds 0, 1: 1405 and 1390 of 2000)"),
    64: (1501, "at batch 64, Adam's D wins throughout 1500 iterations"),
}


def t0_shortfall(image_size: object, features: object, batch_size: object, steps: object) -> str:
    """Why runs of this size cannot take every Table I configuration past T0 (measured at
    the quick scale's 32 px and width 32), or '' when nothing measured says so."""
    try:
        size, width, batch, n = int(image_size), int(features), int(batch_size), int(steps)
    except (TypeError, ValueError):
        return ""
    if (size, width) != T0_MEASURED_AT or batch not in T0_MIN_STEPS:
        return ""
    need, why = T0_MIN_STEPS[batch]
    if n >= need:
        return ""
    return (f"untestable at this scale ({n} iterations of batch {batch}, {size} px): {why}; "
            f"{need} iterations would not fit the quick scale's 25-minute budget "
            "(ablations/scale.py, docs/claims.md)")



def log_values(df: pd.DataFrame, group: str, column: str = "fid") -> np.ndarray:
    v = cell_values(df, group, column)
    v = v[np.isfinite(v)]
    return np.log(np.clip(v, 1e-9, None))


def past_t0(df: pd.DataFrame, cells: Sequence[str], p: ClaimProtocol) -> str:
    """'' when every cell left T0 in more than the protocol's share of its seeds; else the
    failed precondition, named, with each failing cell's count."""
    pre = p.precondition("past_t0")
    cols = df.reindex(columns=["image_size", "g_features", "batch_size", "config_steps", "steps"])
    length = cols["config_steps"].where(cols["config_steps"].fillna(0) > 0, cols["steps"])
    sizes = set(zip(cols["image_size"], cols["g_features"], cols["batch_size"], length,
                    strict=True))
    for size in sizes:
        if why := t0_shortfall(*size):
            return f"past_t0 ({pre.text}): {why}"
    bad = []
    for g in cells:
        t0 = cell_values(df, g, "t0")
        n = len(cell_values(df, g, "fid")) if not len(t0) else len(t0)
        left = int(np.isfinite(t0).sum())
        if n == 0 or left <= pre.threshold * n:
            bad.append(f"{g} left T0 in {left} of {n} seeds")
    return f"past_t0 ({pre.text}): " + "; ".join(bad) if bad else ""


def preconditions_met(df: pd.DataFrame, cells: Sequence[str], p: ClaimProtocol) -> str:
    """The first failed precondition among past T0 and not copying (those the protocol has)."""
    keys = {q.key for q in p.preconditions}
    for key, check in (("past_t0", lambda: past_t0(df, cells, p)),
                       ("not_copying", lambda: not_copying(df, cells))):
        if key in keys and (why := check()):
            return why
    return ""


PAST_T0 = Precondition("past_t0", f"each compared configuration leaves T0 (finite t0) in more "
                       f"than {PAST_T0_SHARE:.0%} of its seeds: a D loss near 0 means G has not "
                       "started learning, and its FID measures the start of training",
                       PAST_T0_SHARE)


def _log_fid_rule(groups: Sequence[str]) -> str:
    return ("log FID per seed; effect = mean log FID difference (log(0.8) = 20 % lower)"
            if groups else "log FID")


# --------------------------------------------------------------------------- Table I claims
TABLE1 = "table1"


@register_claim(ClaimProtocol(
    key="adas_beats_adam", version=2,
    statement=(f"AdaS beats Adam (Table I: FID {num(paper.TABLE1['adas-elu'].fid)} vs "
               f"{num(paper.TABLE1['adam-elu'].fid)} with ELU, about half)"),
    hypothesis="mean log FID of adas-elu is below adam-elu's.", direction="less",
    metric=_log_fid_rule(["adas-elu"]), cells=("adas-elu", "adam-elu"),
    test=("one-sided Welch t on log FID over seeds (adas-elu - adam-elu < 0); does not hold on "
          "a significant opposite effect or TOST equivalence within the margin."),
    family=TABLE1, alpha=ALPHA, sesoi=FID_SESOI, margin=FID_MARGIN, preconditions=(PAST_T0, NOT_COPYING),
    studies=("table1",), transfer="other learning rates (one default per optimizer; Lucic et "
    "al. 2018: equal tuning budgets are needed for an optimizer ranking)"),
    reads=lambda i: i.first("table1"))
def adas_beats_adam(table1: pd.DataFrame | None, p: ClaimProtocol) -> Finding:
    if table1 is None or table1.empty:
        return Finding("no table1 study")
    a, b = p.cells
    ca, cb = mean_ci(cell_values(table1, a, "fid")), mean_ci(cell_values(table1, b, "fid"))
    if ca.n == 0 or cb.n == 0:
        return Finding(f"no FID for {a} and {b} (not computed or not completed)",
                       describe(table1), frame=table1)
    test = decide.welch(log_values(table1, a), log_values(table1, b), p.direction, p.margin)
    ev = (f"ours: FID {a} {fmt_ci(ca, 1)} (n={ca.n}) vs {b} {fmt_ci(cb, 1)} (n={cb.n}); "
          f"log-FID difference {num(test.estimate, 3)} [{num(test.low, 3)}, {num(test.high, 3)}] "
          f"(ratio {num(math.exp(test.estimate), 2) if math.isfinite(test.estimate) else '—'}). "
          f"Paper (64 px, full length, n=1 each): {num(paper.TABLE1[a].fid)} vs "
          f"{num(paper.TABLE1[b].fid)}")
    details = "Effect (FID): " + fmt_effect(
        effect(cell_values(table1, a, "fid"), cell_values(table1, b, "fid"), power=False),
        names=("AdaS", "Adam"), observed_power=False)
    return Finding(ev, describe(table1), details, test=test,
                   untestable=preconditions_met(table1, p.cells, p), frame=table1)


@register_claim(ClaimProtocol(
    key="elu_ttur_adas_best", version=2,
    statement="ELU + TTUR + AdaS is the best configuration (lowest FID in Table I)",
    hypothesis="mean log FID of adas-elu-ttur is below each other Table I cell's.",
    direction="less", metric=_log_fid_rule(["x"]),
    cells=(paper.BEST_CELL, *[g for g in paper.TABLE1 if g != paper.BEST_CELL]),
    test=("intersection-union: one-sided Welch t on log FID of adas-elu-ttur against each other "
          "cell, holds when all reject (p = the largest); does not hold when some cell is "
          "significantly lower or equivalent within the margin (Bonferroni over the cells)."),
    family=TABLE1, alpha=ALPHA, sesoi=FID_SESOI, margin=FID_MARGIN, preconditions=(PAST_T0, NOT_COPYING),
    studies=("table1",), transfer="other learning rates and TTUR ratios"),
    reads=lambda i: i.first("table1"))
def elu_ttur_adas_best(table1: pd.DataFrame | None, p: ClaimProtocol) -> Finding:
    if table1 is None or table1.empty:
        return Finding("no table1 study")
    best, others = p.cells[0], [g for g in p.cells[1:] if len(cell_values(table1, g, "fid"))]
    if not len(cell_values(table1, best, "fid")) or not others:
        return Finding(f"no FID for {best} or the other cells", describe(table1), frame=table1)
    parts = {g: decide.welch(log_values(table1, best), log_values(table1, g), p.direction,
                             p.margin) for g in others}
    test = decide.intersection_union(list(parts.values()))
    cis = {g: mean_ci(cell_values(table1, g, "fid")) for g in (best, *others)}
    ranked = sorted(cis, key=lambda g: cis[g].mean)
    ev = ("ours, low to high: " + ", ".join(f"{g} {fmt_ci(cis[g], 1)} (n={cis[g].n})"
                                             for g in ranked)
          + f". Paper (64 px, n=1): {best} {num(paper.TABLE1[best].fid)}")
    details = "; ".join(f"{best} vs {g}: log-FID difference {num(t.estimate, 3)} "
                        f"[{num(t.low, 3)}, {num(t.high, 3)}], one-sided p {t.p_holds:.3g}"
                        for g, t in parts.items())
    return Finding(ev, describe(table1), details, test=test,
                   untestable=preconditions_met(table1, (best, *others), p), frame=table1)


def paper_dloss_correlation() -> tuple[float, float, int]:
    """Pearson r and p of mean D loss against FID over the paper's own four Table I rows."""
    mean = [r.d_loss_mean for r in paper.TABLE1.values()]
    fid = [r.fid for r in paper.TABLE1.values()]
    r, p = sstats.pearsonr(mean, fid)
    return float(r), float(p), len(mean)


def configuration_means(df: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """One row per configuration: the means over its seeds of ``x`` and ``y`` (runs of one
    configuration share its effect: they are not independent units)."""
    done = completed(df)
    if not {x, y} <= set(done.columns):
        return pd.DataFrame(columns=["group", x, y, "n"])
    pair = done[["group", x, y]].dropna()
    g = pair.groupby("group", sort=False)
    return pd.DataFrame({x: g[x].mean().astype(float), y: g[y].mean().astype(float),
                         "n": g.size()}).reset_index()


@register_claim(ClaimProtocol(
    key="dloss_inverse_fid", version=2,
    statement=("The mean D loss correlates inversely with FID, so D's loss can serve as an "
               "assessment metric (Fig. 5)"),
    hypothesis="over configurations, Pearson r of mean D loss and mean FID is below 0.",
    direction="less", metric="configuration means of d_loss_mean and FID (n = configurations)",
    cells=("*",),
    test=("one-sided test of Pearson r over configuration means (t, n - 2 df); 95 % interval "
          "by Fisher z at n = configurations, and a cluster bootstrap of the runs' r over "
          "configurations beside it; does not hold on a significant positive r or TOST "
          "(Fisher z) within the margin."),
    family=TABLE1, alpha=ALPHA, sesoi=0.5, margin=0.3,
    preconditions=(PAST_T0, NOT_COPYING, Precondition("configurations", "at least 3 configurations with "
                                         "FID and D loss", 3)),
    studies=("table1", "runs"), transfer="configurations outside the study's grid"),
    reads=lambda i: i.first("table1", "runs"))
def dloss_inverse_fid(runs: pd.DataFrame | None, p: ClaimProtocol) -> Finding:
    pr, pp, pn = paper_dloss_correlation()
    paper_ev = f"paper's own Table I: r = {pr:.3f}, p = {pp:.3f}, n = {pn} configurations"
    if runs is None or runs.empty:
        return Finding(f"no runs; {paper_ev}")
    means = configuration_means(runs, "d_loss_mean", "fid")
    k = len(means)
    if k < p.precondition("configurations").threshold:
        return Finding(f"{k} configurations with FID and D loss; {paper_ev}", describe(runs),
                       untestable=f"configurations: {k} configurations with FID and D loss "
                       f"(need {p.precondition('configurations').threshold:g})", frame=runs)
    test = decide.pearson(means["d_loss_mean"], means["fid"], p.direction, p.margin)
    done = completed(runs)
    pair = done[["group", "d_loss_mean", "fid"]].dropna()
    lo, hi = decide.cluster_bootstrap_r(pair["d_loss_mean"], pair["fid"], pair["group"])
    pooled = (np.corrcoef(pair["d_loss_mean"], pair["fid"])[0, 1] if len(pair) >= 3
              and np.ptp(pair["fid"]) > 0 and np.ptp(pair["d_loss_mean"]) > 0 else math.nan)
    ev = (f"ours: r = {num(test.estimate, 3)} over {k} configuration means, 95 % interval "
          f"[{num(test.low, 3)}, {num(test.high, 3)}] (Fisher z); runs pooled r = "
          f"{num(pooled, 3)} (n = {len(pair)} runs, not independent), cluster bootstrap over "
          f"configurations [{num(lo, 3)}, {num(hi, 3)}]; {paper_ev}")
    details = "; ".join(f"{r['group']}: D loss {num(r['d_loss_mean'], 3)}, FID "
                        f"{num(r['fid'], 1)} (n={r['n']})" for _, r in means.iterrows())
    return Finding(ev, describe(runs), details, test=test,
                   untestable=preconditions_met(runs, list(means["group"]), p), frame=runs)
