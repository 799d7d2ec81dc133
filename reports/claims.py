"""The paper's claims, each tested on our runs with a stated decision rule and a verdict:
"holds", "does not hold", or "inconclusive" (at this sample size, or without the data).

Rules are deliberately simple and explicit, so a reader can redo them from the tables:
  * comparisons of configurations use 95 % t intervals over seeds (reports.stats.mean_ci):
    disjoint intervals decide, overlapping ones or single runs do not;
  * correlations need p < 0.05 (scipy's test of Pearson r) at the stated n;
  * the growth law compares a power law and an exponential of xraygan.memory.fit (R^2, and
    the error extrapolating to the largest width);
  * thresholds taken from the paper (BN saving 1.2-7 %) or from the project
    (blockiness margin of ablations.compress_search) are named where used.

The registry: a claim is a function returning a :class:`Finding`, decorated with
``@register_claim(KEY, studies=(...), reads=...)``. The key is written once, there; ``studies``
names the study pages that show the claim (a study's StudySpec may list more), ``reads`` picks
its data from :class:`ClaimInputs`. :func:`evaluate_claims` runs every registered claim in
registration order; claim modules beyond this one are listed in :data:`CLAIM_MODULES` (a new
claim is one such module). Numbers in a claim's statement and its evidence go through one
formatter (:func:`num`), so the paper's "104.6" reads the same in both.
"""

from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sstats

from . import paper
from .load import completed
from .stats import (
    EFFECT_RULE,
    MeanCI,
    effect,
    fmt,
    fmt_ci,
    fmt_effect,
    intervals_overlap,
    mean_ci,
)
from .tables import MIN_WIDTHS, bn_savings_frame, growth_frame, markdown, table3_frame

HOLDS = "holds"
FAILS = "does not hold"
INCONCLUSIVE = "inconclusive"
ALPHA = 0.05
BLOCKY_SHARE = 0.75  # the paper: all 12 compressed cells failed; >= 3/4 blocky confirms it
CLEAN_SHARE = 0.25  # <= 1/4 blocky contradicts it
IN_RANGE_SHARE = 0.75  # BN saving: share of pairs inside the paper's range to confirm it


def _blockiness_margin() -> float:
    # The margin compress-search uses to call a generator free of blurry squares: one threshold
    # for the whole project.
    from xraygan.ablations.compress_search import BLOCKINESS_MARGIN

    return BLOCKINESS_MARGIN


@dataclass(frozen=True)
class Claim:
    key: str
    statement: str  # the paper's claim, in our words
    verdict: str  # HOLDS | FAILS | INCONCLUSIVE
    evidence: str  # markdown: our numbers (and the paper's), short
    rule: str  # the decision rule applied
    data: str  # what it was tested on: study, scale, n
    details: str = ""  # every number behind the evidence (long lists)


@dataclass(frozen=True)
class Finding:
    """What a claim function returns: a :class:`Claim` without its key (the registry adds it)."""

    statement: str
    verdict: str
    evidence: str
    rule: str
    data: str
    details: str = ""


def num(value: float, digits: int = 1) -> str:
    """The one formatter of numbers quoted in claims (statement and evidence alike)."""
    return fmt(float(value), digits)


# --------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class ClaimInputs:
    """The data claims read: trials frames keyed by study registry name (table1, table3,
    batchnorm, fmaps, seeds, runs, ...) and a memory frame."""

    frames: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    memory: pd.DataFrame | None = None

    def first(self, *kinds: str) -> pd.DataFrame | None:
        """The frame of the first of ``kinds`` present."""
        for k in kinds:
            if self.frames.get(k) is not None:
                return self.frames[k]
        return None

    def all_trials(self) -> pd.DataFrame | None:
        """Every study's trials in one frame (claims about all runs, e.g. memorization)."""
        parts = [f for f in self.frames.values() if f is not None and not f.empty]
        return pd.concat(parts, ignore_index=True) if parts else None


