"""Training-dynamics metrics: pure functions over a run's loss log (metrics.csv).

The paper scores runs by statistics of the discriminator's loss over training (Table I: mean,
variance, standard deviation) and describes an initial phase T0 of very low D loss in which G
receives vanishing gradients and does not learn (Sec. "Training dynamics": T0 < ~200 iterations
with AdaS, ~400-480 with Adam).

Variance convention: **population** variance (ddof = 0, numpy's default). The log holds every
logged iteration of the run, i.e. the whole population the paper summarizes, not a sample of it;
std = sqrt(var) in both conventions, and Table I's columns satisfy std^2 = var.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

DDOF = 0


def loss_stats(loss: Sequence[float] | np.ndarray, prefix: str = "d_loss") -> dict[str, float]:
    """``{prefix}_mean``, ``{prefix}_var``, ``{prefix}_std`` (population, ddof=0) of finite values."""
    x = np.asarray(loss, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        nan = float("nan")
        return {f"{prefix}_mean": nan, f"{prefix}_var": nan, f"{prefix}_std": nan}
    var = float(x.var(ddof=DDOF))
    return {f"{prefix}_mean": float(x.mean()), f"{prefix}_var": var, f"{prefix}_std": var**0.5}


def windowed_stats(steps: np.ndarray, loss: np.ndarray, window: int) -> pd.DataFrame:
    """Mean / var / std of ``loss`` over consecutive windows of ``window`` iterations.

    Rows are keyed by the window's first step (``step_start``, multiples of ``window``).
    """
    if window < 1:
        raise ValueError(f"window: expected >= 1 iterations, got {window}")
    steps = np.asarray(steps)
    df = pd.DataFrame({"step_start": (steps // window) * window, "loss": np.asarray(loss, float)})
    g = df.groupby("step_start")["loss"]
    out = pd.DataFrame({"mean": g.mean(), "var": g.var(ddof=DDOF), "n": g.size()})
    out["std"] = np.sqrt(out["var"])
    return out.reset_index()


def smooth(x: np.ndarray, window: int) -> np.ndarray:
    """Centred rolling median over ``window`` points (shrinking at the ends): robust to spikes."""
    if window <= 1:
        return np.asarray(x, dtype=np.float64)
    s = pd.Series(np.asarray(x, dtype=np.float64))
    return s.rolling(window, center=True, min_periods=1).median().to_numpy()


def default_window(n: int) -> int:
    """Smoothing window in logged points: 1 % of the log, at least 5 (or n if shorter)."""
    return max(1, min(n, max(5, n // 100)))


def find_t0(
    steps: Sequence[int] | np.ndarray,
    loss_d: Sequence[float] | np.ndarray,
    *,
    frac: float = 0.5,
    window: int | None = None,
    sustain: int | None = None,
    min_level: float = 0.05,
) -> float:
    """T0: the iteration at which D's loss leaves its initial low phase.

    Definition (all counts in logged points, converted to iterations through ``steps``):
      1. s = centred rolling median of ``loss_d`` over ``window`` points
         (default :func:`default_window`: 1 % of the log, at least 5);
      2. the later level L = median of s over the second half of the log;
      3. T0 = the first step at which s >= ``frac`` * L and stays there for ``sustain``
         consecutive points (default 2 * window), i.e. the loss has risen to a sizeable fraction
         of the level it keeps afterwards.
    A run whose smoothed D loss starts at or above the threshold has no low phase: T0 is its
    first step. If the loss never rises sustainably, or its later level L stays below
    ``min_level`` (D wins throughout: the run never leaves the low phase), T0 is NaN. ``frac`` = 0.5 separates a D
    loss near 0 (D wins, G's gradient vanishes) from the ~0.4-1.2 levels of Table I.
    """
    steps = np.asarray(steps)
    x = np.asarray(loss_d, dtype=np.float64)
    keep = np.isfinite(x)
    steps, x = steps[keep], x[keep]
    n = len(x)
    if n == 0:
        return float("nan")
    window = window or default_window(n)
    sustain = max(1, sustain or 2 * window)
    s = smooth(x, window)
    level = float(np.median(s[n // 2 :]))
    if not level >= min_level:
        return float("nan")
    above = s >= frac * level
    # run[i] = number of consecutive points >= threshold starting at i (computed backwards)
    run = np.zeros(n + 1, dtype=np.int64)
    for i in range(n - 1, -1, -1):
        run[i] = run[i + 1] + 1 if above[i] else 0
    # near the end of the log, a run reaching the last point counts as sustained
    ok = (run[:n] >= sustain) | (run[:n] == n - np.arange(n))
    idx = np.flatnonzero(ok)
    return float(steps[idx[0]]) if len(idx) else float("nan")


def dloss_metrics(df: pd.DataFrame, **t0_kwargs: object) -> dict[str, float]:
    """Table I's D-loss statistics over the whole run and after T0, and T0 itself.

    ``df`` is a run's metrics DataFrame (columns ``step``, ``loss_d``; see xraygan.runs).
    """
    steps = df["step"].to_numpy()
    loss = df["loss_d"].to_numpy(dtype=np.float64)
    out: dict[str, float] = {**loss_stats(loss), **loss_stats(df["loss_g"], "g_loss")}
    t0 = find_t0(steps, loss, **t0_kwargs)  # type: ignore[arg-type]
    out["t0"] = t0
    after = loss[steps >= t0] if np.isfinite(t0) else loss[:0]
    out.update(loss_stats(after, "d_loss_after_t0"))
    out["steps_logged"] = float(len(df))
    return out
