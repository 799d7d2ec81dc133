"""Small statistics for reports: means with t confidence intervals, interval overlap, effect
sizes between two groups of seeds (difference and ratio of means with 95 % intervals, per-seed
spread, seeds needed at the observed variance), and table-cell formatting (growth-law fits live
in xraygan.memory.fit).

Pure functions over arrays; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class MeanCI:
    """Mean of n finite values and the half-width of its t confidence interval
    (NaN for n < 2: one run has no interval)."""

    mean: float
    half: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half if self.n >= 2 else self.mean

    @property
    def high(self) -> float:
        return self.mean + self.half if self.n >= 2 else self.mean


def mean_ci(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> MeanCI:
    """Mean and t-distribution CI half-width: t_{(1+c)/2, n-1} * s / sqrt(n), s with ddof=1.

    Seeds are a sample of the runs a configuration could give, hence the sample std (ddof=1)
    and Student's t (few seeds: the normal quantile would be too narrow).
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return MeanCI(math.nan, math.nan, 0)
    if n == 1:
        return MeanCI(float(x[0]), math.nan, 1)
    t = stats.t.ppf((1 + confidence) / 2, n - 1)
    return MeanCI(float(x.mean()), float(t * x.std(ddof=1) / math.sqrt(n)), n)


def intervals_overlap(a: MeanCI, b: MeanCI) -> bool:
    """True when the two intervals share a point (a single run's interval is its value)."""
    return a.low <= b.high and b.low <= a.high


def fmt(value: object, digits: int = 3) -> str:
    """A table cell: numbers to ``digits`` significant-ish decimals, NaN/None as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return "—"
        if abs(v) >= 1e5:
            return f"{v:.{digits}g}"
        if round(v, digits) == 0:  # no "-0.000", and no 1e-7 noise of a fit in golden files
            v = 0.0
        return f"{v:.{digits}f}"
    return str(value)


def fmt_ci(ci: MeanCI, digits: int = 3) -> str:
    """``mean`` for one run, ``mean ± half`` for several."""
    if ci.n >= 2:
        return f"{fmt(ci.mean, digits)} ± {fmt(ci.half, digits)}"
    return fmt(ci.mean, digits)


# --------------------------------------------------------------------------- effect sizes
# Which interval an effect gets:
#   * fewer than 2 seeds in either group: no interval (one run has no spread);
#   * Welch's t interval (unequal variances, Welch-Satterthwaite df) otherwise: with the 3-5
#     seeds a CPU sweep affords, the t interval is the only one that widens honestly for tiny n
#     (a bootstrap of 3 values can only resample those 3 and undercovers badly);
#   * a percentile bootstrap instead, when both groups have >= BOOTSTRAP_MIN_N seeds and either
#     is heavily skewed (|sample skewness| > SKEW_LIMIT): then there are enough seeds for the
#     resamples to carry the skew, and the t interval's symmetry is what misleads.
# The ratio a/b of positive means uses the delta method on log(a/b) with the same Welch df
# (bounded, unlike Fieller's interval, and symmetric on the log scale where ratios live).
BOOTSTRAP_MIN_N = 8
SKEW_LIMIT = 1.0
BOOTSTRAP_RESAMPLES = 10_000
ALPHA = 1 - CONFIDENCE
POWER = 0.8
MAX_SEEDS = 10_000  # a "seeds needed" above this is reported as more than MAX_SEEDS


@dataclass(frozen=True)
class Spread:
    """Per-seed spread of one group: n, mean, sample std (ddof=1), min, max."""

    n: int
    mean: float
    std: float
    min: float
    max: float


def spread(values: Sequence[float] | np.ndarray) -> Spread:
    x = _finite(values)
    if len(x) == 0:
        return Spread(0, math.nan, math.nan, math.nan, math.nan)
    sd = float(x.std(ddof=1)) if len(x) >= 2 else math.nan
    return Spread(len(x), float(x.mean()), sd, float(x.min()), float(x.max()))


@dataclass(frozen=True)
class Effect:
    """Group a against group b over seeds: a - b and a / b with their intervals."""

    a: Spread
    b: Spread
    diff: float  # mean(a) - mean(b)
    diff_low: float
    diff_high: float
    ratio: float  # mean(a) / mean(b)
    ratio_low: float
    ratio_high: float
    method: str  # "welch-t" | "bootstrap" | "none"
    df: float  # Welch-Satterthwaite degrees of freedom (NaN for bootstrap / none)
    p_value: float  # two-sided Welch test of equal means (NaN below 2 seeds per group)
    seeds_needed: int | None  # per group, to resolve at the observed variance; None: unknown

    @property
    def resolved(self) -> bool:
        """True when the difference's interval excludes zero."""
        return (math.isfinite(self.diff_low) and math.isfinite(self.diff_high)
                and (self.diff_high < 0 or self.diff_low > 0))

    @property
    def direction(self) -> str:
        """"lower" (a's mean below b's), "higher" or "equal"."""
        if not math.isfinite(self.diff) or self.diff == 0:
            return "equal"
        return "lower" if self.diff < 0 else "higher"


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    return x[np.isfinite(x)]


