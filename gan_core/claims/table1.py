"""The paper's Table I claims: AdaS beats Adam, ELU + TTUR + AdaS is best, and the mean D loss
correlates inversely with FID; each decided on log FID over the seeds that are past their
early low-loss phase T0, by the T0 rule the claim registered."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sstats

from xraygan import paper
from xraygan.metrics.dynamics import (
    T0_ENTER_LEVEL,
    T0_LEAVE_LEVEL,
    T0_MAX_SHARE,
    T0_MIN_STEPS,
    T0_RULE_KEYS,
    T0_WINDOW,
)
from xraygan.trials import completed

from . import decide, simulate
from .engine import (
    ALPHA,
    FID_MARGIN,
    FID_SESOI,
    MIN_SEEDS,
    NOT_COPYING,
    SEEDS,
    Finding,
    cell_values,
    describe,
    not_copying,
    num,
    register_claim,
    seeds_short,
)
from .protocol import ClaimProtocol, Precondition
from .stats import effect, fmt_ci, fmt_effect, mean_ci

# T0 is decided per run from its own log (xraygan.metrics.dynamics.t0_phase) when its metrics
# are computed; the trial records the thresholds it used (T0_RULE_KEYS) and a claim compares
# them with its registered ones: a run whose T0 another rule decided makes the claim
# untestable (named); it is never silently re-read.
T0_PARAMS = (("t0_enter_level", T0_ENTER_LEVEL), ("t0_leave_level", T0_LEAVE_LEVEL),
             ("t0_max_share", T0_MAX_SHARE), ("t0_min_steps", float(T0_MIN_STEPS)),
             ("t0_window", float(T0_WINDOW)))
if tuple(k for k, _ in T0_PARAMS) != T0_RULE_KEYS:  # pragma: no cover - a wiring error
    raise ImportError("table1.T0_PARAMS must name xraygan.metrics.dynamics.T0_RULE_KEYS")


def past_t0_mask(df: pd.DataFrame, cells: Sequence[str],
                 p: ClaimProtocol) -> tuple[str, dict[str, np.ndarray], str]:
    """(failed precondition or '', per cell a mask over its completed runs of those past T0,
    T0 in words per cell). A run is past T0 when its trial's ``t0_past`` is 1 and its T0 was
    decided with the protocol's registered thresholds (params ``t0_*``)."""
    pre = p.precondition("past_t0")
    if "t0_past" not in df.columns:
        return (f"past_t0 ({pre.text}): the trials carry no per-run T0 decision (t0_past): "
                "their metrics predate the T0 rule; recompute them (xraygan metrics RUN)", {}, "")
    masks, words, bad = {}, [], []
    for g in cells:
        past = cell_values(df, g, "t0_past")
        for key in T0_RULE_KEYS:
            used = cell_values(df, g, key) if key in df.columns else np.full(len(past), np.nan)
            want = p.param(key)
            off = np.isfinite(past) & ~np.isclose(used, want)
            if off.any():
                bad.append(f"{g}: {int(off.sum())} run(s) decided T0 with {key} "
                           f"{num(float(used[off][0]), 3)}, the registered rule says {want:g}")
        ok = past == 1
        masks[g] = ok
        ci = mean_ci(cell_values(df, g, "t0")[ok])
        words.append(f"{g} past T0 in {int(ok.sum())} of {len(past)} seeds"
                     + (f" (T0 mean {num(ci.mean, 0)}, n = {ci.n})" if ci.n else ""))
    if bad:
        return ("past_t0 (T0 decided by another rule than the registered one): "
                + "; ".join(bad), {}, "")
    return "", masks, "; ".join(words)


def usable(df: pd.DataFrame, cells: Sequence[str], p: ClaimProtocol, column: str = "fid",
           ) -> tuple[str, dict[str, np.ndarray], str, str, str]:
    """(failed precondition or '', per cell the finite values of ``column`` of its completed
    runs past T0, T0 in words, values per cell, runs left out). Preconditions in order:
    T0 decided by the registered rule, enough seeds past T0 per cell, not copying."""
    why, masks, t0_words = past_t0_mask(df, cells, p)
    if why:
        return why, {}, "", "", ""
    short = seeds_short(df, cells, column, p)[0]
    fewer, counts, out = seeds_short(df, cells, column, p, masks)
    if fewer and not short:  # enough completed seeds, too few of them past T0
        need = int(p.precondition("past_t0").threshold)
        short = (f"past_t0 ({p.precondition('past_t0').text}): fewer than {need} seeds past "
                 f"T0 left in a cell: {t0_words}")
    vals = {}
    for g in cells:
        v = cell_values(df, g, column)
        vals[g] = v[masks[g] & np.isfinite(v)]
    if not short and any(q.key == "not_copying" for q in p.preconditions):
        short = not_copying(df, cells, p)
    return short, vals, t0_words, counts, out


