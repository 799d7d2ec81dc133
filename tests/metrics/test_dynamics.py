"""D-loss statistics (Table I) and T0 on synthetic loss curves."""

import numpy as np
import pandas as pd
import pytest

from xraygan.metrics.dynamics import (
    T0_RULE_KEYS,
    dloss_metrics,
    find_t0,
    loss_stats,
    smooth,
    t0_phase,
    windowed_stats,
)


def curve(n=2000, t0=300, low=0.02, high=0.8, ramp=40, noise=0.05, seed=0):
    """D loss near ``low`` until ``t0``, then a ramp of ``ramp`` steps up to ``high``."""
    rng = np.random.default_rng(seed)
    steps = np.arange(n)
    level = low + (high - low) * np.clip((steps - t0) / ramp, 0, 1)
    return steps, np.abs(level + noise * rng.standard_normal(n) * (steps >= t0) + 0.005 * rng.standard_normal(n))


def test_loss_stats_are_population_statistics():
    x = np.array([0.1, 0.5, 2.0, 0.7, np.nan])
    s = loss_stats(x)
    f = x[:4]
    assert s["d_loss_mean"] == pytest.approx(f.mean())
    assert s["d_loss_var"] == pytest.approx(np.var(f))  # ddof = 0
    assert s["d_loss_std"] == pytest.approx(np.std(f))
    assert s["d_loss_std"] ** 2 == pytest.approx(s["d_loss_var"])
    assert np.isnan(loss_stats([])["d_loss_mean"])


def test_windowed_stats_match_manual_groups():
    steps = np.arange(0, 100, 2)  # logged every 2 iterations
    loss = np.sin(steps / 7.0)
    w = windowed_stats(steps, loss, 25)
    assert list(w["step_start"]) == [0, 25, 50, 75]
    first = loss[steps < 25]
    assert w.loc[0, "mean"] == pytest.approx(first.mean())
    assert w.loc[0, "var"] == pytest.approx(first.var())
    assert w.loc[0, "n"] == len(first)
    with pytest.raises(ValueError):
        windowed_stats(steps, loss, 0)


@pytest.mark.parametrize("t0", [150, 300, 450])
def test_t0_found_on_synthetic_curves(t0):
    steps, loss = curve(t0=t0)
    got = find_t0(steps, loss)
    # the threshold (half the later level) is crossed mid-ramp: t0 + ramp/2 +- smoothing
    assert t0 <= got <= t0 + 40


def test_t0_uses_the_step_column_when_logged_sparsely():
    steps, loss = curve(n=4000, t0=1200, ramp=80)
    got = find_t0(steps[::4], loss[::4])
    assert 1200 <= got <= 1300 and got % 4 == 0


def test_t0_ignores_a_short_spike_in_the_low_phase():
    steps, loss = curve(t0=400)
    loss[100:104] = 1.5  # a brief spike, shorter than the sustain length
    assert 400 <= find_t0(steps, loss) <= 440


def test_no_low_phase_gives_first_step_and_no_rise_gives_nan():
    steps = np.arange(100, 3100)
    rng = np.random.default_rng(1)
    assert find_t0(steps, 0.7 + 0.05 * rng.standard_normal(3000)) == 100
    assert np.isnan(find_t0(steps[:1000], 0.7 + 0.05 * rng.standard_normal(1000)))  # too short
    assert np.isnan(find_t0(steps, 0.01 + 0.001 * rng.random(3000)))  # D wins throughout
    assert np.isnan(find_t0([], []))


def test_smooth_is_a_centred_median():
    x = np.array([0, 0, 10, 0, 0, 5, 5, 5], dtype=float)
    np.testing.assert_allclose(smooth(x, 3), [0, 0, 0, 0, 0, 5, 5, 5])


def test_dloss_metrics_on_a_run_log():
    steps, loss = curve(t0=300)
    df = pd.DataFrame({"step": steps, "loss_d": loss, "loss_g": 2 - loss})
    m = dloss_metrics(df)
    assert m["d_loss_mean"] == pytest.approx(loss.mean())
    assert 300 <= m["t0"] <= 340
    after = loss[steps >= m["t0"]]
    assert m["d_loss_after_t0_mean"] == pytest.approx(after.mean())
    assert m["d_loss_after_t0_var"] == pytest.approx(after.var())
    assert m["g_loss_mean"] == pytest.approx((2 - loss).mean())
    assert m["steps_logged"] == 2000
    assert m["t0_past"] == 1.0 and m["t0_entered"] == 1.0 and m["t0_why_not"] == ""
    assert m["t0_share"] == pytest.approx(m["t0"] / 1999)
    assert {k: m[k] for k in T0_RULE_KEYS} == {
        "t0_enter_level": 0.15, "t0_leave_level": 0.30, "t0_max_share": 0.75,
        "t0_min_steps": 2500, "t0_window": 9}