@dataclass(frozen=True)
class ClaimSpec:
    key: str
    evaluate: Callable[[ClaimInputs], Claim]
    studies: tuple[str, ...]  # study kinds whose report pages show this claim


CLAIMS: dict[str, ClaimSpec] = {}  # in registration order: the order of the report
CLAIM_MODULES = ("xraygan.reports.claims_quality",)  # modules that register more claims


def register_claim(key: str, *, studies: Sequence[str] = (),
                   reads: Callable[[ClaimInputs], Any]) -> Callable[[Callable[..., Finding]], Callable[..., Claim]]:  # fmt: skip
    """Register a claim under ``key``: the decorated function takes what ``reads`` picks from
    the inputs and returns a :class:`Finding`; called directly it returns the :class:`Claim`."""

    def decorator(fn: Callable[..., Finding]) -> Callable[..., Claim]:
        if key in CLAIMS:
            raise KeyError(f"claim {key!r} is registered twice")

        @functools.wraps(fn)
        def claim(*args: Any, **kwargs: Any) -> Claim:
            f = fn(*args, **kwargs)
            return Claim(key, f.statement, f.verdict, f.evidence, f.rule, f.data, f.details)

        claim.key = key  # type: ignore[attr-defined]
        CLAIMS[key] = ClaimSpec(key, lambda inputs: claim(reads(inputs)), tuple(studies))
        return claim

    return decorator


def _load_claim_modules() -> None:
    for name in CLAIM_MODULES:
        importlib.import_module(name)


def claims_for_study(kind: str, declared: Sequence[str] = ()) -> tuple[str, ...]:
    """Keys of the claims a study's page shows: its StudySpec's list plus the claims that name
    the study, in registration order."""
    _load_claim_modules()
    want = set(declared)
    return tuple(k for k, c in CLAIMS.items() if k in want or kind in c.studies)


def describe(df: pd.DataFrame) -> str:
    """Data and scale of a trials frame, in one line."""
    if df is None or df.empty:
        return "no data"
    done = completed(df)

    from .protocol import natural_values

    def vals(col: str) -> str:
        if col not in df.columns:
            return "?"
        return "/".join(natural_values(df[col])) or "?"

    return (f"study {vals('study')} (scale {vals('scale')}), data {vals('data_source')}, "
            f"{vals('image_size')} px, {vals('steps')} steps, batch {vals('batch_size')}; "
            f"{len(done)} completed of {len(df)} trials")


def lower_is_better(a: MeanCI, b: MeanCI) -> str:
    """HOLDS when a's interval lies wholly below b's, FAILS when wholly above, INCONCLUSIVE
    when they overlap or either side has fewer than two runs (one run has no interval)."""
    if a.n < 2 or b.n < 2 or not (math.isfinite(a.half) and math.isfinite(b.half)):
        return INCONCLUSIVE
    if intervals_overlap(a, b):
        return INCONCLUSIVE
    return HOLDS if a.high < b.low else FAILS


def effect_verdict(eff) -> str:
    """Lower is better: HOLDS when the 95 % interval of mean(a) - mean(b) over seeds lies wholly
    below 0, FAILS when wholly above, INCONCLUSIVE when it contains 0 or has no interval (n < 2).
    This is the two-sample (Welch) test the seeds-needed figure is computed for; two disjoint
    per-group intervals, the rule before, is a much stricter test (about p < 0.005)."""
    if not eff.resolved:
        return INCONCLUSIVE
    return HOLDS if eff.diff < 0 else FAILS


def _group_ci(df: pd.DataFrame, group: str, column: str) -> MeanCI:
    done = completed(df)
    if column not in done.columns:
        return MeanCI(math.nan, math.nan, 0)
    return mean_ci(done.loc[done["group"] == group, column].to_numpy(dtype=float))


