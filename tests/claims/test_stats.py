"""Effect sizes over seeds (reports.stats): intervals with known answers, the seeds-needed
power calculation against textbook values and its closed-form normal bound."""

import math

import numpy as np
import pytest

from xraygan.claims.stats import (
    BOOTSTRAP_MIN_N,
    CONFIDENCE,
    MAX_SEEDS,
    effect,
    fmt_effect,
    mean_ci,
    seeds_needed,
    spread,
    welch_df,
)

Z975, Z80 = 1.959963984540054, 0.8416212335729143  # normal quantiles, two-sided 0.05, power 0.8


def test_welch_interval_matches_hand_computation():
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 4.0, 6.0])
    e = effect(a, b)
    va, vb = a.var(ddof=1), b.var(ddof=1)
    se = math.sqrt(va / 4 + vb / 3)
    df = (va / 4 + vb / 3) ** 2 / ((va / 4) ** 2 / 3 + (vb / 3) ** 2 / 2)
    assert e.method == "welch-t"
    assert e.diff == pytest.approx(2.5 - 4.0)
    assert e.df == pytest.approx(df)
    # t quantile 0.975 at df = 3.35 (tabulated: 3.0 -> 3.182, 4.0 -> 2.776), checked loosely,
    # the interval exactly symmetric around the difference
    half = e.diff_high - e.diff
    assert e.diff - e.diff_low == pytest.approx(half)
    assert 2.776 * se < half < 3.182 * se
    assert e.ratio == pytest.approx(2.5 / 4.0)
    assert e.ratio_low < e.ratio < e.ratio_high


def test_interval_covers_a_known_difference_at_the_nominal_rate():
    # Two normal samples whose true difference is known: the 95 % Welch interval covers it in
    # about 95 % of repetitions (binomial sd over 1000 repetitions: 0.7 %), also with unequal
    # variances and group sizes, where a pooled interval would not.
    rng = np.random.default_rng(1)
    true = -3.0
    cover = 0
    reps = 1000
    for _ in range(reps):
        a = rng.normal(10 + true, 1.0, 3)
        b = rng.normal(10, 4.0, 5)
        e = effect(a, b, power=False)
        cover += e.diff_low <= true <= e.diff_high
    assert abs(cover / reps - CONFIDENCE) < 0.025


def test_ratio_interval_covers_the_true_ratio():
    rng = np.random.default_rng(2)
    cover = 0
    reps = 400
    for _ in range(reps):
        e = effect(rng.normal(100, 8, 3), rng.normal(250, 25, 3), power=False)
        cover += e.ratio_low <= 0.4 <= e.ratio_high
    assert cover / reps > 0.92


def test_a_large_effect_is_resolved_and_a_null_one_is_not():
    big = effect([96.0, 101.0, 104.0], [254.0, 297.0, 270.0])
    assert big.resolved and big.direction == "lower" and big.p_value < 0.01
    null = effect([100.0, 110.0, 90.0], [105.0, 95.0, 102.0])
    assert not null.resolved and null.p_value > 0.5


def test_fewer_than_two_seeds_give_no_interval():
    e = effect([96.0], [254.0, 260.0])
    assert e.method == "none" and math.isnan(e.diff_low) and e.seeds_needed is None
    assert e.diff == pytest.approx(96.0 - 257.0) and not e.resolved
    assert "no interval" in fmt_effect(e)


def test_bootstrap_only_for_many_skewed_seeds():
    rng = np.random.default_rng(3)
    skewed_a, skewed_b = rng.lognormal(0, 1.5, 20), rng.lognormal(0.5, 1.5, 20)
    e = effect(skewed_a, skewed_b)
    assert e.method == "bootstrap"
    assert e.diff_low < e.diff < e.diff_high
    assert effect(skewed_a, skewed_b) == e  # seeded: the same data give the same interval
    # the same skew with too few seeds to resample stays with the t interval
    few = effect(skewed_a[: BOOTSTRAP_MIN_N - 1], skewed_b[: BOOTSTRAP_MIN_N - 1])
    assert few.method == "welch-t"
    # symmetric data with many seeds stay with the t interval too
    even = np.linspace(-1.5, 1.5, 20)
    assert effect(even, even + 1.0).method == "welch-t"


def test_nan_values_are_dropped():
    e = effect([1.0, float("nan"), 2.0, 3.0], [4.0, 5.0, 6.0, float("inf")])
    assert (e.a.n, e.b.n) == (3, 3)


def test_spread():
    s = spread([3.0, 1.0, 2.0])
    assert (s.n, s.mean, s.min, s.max) == (3, 2.0, 1.0, 3.0)
    assert s.std == pytest.approx(1.0)
    assert spread([5.0]).n == 1 and math.isnan(spread([5.0]).std)


