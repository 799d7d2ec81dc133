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

import math
from collections.abc import Sequence
from dataclasses import dataclass

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


# --- T0 from an absolute criterion ---------------------------------------------------------
# The paper's T0 is "an initial phase of very low D loss" in which G's gradient vanishes. The
# D loss logged here is the BCE sum of the real and the fake half (chance level 2 ln 2 = 1.386);
# Table I's whole-run means are 0.42-1.19. The levels below are absolute so that a run is judged
# by what its D loss did, not against its own later level (a loss stuck low all run never
# "rises to half of where it ends" in any meaningful sense). See docs/claims.md, "T0".
T0_ENTER_LEVEL = 0.15
"""Smoothed D loss at or below this is the low phase: D scores both halves right with
probability ~0.93 or more (-2 ln 0.93 = 0.145), i.e. it wins outright."""
T0_LEAVE_LEVEL = 0.30
"""Smoothed D loss at or above this (and never back at or below the enter level for
``sustain`` points) has left the low phase: below Table I's smallest whole-run mean (0.42),
twice the enter level (the gap is the hysteresis that keeps noise at one level from counting
as entering or leaving)."""
T0_MAX_SHARE = 0.75
"""A run must leave the low phase at most at this share of its length; leaving later leaves too
little of the run after T0 to measure anything on it."""
T0_WINDOW = 9
"""Smoothing window in logged points (centred rolling median). Fixed, not a share of the log,
so that where a run stops does not move its T0."""
T0_MIN_STEPS = 2500
"""A run that never entered the low phase has trained past T0 only if it is at least this many
iterations long: the shortest length at which every configuration's T0 was observed at quick
scale (Adam leaves at up to ~1,800 iterations, 1,800 / 0.75 = 2,400). A run that short whose loss
never dropped is a run that has not trained (its D and G are at their initial noise)."""


@dataclass(frozen=True)
class T0Result:
    """Where one run stands with respect to T0 (see :func:`t0_phase`).

    ``t0``: the iteration at which the run left the low phase; the first logged step when the
    run never entered it and is long enough to have trained; NaN otherwise (never left, left too
    late, too short, empty log). ``past`` is true exactly when ``t0`` is finite.
    """

    entered: bool  # the smoothed D loss reached the low phase (<= enter level)
    left: bool  # ... and rose out of it (>= leave level, sustained), at any share of the run
    t0: float  # iteration of T0, or NaN when the run is not past T0
    share: float  # iteration at which it left / the run's last logged iteration (NaN: never left)
    steps: int  # the run's last logged iteration (0: empty log)
    points: int  # finite logged points the decision used
    why_not: str  # "" when past T0, else why not, in words

    @property
    def past(self) -> bool:
        return math.isfinite(self.t0)