def _group_values(df: pd.DataFrame, group: str, column: str) -> np.ndarray:
    # per-seed values of one cell, for reports.stats.effect (H8)
    done = completed(df)
    if column not in done.columns:
        return np.zeros(0)
    return done.loc[done["group"] == group, column].to_numpy(dtype=float)


# --------------------------------------------------------------------------- Table I claims
@register_claim("adas_beats_adam", studies=("table1",), reads=lambda i: i.first("table1"))
def adas_beats_adam(table1: pd.DataFrame | None) -> Finding:
    pa, pb = paper.TABLE1["adas-elu"].fid, paper.TABLE1["adam-elu"].fid
    statement = f"AdaS beats Adam (Table I: FID {num(pa)} vs {num(pb)} with ELU, about half)"
    rule = ("FID of adas-elu vs adam-elu over seeds: holds if the 95 % interval of the "
            "difference of means (AdaS - Adam; Welch t, see Intervals) lies wholly below 0, does "
            "not hold if wholly above, inconclusive if it contains 0 or n < 2 per cell")
    if table1 is None or table1.empty:
        return Finding(statement, INCONCLUSIVE, "no table1 study", rule, "no data")
    a, b = _group_ci(table1, "adas-elu", "fid"), _group_ci(table1, "adam-elu", "fid")
    if a.n == 0 or b.n == 0:
        ev = "no FID for adas-elu and adam-elu (not computed or not completed)"
        return Finding(statement, INCONCLUSIVE, ev, rule, describe(table1))
    eff = effect(_group_values(table1, "adas-elu", "fid"), _group_values(table1, "adam-elu", "fid"))
    verdict = effect_verdict(eff)
    ev = (f"FID AdaS {fmt_ci(a, 1)} (n={a.n}) vs Adam {fmt_ci(b, 1)} (n={b.n}); paper "
          f"{num(pa)} vs {num(pb)} (n=1 each)")
    if verdict == INCONCLUSIVE and a.n >= 1 and b.n >= 1:
        ev += f"; direction: {'AdaS lower' if a.mean < b.mean else 'Adam lower'}"
    details = f"Effect (FID): {fmt_effect(eff, names=('AdaS', 'Adam'))}. Intervals: {EFFECT_RULE}"
    return Finding(statement, verdict, ev, rule, describe(table1), details)


@register_claim("elu_ttur_adas_best", studies=("table1",), reads=lambda i: i.first("table1"))
def elu_ttur_adas_best(table1: pd.DataFrame | None) -> Finding:
    statement = "ELU + TTUR + AdaS is the best configuration (lowest FID in Table I)"
    rule = ("FID of adas-elu-ttur against every other Table I cell over seeds: holds if the 95 % "
            "interval of the difference of means (adas-elu-ttur - other; Welch t) lies wholly "
            "below 0 for every other cell, does not hold if it lies wholly above 0 for some "
            "cell, inconclusive otherwise (an interval containing 0, or n < 2)")
    if table1 is None or table1.empty:
        return Finding(statement, INCONCLUSIVE, "no table1 study", rule,
                     "no data")
    best = _group_ci(table1, paper.BEST_CELL, "fid")
    others = {g: _group_ci(table1, g, "fid") for g in paper.TABLE1 if g != paper.BEST_CELL}
    others = {g: c for g, c in others.items() if c.n}
    if best.n == 0 or not others:
        return Finding(statement, INCONCLUSIVE,
                     "no FID for adas-elu-ttur or the other cells", rule, describe(table1))
    best_values = _group_values(table1, paper.BEST_CELL, "fid")
    effects = {g: effect(best_values, _group_values(table1, g, "fid")) for g in others}
    results = {g: effect_verdict(e) for g, e in effects.items()}
    if all(r == HOLDS for r in results.values()):
        verdict = HOLDS
    elif any(r == FAILS for r in results.values()):
        verdict = FAILS
    else:
        verdict = INCONCLUSIVE
    ranked = sorted([(paper.BEST_CELL, best), *others.items()], key=lambda kv: kv[1].mean)
    ev = ("FID (ours, low to high): " + ", ".join(f"{g} {fmt_ci(c, 1)} (n={c.n})" for g, c in ranked)
          + f"; lowest mean: {ranked[0][0]}; paper: {paper.BEST_CELL} "
          f"{num(paper.TABLE1[paper.BEST_CELL].fid)}")
    details = "Effects (FID): " + "; ".join(
        fmt_effect(effects[g], names=(paper.BEST_CELL, g)) for g in others)
    return Finding(statement, verdict, ev, rule, describe(table1), details)


