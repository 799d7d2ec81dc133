"""The tests claims are decided with, and the step from p-values to a verdict.

Every test returns three p-values, each for a one-sided question (NaN: not asked):

    p_holds       H0 "no effect in the claimed direction"; small: the claim holds
    p_opposite    H0 "no effect in the opposite direction"; small: evidence against the claim
    p_equivalent  TOST (Schuirmann 1987): H0 "the effect is at least the margin"; small: the
                  effect is smaller than anything the claim is about

:func:`holm` adjusts each kind within a claim family; :func:`verdict` turns the adjusted
p-values into the vocabulary of gan_core/claims/verdicts.py. Pure functions over arrays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .verdicts import FAILS, HOLDS, INCONCLUSIVE, UNTESTABLE, Verdict

NAN = math.nan


@dataclass(frozen=True)
class TestResult:
    p_holds: float = NAN
    p_opposite: float = NAN
    p_equivalent: float = NAN
    estimate: float = NAN  # the effect in the test's units
    low: float = NAN  # its 95 % interval
    high: float = NAN
    n: int = 0
    note: str = ""


def _finite(x: Sequence[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).ravel()
    return a[np.isfinite(a)]


def welch(a: Sequence[float], b: Sequence[float], direction: str, margin: float = NAN,
          shift: float = 0.0) -> TestResult:
    """Welch's t on mean(a) - mean(b) = d. ``direction`` "less": H1 d < shift; "greater":
    H1 d > shift. TOST against +-``margin``. Needs 2 values per group."""
    a, b = _finite(a), _finite(b)
    if len(a) < 2 or len(b) < 2:
        return TestResult(n=len(a) + len(b), note=f"{len(a)} and {len(b)} values (need 2 each)")
    d = float(a.mean() - b.mean())
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se > 0 else len(a) + len(b) - 2
    return _t_result(d, se, df, direction, margin, shift, len(a) + len(b))


def one_sample(x: Sequence[float], direction: str, margin: float = NAN,
               shift: float = 0.0) -> TestResult:
    """One-sample t of mean(x) against ``shift`` (H1 by ``direction``), TOST against +-margin."""
    x = _finite(x)
    if len(x) < 2:
        return TestResult(n=len(x), note=f"{len(x)} values (need 2)")
    return _t_result(float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x))), len(x) - 1,
                     direction, margin, shift, len(x))


def _t_result(d: float, se: float, df: float, direction: str, margin: float, shift: float,
              n: int) -> TestResult:
    if se == 0:  # no spread: the sign decides exactly
        below, above = float(d >= shift), float(d <= shift)
        eq = float(not (math.isfinite(margin) and abs(d) < margin))
        p_less, p_greater = below, above
        return _directed(p_less, p_greater, eq, d, d, d, direction, n)
    t = stats.t
    p_less = float(t.cdf((d - shift) / se, df))  # H1: d < shift
    p_greater = float(t.sf((d - shift) / se, df))
    eq = NAN
    if math.isfinite(margin):
        eq = max(float(t.sf((d + margin) / se, df)), float(t.cdf((d - margin) / se, df)))
    q = float(t.ppf(0.975, df))
    return _directed(p_less, p_greater, eq, d, d - q * se, d + q * se, direction, n)


def _directed(p_less: float, p_greater: float, eq: float, d: float, lo: float, hi: float,
              direction: str, n: int) -> TestResult:
    if direction == "less":
        return TestResult(p_less, p_greater, eq, d, lo, hi, n)
    return TestResult(p_greater, p_less, eq, d, lo, hi, n)


def pearson(x: Sequence[float], y: Sequence[float], direction: str,
            margin: float = NAN) -> TestResult:
    """Pearson r of x and y with one-sided p-values (t with n - 2 df), its 95 % interval
    (Fisher z at this n, n >= 4) and TOST on Fisher z against +-``margin`` (an r)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = len(x)
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return TestResult(n=n, note=f"{n} units with spread (need 3)")
    r = float(np.clip(np.corrcoef(x, y)[0, 1], -1 + 1e-12, 1 - 1e-12))
    tstat = r * math.sqrt((n - 2) / (1 - r * r))
    p_less, p_greater = float(stats.t.cdf(tstat, n - 2)), float(stats.t.sf(tstat, n - 2))
    lo = hi = eq = NAN
    if n >= 4:
        z, se = math.atanh(r), 1 / math.sqrt(n - 3)
        lo, hi = math.tanh(z - 1.96 * se), math.tanh(z + 1.96 * se)
        if math.isfinite(margin):
            zm = math.atanh(margin)
            eq = max(float(stats.norm.sf((z + zm) / se)), float(stats.norm.cdf((z - zm) / se)))
    return _directed(p_less, p_greater, eq, r, lo, hi, direction, n)