def test_dloss_metrics_records_the_thresholds_it_was_given():
    steps, loss = curve(t0=1600)  # leaves at 80 % of the run: not past T0 by default
    df = pd.DataFrame({"step": steps, "loss_d": loss, "loss_g": 2 - loss})
    m = dloss_metrics(df)
    assert np.isnan(m["t0"]) and m["t0_past"] == 0.0 and "at most 75%" in m["t0_why_not"]
    assert np.isnan(m["d_loss_after_t0_mean"])
    m = dloss_metrics(df, max_share=0.9)
    assert m["t0_past"] == 1.0 and m["t0_max_share"] == 0.9 and 1600 <= m["t0"] <= 1640


# --- T0 from an absolute criterion (t0_phase) ----------------------------------------------

def test_t0_phase_on_a_ramp_is_where_the_loss_rises_out_of_the_low_phase():
    steps, loss = curve(n=3000, t0=1200, ramp=80)
    r = t0_phase(steps, loss)
    assert r.entered and r.left and r.past and r.why_not == ""
    # leave level 0.30 is crossed (0.30 - 0.02) / 0.78 of the way up the ramp: ~ t0 + 29
    assert 1200 <= r.t0 <= 1260
    assert r.share == pytest.approx(r.t0 / 2999) and r.steps == 2999 and r.points == 3000


def test_t0_phase_does_not_depend_on_where_the_run_stops():
    steps, loss = curve(n=4000, t0=1400, ramp=300)
    got = {n: t0_phase(steps[:n], loss[:n]).t0 for n in (2500, 3000, 4000)}
    assert len(set(got.values())) == 1, got


def test_t0_phase_uses_the_step_column_when_logged_sparsely():
    steps, loss = curve(n=4000, t0=1200, ramp=80)
    r = t0_phase(steps[::4], loss[::4])
    assert 1200 <= r.t0 <= 1300 and r.t0 % 4 == 0


def test_a_loss_stuck_low_all_run_never_leaves_t0():
    rng = np.random.default_rng(2)
    steps = np.arange(0, 3500, 5)
    r = t0_phase(steps, 0.08 + 0.01 * rng.standard_normal(len(steps)))
    assert r.entered and not r.left and not r.past and np.isnan(r.t0) and np.isnan(r.share)
    assert "never left the low phase" in r.why_not


def test_leaving_the_low_phase_after_75_percent_of_the_run_is_not_past_t0():
    steps, loss = curve(n=3500, t0=2800, low=0.10, ramp=20)  # low at 0.10 until 80 % of the run
    r = t0_phase(steps, loss)
    assert r.entered and r.left and not r.past and np.isnan(r.t0)
    assert r.share > 0.75 and "at most 75%" in r.why_not
    assert t0_phase(steps, loss, max_share=0.9).past  # the share is an argument


@pytest.mark.parametrize("n", [10, 15])
def test_runs_of_a_few_steps_are_not_past_t0(n):
    rng = np.random.default_rng(n)
    steps = np.arange(1, n + 1)
    untrained = 1.386 + 0.02 * rng.standard_normal(n)  # D and G still at their initial noise
    r = t0_phase(steps, untrained)
    assert not r.entered and not r.past and "never entered the low phase" in r.why_not
    dropping = np.geomspace(1.4, 0.01, n)  # the loss drops into the low phase and the run ends
    r = t0_phase(steps, dropping)
    assert r.entered and not r.past and "never left" in r.why_not


def test_a_long_run_without_low_phase_is_past_t0_at_its_first_step_and_the_length_is_an_argument():
    rng = np.random.default_rng(1)
    steps = np.arange(100, 3100)
    loss = 0.7 + 0.05 * rng.standard_normal(3000)
    r = t0_phase(steps, loss)
    assert r.past and r.t0 == 100 and not r.entered
    short = t0_phase(steps, loss, min_steps=5000)
    assert not short.past and "3,099 of the 5,000 iterations" in short.why_not


def test_t0_phase_hysteresis_ignores_spikes_and_dips():
    steps, loss = curve(n=3000, t0=1500, ramp=40)
    loss[300:304] = 1.5  # a brief spike in the low phase: not leaving
    loss[1700:1703] = 0.01  # a brief dip after leaving: not re-entering
    r = t0_phase(steps, loss)
    assert 1500 <= r.t0 <= 1540


def test_t0_phase_needs_the_rise_sustained():
    steps = np.arange(3000)
    loss = np.full(3000, 0.02)
    loss[1000:1015] = 0.8  # rose for 15 points (< sustain = 18), then fell back for good
    r = t0_phase(steps, loss)
    assert r.entered and not r.left and not r.past
    assert t0_phase(steps, loss, sustain=10).t0 == 1000  # the sustain count is an argument


def test_t0_phase_rejects_bad_thresholds_and_handles_empty_logs():
    with pytest.raises(ValueError, match="enter_level < leave_level"):
        t0_phase([1, 2], [0.1, 0.2], enter_level=0.3, leave_level=0.2)
    with pytest.raises(ValueError, match="max_share"):
        t0_phase([1, 2], [0.1, 0.2], max_share=0)
    with pytest.raises(ValueError, match="differ in length"):
        t0_phase([1, 2, 3], [0.1, 0.2])
    r = t0_phase([], [])
    assert not r.past and r.points == 0 and r.why_not == "no finite D loss logged"
    r = t0_phase([5, 10], [float("nan"), float("nan")])
    assert not r.past and r.why_not == "no finite D loss logged"
