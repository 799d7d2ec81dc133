"""D-loss statistics (Table I) and T0 on synthetic loss curves."""

import numpy as np
import pandas as pd
import pytest

from xraygan.metrics.dynamics import dloss_metrics, find_t0, loss_stats, smooth, windowed_stats


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
    steps = np.arange(100, 1100)
    rng = np.random.default_rng(1)
    assert find_t0(steps, 0.7 + 0.05 * rng.standard_normal(1000)) == 100
    assert np.isnan(find_t0(steps, 0.01 + 0.001 * rng.random(1000)))  # D wins throughout
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