def logs(v: np.ndarray) -> np.ndarray:
    return np.log(np.clip(v, 1e-9, None))


PAST_T0 = Precondition(
    "past_t0", f"every compared run past T0 by the registered rule (xraygan.metrics.dynamics."
    f"t0_phase: its smoothed D loss entered the low phase <= {T0_ENTER_LEVEL:g} and left it "
    f"for >= {T0_LEAVE_LEVEL:g}, not falling back for 2 x {T0_WINDOW} logged points, by "
    f"{T0_MAX_SHARE:.0%} of the run; a run without a low phase at least {T0_MIN_STEPS:,} "
    "iterations long); runs not past T0 are left out of the test and counted, and each cell "
    f"keeps at least {MIN_SEEDS}: a D loss near 0 means G has not started learning, and its "
    "FID measures the start of training", MIN_SEEDS)
PRECONDITIONS = (SEEDS, PAST_T0, NOT_COPYING)
FID_RULE = "log FID per seed of the runs past T0; effect = mean log FID difference"


# --------------------------------------------------------------------------- simulators
def _sim_adas(truth: str, rng: np.random.Generator, seeds: int) -> pd.DataFrame:
    # null: AdaS lower by exactly the margin (the boundary of "by more than the margin")
    d = -FID_SESOI if truth == "effect" else -FID_MARGIN
    if truth == "equal":
        d = 0.0
    df = simulate.table1_study(rng, seeds, fid={"adas-elu": d})
    return simulate.finish(df, truth, rng, t0_cell="adam-elu")


def _sim_best(truth: str, rng: np.random.Generator, seeds: int) -> pd.DataFrame:
    best = paper.BEST_CELL
    others = [c for c in simulate.CELLS if c != best]
    # least favourable null: better than two cells by far, at the margin's boundary to one
    fid = {c: (FID_SESOI if truth == "effect" else 1.0) for c in others}
    if truth != "effect":
        fid[others[0]] = FID_MARGIN
    df = simulate.table1_study(rng, seeds, fid=fid)
    return simulate.finish(df, truth, rng, t0_cell=others[0])


def _sim_corr(truth: str, rng: np.random.Generator, seeds: int) -> pd.DataFrame:
    # configuration effects on FID and D loss: r = 0 under the null, -sesoi (0.5) under the
    # effect, between configurations; no link within a configuration
    cells = simulate.CELLS
    z1, z2 = rng.normal(0, 1, len(cells)), rng.normal(0, 1, len(cells))
    rho = -0.5 if truth == "effect" else 0.0
    z2 = rho * z1 + math.sqrt(1 - rho**2) * z2
    df = simulate.table1_study(rng, seeds, cells=cells,
                               fid={c: 0.3 * v for c, v in zip(cells, z1, strict=True)},
                               dloss={c: 1.0 + 0.4 * v for c, v in zip(cells, z2, strict=True)})
    return simulate.finish(df, truth, rng, t0_cell="adam-elu")


# --------------------------------------------------------------------------- Table I claims
TABLE1 = "table1"


@register_claim(ClaimProtocol(
    key="adas_beats_adam", version=3,
    statement=(f"AdaS beats Adam: lower FID, by more than 10 % (Table I, ELU: FID "
               f"{num(paper.TABLE1['adas-elu'].fid)} vs {num(paper.TABLE1['adam-elu'].fid)})"),
    hypothesis=("mean log FID of adas-elu is below adam-elu's by more than the margin "
                "(log 1.1: FID more than 10 % lower)."), direction="less",
    metric=FID_RULE, cells=("adas-elu", "adam-elu"),
    test=("one-sided Welch t on log FID over the seeds past T0 (adas-elu - adam-elu < "
          "-log 1.1); does not hold when the difference is shown above -log 1.1 (inside the "
          "margin or opposite), one test at level alpha."),
    family=TABLE1, alpha=ALPHA, sesoi=FID_SESOI, margin=FID_MARGIN, holds_at=-FID_MARGIN,
    fails_at=-FID_MARGIN, preconditions=PRECONDITIONS,
    studies=("table1",), transfer="other learning rates (one default per optimizer; Lucic et "
    "al. 2018: equal tuning budgets are needed for an optimizer ranking)", params=T0_PARAMS),
    reads=lambda i: i.first("table1"), simulate=_sim_adas)