def paper_dloss_correlation() -> tuple[float, float, int]:
    """Pearson r and p of mean D loss against FID over the paper's own four Table I rows."""
    mean = [r.d_loss_mean for r in paper.TABLE1.values()]
    fid = [r.fid for r in paper.TABLE1.values()]
    r, p = sstats.pearsonr(mean, fid)
    return float(r), float(p), len(mean)


@register_claim("dloss_inverse_fid", studies=("table1", "runs"),
                reads=lambda i: i.first("table1", "runs"))
def dloss_inverse_fid(runs: pd.DataFrame | None) -> Finding:
    statement = ("The mean D loss correlates inversely with FID, so D's loss can serve as an "
                 "assessment metric (Fig. 5)")
    rule = (f"Pearson r of d_loss_mean against FID over completed runs: holds if r < 0 with "
            f"p < {ALPHA}, does not hold if r >= 0 with p < {ALPHA}, inconclusive if "
            f"p >= {ALPHA} or n < 3")
    pr, pp, pn = paper_dloss_correlation()
    paper_ev = f"paper's own Table I: r = {pr:.3f}, p = {pp:.3f}, n = {pn}"
    if runs is None or runs.empty:
        return Finding(statement, INCONCLUSIVE, f"no runs; {paper_ev}", rule,
                     "no data")
    done = completed(runs)
    pair = (done[["fid", "d_loss_mean"]].astype(float).dropna()
            if {"fid", "d_loss_mean"} <= set(done.columns) else pd.DataFrame())
    n = len(pair)
    if n < 3 or np.ptp(pair["fid"]) == 0 or np.ptp(pair["d_loss_mean"]) == 0:
        return Finding(statement, INCONCLUSIVE,
                     f"{n} runs with FID and D loss (need 3 with spread); {paper_ev}", rule,
                     describe(runs))
    r, p = sstats.pearsonr(pair["d_loss_mean"], pair["fid"])
    rho, _ = sstats.spearmanr(pair["d_loss_mean"], pair["fid"])
    if p < ALPHA:
        verdict = HOLDS if r < 0 else FAILS
    else:
        verdict = INCONCLUSIVE
    ev = f"ours: r = {r:.3f}, p = {p:.3f}, Spearman ρ = {rho:.3f}, n = {n}; {paper_ev}"
    return Finding(statement, verdict, ev, rule, describe(runs))


# --------------------------------------------------------------------------- memory claims
def _describe_memory(mf: pd.DataFrame | None) -> str:
    if mf is None or mf.empty:
        return "no data"
    from .protocol import natural_values

    def v(c: str) -> str:
        return "/".join(natural_values(mf[c]))

    return (f"{len(mf)} memory measurements: image {v('image_size')} px, widths "
            f"{v('features')}, BN {v('batchnorm')}, batch {v('batch_size')}, "
            f"optimizer {v('optimizer')}, device {v('device')}")