def cluster_bootstrap_r(x: Sequence[float], y: Sequence[float], clusters: Sequence[object],
                        resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of the pooled Pearson r when whole clusters (configurations)
    are resampled with replacement: the runs of one configuration move together, so the
    interval carries the between-configuration uncertainty (resamples without spread in
    either variable are dropped). Each resample's r comes from per-cluster sums weighted by
    how often the cluster was drawn."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    labels = [str(c) for c in clusters]
    names = list(dict.fromkeys(labels))
    k = len(names)
    if k < 2:
        return NAN, NAN
    idx = np.array([names.index(c) for c in labels])
    sums = np.zeros((k, 6))  # n, sx, sy, sxx, syy, sxy per cluster
    for col, v in enumerate((np.ones_like(x), x, y, x * x, y * y, x * y)):
        np.add.at(sums[:, col], idx, v)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(k, [1 / k] * k, size=resamples)  # (R, k) draws per cluster
    n, sx, sy, sxx, syy, sxy = (counts @ sums).T
    vx, vy = sxx - sx * sx / n, syy - sy * sy / n
    ok = (vx > 1e-12 * np.maximum(sxx, 1)) & (vy > 1e-12 * np.maximum(syy, 1))
    if ok.sum() < resamples // 10:
        return NAN, NAN
    r = (sxy - sx * sy / n)[ok] / np.sqrt(vx[ok] * vy[ok])
    return float(np.percentile(r, 2.5)), float(np.percentile(r, 97.5))


def binomial_upper(k: int, n: int, p0: float) -> float:
    """One-sided binomial p of H0 "rate <= p0" for k successes in n (small: rate > p0)."""
    if n <= 0:
        return NAN
    return float(stats.binom.sf(k - 1, n, p0))


def binomial_lower(k: int, n: int, p0: float) -> float:
    """One-sided binomial p of H0 "rate >= p0" (small: rate < p0)."""
    if n <= 0:
        return NAN
    return float(stats.binom.cdf(k, n, p0))


def intersection_union(results: Sequence[TestResult]) -> TestResult:
    """A claim that needs every part (e.g. "best": lower than each other cell): it holds when
    each part holds, p_holds = the largest part's (Berger 1982, valid at level alpha without
    correction); evidence against it needs only one part: p_opposite and p_equivalent are
    the smallest part's, Bonferroni-corrected for the number of parts."""
    k = len(results)
    if not k:
        return TestResult(note="no comparison")

    def worst(ps: list[float]) -> float:
        return max(ps) if ps and all(math.isfinite(p) for p in ps) else NAN

    def best(ps: list[float]) -> float:
        f = [p for p in ps if math.isfinite(p)]
        return min(1.0, k * min(f)) if f else NAN

    return TestResult(worst([r.p_holds for r in results]),
                      best([r.p_opposite for r in results]),
                      best([r.p_equivalent for r in results]), n=sum(r.n for r in results))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm (1979) step-down adjusted p-values (NaN entries stay NaN and do not count)."""
    idx = [i for i, p in enumerate(pvalues) if math.isfinite(p)]
    m = len(idx)
    out = [NAN] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def verdict(p_holds: float, p_opposite: float, p_equivalent: float, alpha: float,
            untestable: str = "") -> tuple[Verdict, str]:
    """The verdict from (adjusted) p-values, and why, in words."""
    if untestable:
        return UNTESTABLE, untestable
    if math.isfinite(p_holds) and p_holds < alpha:
        return HOLDS, f"p = {p_holds:.3g} < {alpha:g}"
    if math.isfinite(p_opposite) and p_opposite < alpha:
        return FAILS, f"a significant effect in the opposite direction (p = {p_opposite:.3g})"
    if math.isfinite(p_equivalent) and p_equivalent < alpha:
        return FAILS, (f"equivalent within the margin (TOST p = {p_equivalent:.3g}): no effect "
                       "as large as the claim's")
    return INCONCLUSIVE, "neither the claim's test nor evidence against it reached the level"


# --------------------------------------------------------------------------- a priori power
def seeds_for_power(sesoi: float, sd: float, *, alpha: float = 0.05, power: float = 0.8,
                    one_sided: bool = True, max_n: int = 1000) -> int | None:
    """Seeds per group for a two-group Welch t at equal n and equal per-seed sd to detect the
    declared smallest effect ``sesoi`` with ``power`` (noncentral t, exact). ``sd`` comes
    from a pilot (e.g. the spread over seeds of a finished study), never the observed effect.
    None without a usable sd; max_n + 1 when beyond reach."""
    if not (math.isfinite(sesoi) and math.isfinite(sd)) or sesoi == 0 or sd < 0:
        return None
    if sd == 0:
        return 2
    a = alpha if one_sided else alpha / 2
    for n in range(2, max_n + 1):
        df = 2 * n - 2
        nc = abs(sesoi) / (sd * math.sqrt(2 / n))
        crit = stats.t.ppf(1 - a, df)
        p = stats.nct.sf(crit, df, nc) + (0 if one_sided else stats.nct.cdf(-crit, df, nc))
        if p >= power:
            return n
    return max_n + 1


def pooled_sd(groups: Sequence[Sequence[float]]) -> tuple[float, int]:
    """Pooled within-group sd (ddof 1 per group) and its degrees of freedom."""
    ss, df = 0.0, 0
    for g in groups:
        x = _finite(g)
        if len(x) >= 2:
            ss += float(((x - x.mean()) ** 2).sum())
            df += len(x) - 1
    return (math.sqrt(ss / df) if df else NAN), df