def adas_beats_adam(table1: pd.DataFrame | None, p: ClaimProtocol) -> Finding:
    if table1 is None or table1.empty:
        return Finding("no table1 study")
    a, b = p.cells
    paper_ev = (f"Paper (64 px, full length, n = 1 each): {num(paper.TABLE1[a].fid)} vs "
                f"{num(paper.TABLE1[b].fid)}")
    why, vals, t0, counts, out = usable(table1, p.cells, p)
    if why:
        return Finding(f"{t0 + '; ' if t0 else ''}runs used: {counts or '—'}"
                       + (f"; left out: {out}" if out else "") + f". {paper_ev}",
                       describe(table1), untestable=why, frame=table1, n_per_cell=counts,
                       excluded=out)
    ca, cb = mean_ci(vals[a]), mean_ci(vals[b])
    test = decide.welch(logs(vals[a]), logs(vals[b]), p.direction, p.holds_at, p.fails_at)
    ev = (f"ours: FID {a} {fmt_ci(ca, 1)} (n = {ca.n}) vs {b} {fmt_ci(cb, 1)} (n = {cb.n}); "
          f"log-FID difference {num(test.estimate, 3)} [{num(test.low, 3)}, {num(test.high, 3)}] "
          f"(ratio {num(math.exp(test.estimate), 2) if math.isfinite(test.estimate) else '—'}); "
          f"{t0}" + (f"; left out: {out}" if out else "") + f". {paper_ev}")
    details = "Effect (FID): " + fmt_effect(effect(vals[a], vals[b], power=False),
                                            names=("AdaS", "Adam"), observed_power=False)
    return Finding(ev, describe(table1), details, test=test, frame=table1, n_per_cell=counts,
                   excluded=out)


@register_claim(ClaimProtocol(
    key="elu_ttur_adas_best", version=3,
    statement=("ELU + TTUR + AdaS is the best configuration: lower FID than each other Table I "
               "configuration, by more than 10 %"),
    hypothesis=("mean log FID of adas-elu-ttur is below each other Table I cell's by more than "
                "the margin (log 1.1)."),
    direction="less", metric=FID_RULE,
    cells=(paper.BEST_CELL, *[g for g in paper.TABLE1 if g != paper.BEST_CELL]),
    test=("intersection-union: one-sided Welch t on log FID (seeds past T0) of adas-elu-ttur "
          "against each other cell beyond -log 1.1, holds when all reject (p = the largest); "
          "does not hold when some cell's difference is shown above -log 1.1 (Bonferroni over "
          "the cells). Every registered cell must be present."),
    family=TABLE1, alpha=ALPHA, sesoi=FID_SESOI, margin=FID_MARGIN, holds_at=-FID_MARGIN,
    fails_at=-FID_MARGIN, preconditions=PRECONDITIONS,
    studies=("table1",), transfer="other learning rates and TTUR ratios", params=T0_PARAMS),
    reads=lambda i: i.first("table1"), simulate=_sim_best)
def elu_ttur_adas_best(table1: pd.DataFrame | None, p: ClaimProtocol) -> Finding:
    if table1 is None or table1.empty:
        return Finding("no table1 study")
    best, others = p.cells[0], list(p.cells[1:])
    why, vals, t0, counts, out = usable(table1, p.cells, p)
    if why:
        return Finding(f"{t0 + '; ' if t0 else ''}runs used: {counts or '—'}"
                       + (f"; left out: {out}" if out else ""), describe(table1),
                       untestable=why, frame=table1, n_per_cell=counts, excluded=out)
    parts = {g: decide.welch(logs(vals[best]), logs(vals[g]), p.direction, p.holds_at,
                             p.fails_at) for g in others}
    test = decide.intersection_union(list(parts.values()))
    cis = {g: mean_ci(vals[g]) for g in p.cells}
    ranked = sorted(cis, key=lambda g: cis[g].mean)
    ev = ("ours, low to high: " + ", ".join(f"{g} {fmt_ci(cis[g], 1)} (n = {cis[g].n})"
                                             for g in ranked)
          + f"; {t0}" + (f"; left out: {out}" if out else "")
          + f". Paper (64 px, n = 1): {best} {num(paper.TABLE1[best].fid)}")
    details = "; ".join(f"{best} vs {g}: log-FID difference {num(t.estimate, 3)} "
                        f"[{num(t.low, 3)}, {num(t.high, 3)}], one-sided p {t.p_holds:.3g}"
                        for g, t in parts.items())
    return Finding(ev, describe(table1), details, test=test, frame=table1, n_per_cell=counts,
                   excluded=out)


def paper_dloss_correlation() -> tuple[float, float, int]:
    """Pearson r and p of mean D loss against FID over the paper's own four Table I rows."""
    mean = [r.d_loss_mean for r in paper.TABLE1.values()]
    fid = [r.fid for r in paper.TABLE1.values()]
    r, p = sstats.pearsonr(mean, fid)
    return float(r), float(p), len(mean)