@register_claim("bn_saving", studies=("batchnorm", "memory"), reads=lambda i: i.memory)
def bn_saving(memory: pd.DataFrame | None) -> Finding:
    """``memory``: a memory frame (reports.tables.memory_frame / memory_rows_frame)."""
    lo, hi = paper.BN_SAVING_PCT
    statement = f"Removing batch norm from G saves {lo} to {hi} % of memory"
    rule = (f"measured peak of a step with BN in G vs the same config without, saving in % per "
            f"pair: holds if the median saving is within [{lo}, {hi}] % and at least "
            f"{IN_RANGE_SHARE:.0%} of the pairs are, does not hold if the median is outside, "
            f"inconclusive otherwise or without a pair")
    bf = bn_savings_frame(memory) if memory is not None and not memory.empty else pd.DataFrame()
    if not bf.empty:
        bf = bf[bf["saving_measured_pct"].notna()]
    if bf.empty:
        return Finding(statement, INCONCLUSIVE, "no measured pair of configurations "
                     "differing only in BN in G (run the batchnorm study or xraygan memory "
                     "--batchnorm-compare)", rule, _describe_memory(memory))
    s = bf["saving_measured_pct"].to_numpy(dtype=float)
    inside = (s >= lo) & (s <= hi)
    median = float(np.median(s))
    if not lo <= median <= hi:
        verdict = FAILS
    elif inside.mean() >= IN_RANGE_SHARE:
        verdict = HOLDS
    else:
        verdict = INCONCLUSIVE
    ev = (f"median measured saving {median:.2f} % ({fmt(s.min(), 2)} to {fmt(s.max(), 2)} %); "
          f"{int(inside.sum())} of {len(s)} pairs within the paper's {lo}-{hi} %")
    details = "; ".join(
        f"{w} → {o}: {fmt(m, 2)} % measured, {fmt(e, 2)} % estimated"
        for w, o, m, e in zip(bf["with"], bf["without"], bf["saving_measured_pct"],
                              bf["saving_estimate_pct"], strict=True))
    return Finding(statement, verdict, ev, rule, _describe_memory(memory), details)


@register_claim("memory_exponential", studies=("fmaps", "memory"), reads=lambda i: i.memory)
def memory_exponential(memory: pd.DataFrame | None) -> Finding:
    """``memory``: a memory frame (reports.tables.memory_frame / memory_rows_frame)."""
    statement = "Memory grows exponentially with feature-map width (Fig. 7, 8)"
    rule = (f"per image size and BN placement with >= {MIN_WIDTHS} widths, fit the measured "
            f"peak by m = a w^k + c and m = a e^(bw) + c (xraygan.memory.fit): with >= 5 "
            f"widths a size favours the law that, fitted without the largest width, predicts "
            f"it with the smaller error (R² of both is ~1 on smooth data and does not decide); "
            f"with 4 widths, the higher R²; holds if every size favours the exponential, does "
            f"not hold if every size favours the power law, inconclusive otherwise")
    gf = growth_frame(memory) if memory is not None and not memory.empty else pd.DataFrame()
    if not gf.empty:
        gf = gf[gf["quantity"] == "measured"]
    if gf.empty:
        return Finding(statement, INCONCLUSIVE,
                     f"fewer than {MIN_WIDTHS} widths measured at any image size (run the fmaps "
                     "study or xraygan memory --features ...)", rule, _describe_memory(memory))
    def vote(r: pd.Series) -> str:
        e, p = r["extrap_err_exponential"], r["extrap_err_power"]
        if math.isfinite(e) and math.isfinite(p):
            return "exponential" if abs(e) < abs(p) else "power"
        return "exponential" if r["r2_exponential"] > r["r2_power"] else "power"

    votes = gf.apply(vote, axis=1).tolist()
    verdict = (HOLDS if all(b == "exponential" for b in votes)
               else FAILS if all(b == "power" for b in votes) else INCONCLUSIVE)
    ev = (f"{votes.count('power')} of {len(votes)} (size, BN) series favour the power law, "
          f"{votes.count('exponential')} the exponential; power exponents k "
          f"{gf['power_exponent'].min():.2f} to {gf['power_exponent'].max():.2f}")
    details = "; ".join(f"{r['image_size']} px (BN {r['batchnorm']}): power k = "
                   f"{r['power_exponent']:.2f}, R² {r['r2_power']:.4f} vs exponential "
                   f"{r['r2_exponential']:.4f}; extrapolation error power "
                   f"{fmt(r['extrap_err_power'])}, exp. {fmt(r['extrap_err_exponential'])} → "
                   f"{v}" for v, (_, r) in zip(votes, gf.iterrows(), strict=True))
    return Finding(statement, verdict, ev, rule, _describe_memory(memory),
                 details)