@pytest.mark.parametrize("d, n", [(0.5, 64), (0.8, 26), (1.0, 17), (2.0, 6)])
def test_seeds_needed_matches_power_tables(d, n):
    # Cohen's / G*Power's two-sample t test, two-sided alpha 0.05, power 0.8, equal sd 1
    assert seeds_needed(d, 1.0, 1.0) == n


@pytest.mark.parametrize("diff, sa, sb", [(1.0, 1.0, 1.0), (30.0, 10.0, 40.0), (5.0, 3.0, 3.0),
                                          (0.2, 1.0, 2.0)])
def test_seeds_needed_against_the_closed_form_normal_bound(diff, sa, sb):
    # n_normal = (z_{0.975} + z_{0.8})^2 (sa^2 + sb^2) / diff^2 is what the t test needs with
    # known variances; estimating them costs at most a few seeds more.
    normal = (Z975 + Z80) ** 2 * (sa**2 + sb**2) / diff**2
    n = seeds_needed(diff, sa, sb)
    assert math.ceil(normal) <= n <= math.ceil(normal) + 3


def test_seeds_needed_edge_cases():
    assert seeds_needed(0.0, 1.0, 1.0) is None
    assert seeds_needed(1.0, float("nan"), 1.0) is None
    assert seeds_needed(1.0, 0.0, 0.0) == 2
    assert seeds_needed(1e-4, 1.0, 1.0) == MAX_SEEDS + 1


def test_inconclusive_effect_says_how_many_seeds_would_resolve_it():
    e = effect([100.0, 120.0, 80.0], [110.0, 135.0, 95.0])
    assert not e.resolved
    assert e.seeds_needed == seeds_needed(e.diff, e.a.std, e.b.std)
    assert e.seeds_needed > 3
    assert f"power 0.8 at this variance: {e.seeds_needed}" in fmt_effect(e)


def test_welch_df_equal_variances_is_pooled_df():
    assert welch_df(2.0, 5, 2.0, 5) == pytest.approx(8.0)


def test_fmt_effect_names_groups_and_interval():
    text = fmt_effect(effect([96.0, 101.0, 104.0], [254.0, 297.0, 270.0]), names=("AdaS", "Adam"))
    assert text.startswith("AdaS − Adam = -173.3 [")
    assert "Welch t" in text and "AdaS/Adam = 0.37" in text and "n=3" in text


def test_mean_ci_unchanged():
    ci = mean_ci([1.0, 2.0, 3.0])
    assert ci.mean == 2.0 and ci.half == pytest.approx(4.302652729911275 / math.sqrt(3))


def test_table1_claims_carry_the_effect_in_their_markdown():
    import pandas as pd

    from xraygan.claims import engine, table1
    from xraygan.reports import claim_page

    def frame(fids):
        return pd.DataFrame([{"group": g, "cell": f"{g}-s{i}", "status": "completed", "fid": f,
                              "d_loss_mean": 1.0, "study": "table1", "seed": i, "t0": 100.0,
                              "t0_past": 1.0, **dict(table1.T0_PARAMS)}
                             for g, vals in fids.items() for i, f in enumerate(vals)])

    df = frame({"adas-elu": [96.0, 101.0, 104.0], "adam-elu": [254.0, 297.0, 270.0],
                "adas-elu-ttur": [100.0, 110.0, 90.0], "adas-dcgan": [75.0, 80.0, 78.0]})
    c = table1.adas_beats_adam(df)
    assert c.verdict == engine.HOLDS
    want = fmt_effect(effect([96.0, 101.0, 104.0], [254.0, 297.0, 270.0]), names=("AdaS", "Adam"),
                      observed_power=False)
    assert want in c.details and "seeds per group for power" not in c.details  # not post hoc
    # seeds planned a priori at the declared smallest effect (20 % lower FID)
    assert "seeds per cell for power 0.8 at the declared smallest effect" in c.power
    assert "tested beyond 0.095" in c.power
    best = table1.elu_ttur_adas_best(df)
    # "best" needs 3 comparisons to reject together: each planned for power 0.8 ** (1/3)
    assert "3 comparisons must all reject, each planned for power 0.928" in best.power
    assert "adas-elu-ttur vs adas-dcgan: log-FID difference" in best.details
    md = claim_page.claims_markdown([engine.Claim("adas_beats_adam", c.statement, c.verdict,
                                              c.evidence, c.rule, c.data, c.details)])
    assert "AdaS/Adam = 0.37 [" in md