def _skew(x: np.ndarray) -> float:
    """Sample skewness g1 (biased moments); 0 for constant or tiny samples."""
    if len(x) < 3:
        return 0.0
    c = x - x.mean()
    m2 = float((c**2).mean())
    return float((c**3).mean() / m2**1.5) if m2 > 0 else 0.0


def welch_df(va: float, na: int, vb: float, nb: int) -> float:
    """Welch-Satterthwaite degrees of freedom for sample variances va, vb of na, nb values."""
    qa, qb = va / na, vb / nb
    if qa + qb == 0:
        return float(na + nb - 2)
    return (qa + qb) ** 2 / (qa**2 / (na - 1) + qb**2 / (nb - 1))


def seeds_needed(diff: float, sd_a: float, sd_b: float, alpha: float = ALPHA,
                 power: float = POWER) -> int | None:
    """Seeds per group for a two-sided Welch test at ``alpha`` to detect ``diff`` with
    ``power``, given per-seed standard deviations ``sd_a``, ``sd_b`` (equal n per group).

    Exact power of the t test under the noncentral t (df from Welch-Satterthwaite at equal n,
    noncentrality diff / sqrt((sd_a^2 + sd_b^2) / n)); the smallest n >= 2 reaching ``power``.
    None when the difference is zero or a spread is unknown; MAX_SEEDS + 1 when beyond reach.
    Equal standard deviations reduce it to the textbook two-sample case: Cohen's d = 0.5,
    0.8, 1.0 need 64, 26, 17 per group.
    """
    if not all(math.isfinite(v) for v in (diff, sd_a, sd_b)) or diff == 0:
        return None
    var_sum = sd_a**2 + sd_b**2
    if var_sum == 0:
        return 2  # no spread at all: any difference is resolved by the smallest sample
    # The normal approximation n = (z_{1-a/2} + z_power)^2 (sa^2 + sb^2) / diff^2 is a lower
    # bound; start just below it and step up.
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    n = max(2, int(z**2 * var_sum / diff**2) - 1)
    while n <= MAX_SEEDS:
        if _t_power(n, diff, sd_a, sd_b, alpha) >= power:
            return n
        n += 1 if n < 1000 else n // 100
    return MAX_SEEDS + 1


def _t_power(n: int, diff: float, sd_a: float, sd_b: float, alpha: float) -> float:
    va, vb = sd_a**2, sd_b**2
    df = welch_df(va, n, vb, n)
    nc = abs(diff) / math.sqrt((va + vb) / n)
    crit = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


def effect(a_values: Sequence[float] | np.ndarray, b_values: Sequence[float] | np.ndarray,
           confidence: float = CONFIDENCE, *, seed: int = 0, power: bool = True) -> Effect:
    """The effect of group a against group b (e.g. FID over seeds of two configurations):
    difference and ratio of means with intervals chosen by the rule above,
    per-seed spread, Welch p-value and the seeds per group that would resolve it
    (``power=False`` skips that search: None)."""
    a, b = _finite(a_values), _finite(b_values)
    sa, sb = spread(a), spread(b)
    nan = math.nan
    diff = sa.mean - sb.mean if sa.n and sb.n else nan
    ratio = sa.mean / sb.mean if sa.n and sb.n and sb.mean != 0 else nan
    if sa.n < 2 or sb.n < 2:
        return Effect(sa, sb, diff, nan, nan, ratio, nan, nan, "none", nan, nan, None)
    needed = seeds_needed(diff, sa.std, sb.std, 1 - confidence) if power else None
    va, vb = sa.std**2, sb.std**2
    se = math.sqrt(va / sa.n + vb / sb.n)
    df = welch_df(va, sa.n, vb, sb.n)
    if se == 0:
        p = 1.0 if diff == 0 else 0.0
    else:
        p = float(2 * stats.t.sf(abs(diff) / se, df))
    heavy = max(abs(_skew(a)), abs(_skew(b))) > SKEW_LIMIT
    if min(sa.n, sb.n) >= BOOTSTRAP_MIN_N and heavy:
        (dl, dh), (rl, rh) = _bootstrap(a, b, confidence, seed)
        return Effect(sa, sb, diff, dl, dh, ratio, rl, rh, "bootstrap", nan, p, needed)
    t = float(stats.t.ppf((1 + confidence) / 2, df))
    dl, dh = diff - t * se, diff + t * se
    rl = rh = nan
    if sa.mean > 0 and sb.mean > 0:
        # delta method: var(log m) ~ var(m) / m^2; Welch df of the log-scale components
        qa, qb = va / (sa.n * sa.mean**2), vb / (sb.n * sb.mean**2)
        se_log = math.sqrt(qa + qb)
        df_log = (welch_df(va / sa.mean**2, sa.n, vb / sb.mean**2, sb.n) if se_log > 0
                  else df)
        t_log = float(stats.t.ppf((1 + confidence) / 2, df_log))
        rl, rh = ratio * math.exp(-t_log * se_log), ratio * math.exp(t_log * se_log)
    return Effect(sa, sb, diff, dl, dh, ratio, rl, rh, "welch-t", df, p, needed)