def configuration_means(df: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """One row per configuration: the means over its completed seeds of ``x`` and ``y`` (runs
    of one configuration share its effect: they are not independent units)."""
    done = completed(df)
    if not {x, y} <= set(done.columns):
        return pd.DataFrame(columns=["group", x, y, "n"])
    pair = done[["group", x, y]].dropna()
    g = pair.groupby("group", sort=False)
    return pd.DataFrame({x: g[x].mean().astype(float), y: g[y].mean().astype(float),
                         "n": g.size()}).reset_index()


CORR_MARGIN = 0.3


@register_claim(ClaimProtocol(
    key="dloss_inverse_fid", version=3,
    statement=("The mean D loss correlates inversely with FID over configurations, so D's loss "
               "can serve as an assessment metric (Fig. 5)"),
    hypothesis="over configurations, Pearson r of mean D loss and mean FID is below 0.",
    direction="less",
    metric="configuration means (seeds past T0) of d_loss_mean and FID (n = configurations)",
    cells=("*",),
    test=("one-sided test of Pearson r over configuration means (t, n - 2 df), 95 % interval "
          f"by Fisher z at n = configurations; does not hold when r is shown above "
          f"-{CORR_MARGIN:g} (Fisher z): no inverse correlation as large as the margin, "
          "decided first."),
    family=TABLE1, alpha=ALPHA, sesoi=0.5, margin=CORR_MARGIN, holds_at=0.0,
    fails_at=-CORR_MARGIN,
    preconditions=(SEEDS, PAST_T0, NOT_COPYING, Precondition(
        "configurations", "at least 4 configurations with FID and D loss (Fisher z needs "
        "n > 3)", 4)),
    studies=("table1", "runs"), transfer="configurations outside the study's grid",
    params=T0_PARAMS),
    reads=lambda i: i.first("table1", "runs"), simulate=_sim_corr)
def dloss_inverse_fid(runs: pd.DataFrame | None, p: ClaimProtocol) -> Finding:
    pr, pp, pn = paper_dloss_correlation()
    paper_ev = f"paper's own Table I: r = {pr:.3f}, p = {pp:.3f}, n = {pn} configurations"
    if runs is None or runs.empty:
        return Finding(f"no runs; {paper_ev}")
    groups = [str(g) for g in dict.fromkeys(runs["group"])]
    why, masks, t0 = past_t0_mask(runs, groups, p)
    if why:
        return Finding(f"runs not decided on; {paper_ev}", describe(runs), untestable=why,
                       frame=runs)
    keep = np.zeros(len(runs), bool)
    done = (runs["status"] == "completed").to_numpy()
    for g, m in masks.items():
        idx = np.flatnonzero(done & (runs["group"].astype(str).to_numpy() == g))
        keep[idx[m]] = True
    past = runs[keep]
    means = configuration_means(past, "d_loss_mean", "fid")
    means = means[means["n"] >= MIN_SEEDS]
    k = len(means)
    left = len(runs) - int(keep.sum())
    out = f"{left} of {len(runs)} runs (not completed or not past T0)" if left else ""
    need = p.precondition("configurations").threshold
    if k < need:
        return Finding(f"{k} configurations with {MIN_SEEDS}+ seeds past T0 with FID and D "
                       f"loss; {t0}; {paper_ev}", describe(runs),
                       untestable=f"configurations: {k} configurations with {MIN_SEEDS} or more "
                       f"seeds past T0 with FID and D loss (need {need:g})", frame=runs,
                       excluded=out)
    if why := not_copying(past, list(means["group"]), p):
        return Finding(f"{k} configurations; {paper_ev}", describe(runs), untestable=why,
                       frame=runs, excluded=out)
    test = decide.pearson(means["d_loss_mean"], means["fid"], p.direction, p.holds_at,
                          p.fails_at)
    counts = ", ".join(f"{r['group']} {r['n']}" for _, r in means.iterrows())
    ev = (f"ours: r = {num(test.estimate, 3)} over {k} configuration means, 95 % interval "
          f"[{num(test.low, 3)}, {num(test.high, 3)}] (Fisher z, n = {k} configurations); "
          f"{t0}; {paper_ev}")
    details = "; ".join(f"{r['group']}: D loss {num(r['d_loss_mean'], 3)}, FID "
                        f"{num(r['fid'], 1)} (n = {r['n']} seeds)" for _, r in means.iterrows())
    return Finding(ev, describe(runs), details, test=test, frame=runs, n_per_cell=counts,
                   excluded=out)