# --------------------------------------------------------------------------- Table III
@register_claim("blurry_squares", studies=("table3",), reads=lambda i: i.first("table3"))
def blurry_squares(table3: pd.DataFrame | None) -> Finding:
    statement = ("Compressed GANs (fewer, larger-stride layers, FC layers, smaller latent or "
                 "widths) produce blurry squares (Table III: all 12 failed, by eye)")
    margin = _blockiness_margin()
    rule = (f"a compressed cell is blocky if its blockiness exceeds the baseline's by more than "
            f"{margin} (compress-search's margin; with >= 2 seeds also with disjoint 95 % CIs); "
            f"holds if >= {BLOCKY_SHARE:.0%} of the cells with a number are blocky, does not "
            f"hold if <= {CLEAN_SHARE:.0%}, inconclusive between or with fewer than 6 cells")
    if table3 is None or table3.empty:
        return Finding(statement, INCONCLUSIVE, "no table3 study", rule, "no data")
    tf = table3_frame(table3)
    base = tf[tf["factor"] == "none"]
    cells = tf[(tf["factor"] != "none") & tf["blockiness"].map(lambda c: c.n > 0)]
    if base.empty or base.iloc[0]["blockiness"].n == 0 or len(cells) < 6:
        return Finding(statement, INCONCLUSIVE,
                     f"baseline blockiness missing or only {len(cells)} compressed cells with a "
                     "number", rule, describe(table3))
    b = base.iloc[0]["blockiness"]

    def blocky(c: MeanCI) -> bool:
        if c.mean - b.mean <= margin:
            return False
        if c.n >= 2 and b.n >= 2:
            return not intervals_overlap(c, b)
        return True

    flags = cells["blockiness"].map(blocky)
    share = float(flags.mean())
    verdict = HOLDS if share >= BLOCKY_SHARE else FAILS if share <= CLEAN_SHARE else INCONCLUSIVE
    ev = (f"{int(flags.sum())} of {len(cells)} compressed cells blocky (baseline blockiness "
          f"{fmt_ci(b)})")
    details = ", ".join(f"{g} {fmt_ci(c)}{' (blocky)' if f else ''}" for g, c, f in
                        zip(cells["group"], cells["blockiness"], flags, strict=True))
    return Finding(statement, verdict, ev, rule, describe(table3), details)


# --------------------------------------------------------------------------- all of them
def evaluate_claims(frames: Mapping[str, pd.DataFrame],
                    memory: pd.DataFrame | None = None) -> list[Claim]:
    """Every registered claim, from the trials frames keyed by study registry name (table1,
    table3, batchnorm, fmaps, seeds, runs) and a memory frame (the memory of the batchnorm and
    fmaps studies and of ``xraygan memory`` JSON files). A claim without its data is
    inconclusive."""
    _load_claim_modules()
    inputs = ClaimInputs(frames, memory)
    return [spec.evaluate(inputs) for spec in CLAIMS.values()]


def claims_markdown(claims: list[Claim]) -> str:
    """A summary table (claim, verdict) and, per claim, its evidence, rule and data."""
    out = [markdown(["Claim (paper)", "Verdict", "Evidence"],
                    [[c.statement, f"**{c.verdict}**", c.evidence] for c in claims],
                    ["l", "l", "l"])]
    for c in claims:
        out.append(f"\n### {c.key}: {c.verdict}\n\n- Claim: {c.statement}\n- Evidence: "
                   f"{c.evidence}\n- Rule: {c.rule}\n- Data: {c.data}\n")
        if c.details:
            out.append(f"- Details: {c.details}\n")
    return "".join(out)