def t0_phase(
    steps: Sequence[int] | np.ndarray,
    loss_d: Sequence[float] | np.ndarray,
    *,
    enter_level: float = T0_ENTER_LEVEL,
    leave_level: float = T0_LEAVE_LEVEL,
    max_share: float = T0_MAX_SHARE,
    min_steps: int = T0_MIN_STEPS,
    window: int = T0_WINDOW,
    sustain: int | None = None,
) -> T0Result:
    """Decide from one run's D-loss log whether (and where) it is past T0.

    1. s = centred rolling median of the finite ``loss_d`` over ``window`` logged points
       (default :data:`T0_WINDOW`);
    2. the run *entered* the low phase if s <= ``enter_level`` at some point;
    3. it *left* at the first later point i with s[i] >= ``leave_level`` after which s stays
       above ``enter_level`` for ``sustain`` points (default 2 * window; the log must hold them);
    4. it is past T0 if it left at most at ``max_share`` of its last logged iteration
       (t0 = that iteration), or if it never entered and its log reaches ``min_steps``
       (t0 = its first logged iteration: no low phase).
    A run that entered and never left, left late, or never entered and is shorter than
    ``min_steps`` is not past T0 (t0 = NaN; ``why_not`` says which).
    """
    if not 0 <= enter_level < leave_level:
        raise ValueError(f"T0 levels: expected 0 <= enter_level < leave_level, got "
                         f"{enter_level} and {leave_level}")
    if not 0 < max_share <= 1:
        raise ValueError(f"T0 max_share: expected a share in (0, 1], got {max_share}")
    if window < 1:
        raise ValueError(f"T0 window: expected >= 1 logged points, got {window}")
    st = np.asarray(steps, dtype=np.float64)
    x = np.asarray(loss_d, dtype=np.float64)
    if st.shape != x.shape:
        raise ValueError(f"T0: steps and loss_d differ in length ({len(st)} vs {len(x)})")
    keep = np.isfinite(x) & np.isfinite(st)
    st, x = st[keep], x[keep]
    n = len(x)
    nan = float("nan")
    if n == 0:
        return T0Result(False, False, nan, nan, 0, 0, "no finite D loss logged")
    last = int(st[-1])
    sustain = max(1, sustain or 2 * window)
    s = smooth(x, window)
    low = np.flatnonzero(s <= enter_level)
    if len(low) == 0:
        if last >= min_steps:
            return T0Result(False, False, float(st[0]), nan, last, n, "")
        return T0Result(False, False, nan, nan, last, n,
                        f"never entered the low phase (D loss <= {enter_level:g}) and ran "
                        f"{last:,} of the {min_steps:,} iterations a run needs to have trained")
    # fell[i] = the next index >= i at which s is back in the low phase (n if never)
    fell = np.full(n + 1, n, dtype=np.int64)
    for i in range(n - 1, -1, -1):
        fell[i] = i if s[i] <= enter_level else fell[i + 1]
    cand = np.flatnonzero((s >= leave_level) & (np.arange(n) > low[0]))
    ok = cand[(fell[cand] - cand >= sustain) & (cand + sustain <= n)]
    if len(ok) == 0:
        return T0Result(True, False, nan, nan, last, n,
                        f"never left the low phase (D loss >= {leave_level:g} for {sustain} "
                        f"logged points) in {last:,} iterations")
    at = float(st[ok[0]])
    share = at / last if last > 0 else 1.0
    if share > max_share:
        return T0Result(True, True, nan, share, last, n,
                        f"left the low phase at iteration {at:,.0f}, {share:.0%} of the run "
                        f"(at most {max_share:.0%} counts)")
    return T0Result(True, True, at, share, last, n, "")


def find_t0(steps: Sequence[int] | np.ndarray, loss_d: Sequence[float] | np.ndarray,
            **thresholds: float) -> float:
    """T0 of one run by :func:`t0_phase` (NaN when the run is not past T0)."""
    return t0_phase(steps, loss_d, **thresholds).t0  # type: ignore[arg-type]


T0_RULE_KEYS = ("t0_enter_level", "t0_leave_level", "t0_max_share", "t0_min_steps", "t0_window")
"""The metrics naming the thresholds a run's T0 was decided with (see :func:`dloss_metrics`):
a claim compares them with its registered protocol's and refuses a mismatch."""


def dloss_metrics(df: pd.DataFrame, **t0_kwargs: float) -> dict[str, float | str]:
    """Table I's D-loss statistics over the whole run and after T0, and T0 itself.

    ``df`` is a run's metrics DataFrame (columns ``step``, ``loss_d``; see xraygan.runs).
    T0 comes from :func:`t0_phase` with ``t0_kwargs`` (its defaults otherwise): ``t0`` (NaN
    when not past T0), ``t0_past`` (1/0), ``t0_entered``, ``t0_left``, ``t0_share``,
    ``t0_why_not`` (words) and the thresholds used (:data:`T0_RULE_KEYS`), so that a claim can
    tell whether the run's T0 was decided by its registered rule.
    """
    steps = df["step"].to_numpy()
    loss = df["loss_d"].to_numpy(dtype=np.float64)
    out: dict[str, float | str] = {**loss_stats(loss), **loss_stats(df["loss_g"], "g_loss")}
    rule = {"enter_level": T0_ENTER_LEVEL, "leave_level": T0_LEAVE_LEVEL,
            "max_share": T0_MAX_SHARE, "min_steps": T0_MIN_STEPS, "window": T0_WINDOW,
            **t0_kwargs}
    r = t0_phase(steps, loss, **rule)  # type: ignore[arg-type]
    t0 = r.t0
    out.update({"t0": t0, "t0_past": float(r.past), "t0_entered": float(r.entered),
                "t0_left": float(r.left), "t0_share": r.share, "t0_why_not": r.why_not})
    out.update({f"t0_{k}": float(v) for k, v in rule.items() if k != "sustain"})
    after = loss[steps >= t0] if np.isfinite(t0) else loss[:0]
    out.update(loss_stats(after, "d_loss_after_t0"))
    out["steps_logged"] = float(len(df))
    return out