def _bootstrap(a: np.ndarray, b: np.ndarray, confidence: float,
               seed: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """Percentile intervals of mean(a) - mean(b) and mean(a) / mean(b), groups resampled
    independently (seeded: the same data give the same interval)."""
    rng = np.random.default_rng(seed)
    ma = a[rng.integers(0, len(a), (BOOTSTRAP_RESAMPLES, len(a)))].mean(1)
    mb = b[rng.integers(0, len(b), (BOOTSTRAP_RESAMPLES, len(b)))].mean(1)
    q = [(1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100]
    d = np.percentile(ma - mb, q)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.percentile(ma / mb, q) if (mb != 0).all() else (math.nan, math.nan)
    return (float(d[0]), float(d[1])), (float(r[0]), float(r[1]))


def fmt_spread(s: Spread, digits: int = 1) -> str:
    """``mean (sd s, min-max, n=N)``; a single run shows its value and n=1."""
    if s.n == 0:
        return "—"
    if s.n == 1:
        return f"{fmt(s.mean, digits)} (n=1)"
    return (f"{fmt(s.mean, digits)} (sd {fmt(s.std, digits)}, {fmt(s.min, digits)}–"
            f"{fmt(s.max, digits)}, n={s.n})")


def fmt_effect(e: Effect, digits: int = 1, names: tuple[str, str] = ("a", "b"), *,
               observed_power: bool = True) -> str:
    """One line: difference and ratio with intervals, method, per-seed spread, and (unless
    ``observed_power`` is False) the seeds needed at the observed difference. Claims leave
    that last part out: power at the observed, significance-filtered difference is post hoc;
    they plan seeds a priori at the declared smallest effect (reports.decide)."""
    na, nb = names
    if e.method == "none":
        base = (f"{na} − {nb} = {fmt(e.diff, digits)}, {na}/{nb} = {fmt(e.ratio, 2)} "
                f"(no interval: {e.a.n} and {e.b.n} seeds; at least 2 per group needed)")
        return f"{base}; per seed: {na} {fmt_spread(e.a, digits)}, {nb} {fmt_spread(e.b, digits)}"
    how = "Welch t" if e.method == "welch-t" else "bootstrap"
    df = f", df {e.df:.1f}" if math.isfinite(e.df) else ""
    out = (f"{na} − {nb} = {fmt(e.diff, digits)} [{fmt(e.diff_low, digits)}, "
           f"{fmt(e.diff_high, digits)}], {na}/{nb} = {fmt(e.ratio, 2)} "
           f"[{fmt(e.ratio_low, 2)}, {fmt(e.ratio_high, 2)}] ({CONFIDENCE:.0%}, {how}{df}, "
           f"p = {e.p_value:.2g}); per seed: {na} {fmt_spread(e.a, digits)}, {nb} "
           f"{fmt_spread(e.b, digits)}")
    if not observed_power:
        return out
    if e.seeds_needed is None:
        need = "unknown (no difference or no spread)"
    elif e.seeds_needed > MAX_SEEDS:
        need = f"more than {MAX_SEEDS:,}"
    else:
        need = str(e.seeds_needed)
    return out + f"; seeds per group for power {POWER} at this variance: {need}"
