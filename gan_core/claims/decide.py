"""The tests claims are decided with, and the step from p-values to a verdict.

Every test returns two p-values, each for a one-sided question at a registered bound
(ClaimProtocol.holds_at and fails_at, in the test's units; NaN: not asked):

    p_holds    H0 "the effect does not lie beyond holds_at in the claimed direction";
               small: the claim holds
    p_against  H0 "the effect lies beyond fails_at in the claimed direction"; small: the
               effect is shown on the other side of fails_at, i.e. smaller than the margin or
               opposite: evidence against the claim (one test at level alpha, equivalence and
               opposite effect alike)

A claim whose H1 says "by at least the margin" has holds_at = fails_at = the margin: the two
questions are complementary and at most one can reject. A claim whose H1 is "below 0" with an
equivalence margin has holds_at = 0 and fails_at = -margin: an effect shown inside the margin
is "no practical difference", decided before "holds" (:func:`verdict`). A test that cannot be
run (too few values, no spread between seeds) says why in ``untestable``.

:func:`holm` adjusts each kind within a claim family over the family's registered size;
:func:`verdict` turns the adjusted p-values into the vocabulary of
gan_core/claims/verdicts.py. Pure functions over arrays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .verdicts import FAILS, HOLDS, INCONCLUSIVE, UNTESTABLE, Verdict

NAN = math.nan
NO_SPREAD = "no spread between seeds"


@dataclass(frozen=True)
class TestResult:
    p_holds: float = NAN
    p_against: float = NAN
    estimate: float = NAN  # the effect in the test's units
    low: float = NAN  # its 95 % interval
    high: float = NAN
    n: int = 0
    note: str = ""
    untestable: str = ""  # why the test could not be run ("" when it ran)


def _finite(x: Sequence[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).ravel()
    return a[np.isfinite(a)]


def welch(a: Sequence[float], b: Sequence[float], direction: str, holds_at: float = 0.0,
          fails_at: float = NAN) -> TestResult:
    """Welch's t on d = mean(a) - mean(b). ``direction`` "less": p_holds tests H1 d < holds_at,
    p_against H1 d > fails_at; "greater": mirrored. ``fails_at`` NaN: = holds_at. Needs 2
    values per group and some spread."""
    a, b = _finite(a), _finite(b)
    if len(a) < 2 or len(b) < 2:
        why = f"{len(a)} and {len(b)} values (need 2 each)"
        return TestResult(n=len(a) + len(b), note=why, untestable=why)
    d = float(a.mean() - b.mean())
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return TestResult(estimate=d, low=d, high=d, n=len(a) + len(b), untestable=NO_SPREAD)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return _t_result(d, se, df, direction, holds_at, fails_at, len(a) + len(b))


def one_sample(x: Sequence[float], direction: str, holds_at: float = 0.0,
               fails_at: float = NAN) -> TestResult:
    """One-sample t of mean(x) (H1 by ``direction`` against ``holds_at``; against the claim
    beyond ``fails_at``, NaN: = holds_at)."""
    x = _finite(x)
    if len(x) < 2:
        why = f"{len(x)} values (need 2)"
        return TestResult(n=len(x), note=why, untestable=why)
    se = float(x.std(ddof=1) / math.sqrt(len(x)))
    m = float(x.mean())
    if se == 0:
        return TestResult(estimate=m, low=m, high=m, n=len(x), untestable=NO_SPREAD)
    return _t_result(m, se, len(x) - 1, direction, holds_at, fails_at, len(x))


def _t_result(d: float, se: float, df: float, direction: str, holds_at: float, fails_at: float,
              n: int) -> TestResult:
    fails_at = holds_at if math.isnan(fails_at) else fails_at
    t = stats.t
    if direction == "less":
        p_holds = float(t.cdf((d - holds_at) / se, df))
        p_against = float(t.sf((d - fails_at) / se, df))
    else:
        p_holds = float(t.sf((d - holds_at) / se, df))
        p_against = float(t.cdf((d - fails_at) / se, df))
    q = float(t.ppf(0.975, df))
    return TestResult(p_holds, p_against, d, d - q * se, d + q * se, n)


def pearson(x: Sequence[float], y: Sequence[float], direction: str, holds_at: float = 0.0,
            fails_at: float = NAN) -> TestResult:
    """Pearson r of x and y: p_holds by the t test (n - 2 df) when ``holds_at`` is 0, else by
    Fisher z; p_against by Fisher z at ``fails_at`` (an r; NaN: = holds_at); the 95 % interval
    by Fisher z at this n. Needs 4 units with spread."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = len(x)
    if n < 4:
        why = f"{n} units (need 4)"
        return TestResult(n=n, note=why, untestable=why)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return TestResult(n=n, untestable=NO_SPREAD)
    fails_at = holds_at if math.isnan(fails_at) else fails_at
    r = float(np.clip(np.corrcoef(x, y)[0, 1], -1 + 1e-12, 1 - 1e-12))
    z, se = math.atanh(r), 1 / math.sqrt(n - 3)
    zn = stats.norm
    if holds_at == 0:
        tstat = r * math.sqrt((n - 2) / (1 - r * r))
        p_less, p_greater = float(stats.t.cdf(tstat, n - 2)), float(stats.t.sf(tstat, n - 2))
    else:
        h = math.atanh(holds_at)
        p_less, p_greater = float(zn.cdf((z - h) / se)), float(zn.sf((z - h) / se))
    f = math.atanh(fails_at)
    against = float(zn.sf((z - f) / se)) if direction == "less" else float(zn.cdf((z - f) / se))
    lo, hi = math.tanh(z - 1.96 * se), math.tanh(z + 1.96 * se)
    return TestResult(p_less if direction == "less" else p_greater, against, r, lo, hi, n)


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
    correction); evidence against it needs only one part: p_against is the smallest part's,
    Bonferroni-corrected for the number of parts. Untestable when any part is."""
    k = len(results)
    if not k:
        return TestResult(note="no comparison", untestable="no comparison")
    if bad := [r.untestable for r in results if r.untestable]:
        return TestResult(n=sum(r.n for r in results), untestable=bad[0])
    against = [r.p_against for r in results if math.isfinite(r.p_against)]
    return TestResult(max(r.p_holds for r in results),
                      min(1.0, k * min(against)) if against else NAN, n=sum(r.n for r in results))


def holm(pvalues: Sequence[float], m: int | None = None) -> list[float]:
    """Holm (1979) step-down adjusted p-values over a family of ``m`` hypotheses (default: the
    finite entries). NaN entries stay NaN; ``m`` larger than the finite entries counts the
    family's claims that were not tested (untestable) as hypotheses that did not reject."""
    idx = [i for i, p in enumerate(pvalues) if math.isfinite(p)]
    m = max(m or 0, len(idx))
    out = [NAN] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def verdict(p_holds: float, p_against: float, alpha: float,
            untestable: str = "") -> tuple[Verdict, str]:
    """The verdict from (adjusted) p-values, and why, in words. Evidence against the claim
    (the effect shown smaller than the margin, or opposite) is decided first: an effect inside
    the margin is no practical difference, whatever its sign."""
    if untestable:
        return UNTESTABLE, untestable
    if math.isfinite(p_against) and p_against < alpha:
        return FAILS, (f"the effect is shown smaller than the claim's margin or opposite to it "
                       f"(p = {p_against:.3g} < {alpha:g})")
    if math.isfinite(p_holds) and p_holds < alpha:
        return HOLDS, f"p = {p_holds:.3g} < {alpha:g}"
    return INCONCLUSIVE, "neither the claim's test nor the test against it reached the level"


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
