"""Growth laws of memory against feature-map width: power law versus exponential.

The paper calls the growth of memory with the feature-map width "exponentially proportional"
(Fig. 7). A DCGAN block's activations grow linearly in the width w and its weights as w^2, so
a power law ``m = a w^k + c`` with 1 <= k <= 2 is the expected shape; an exponential
``m = a exp(b w) + c`` is the paper's wording. Both are fitted by least squares on the same
points and compared by R^2 in the original (not log) space, so the numbers are comparable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import curve_fit


@dataclass(frozen=True)
class GrowthFit:
    law: str  # power | exponential | loglog
    a: float
    k: float  # power: the exponent; exponential: the rate b per unit width; loglog: the slope
    c: float  # the constant term (0 for loglog)
    r2: float  # coefficient of determination in the space of the fit's target

    def predict(self, w: np.ndarray | float) -> np.ndarray:
        w = np.asarray(w, dtype=float)
        if self.law == "exponential":
            return self.a * np.exp(self.k * w) + self.c
        return self.a * np.power(w, self.k) + self.c

    def to_dict(self) -> dict[str, float | str]:
        return asdict(self)


def r_squared(y: np.ndarray, y_hat: np.ndarray) -> float:
    ss_res = float(np.sum((y - y_hat) ** 2))
    ss_tot = float(np.sum((y - np.mean(y)) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)


def _check(widths: Sequence[float], values: Sequence[float], minimum: int) -> tuple[np.ndarray, np.ndarray]:
    w = np.asarray(widths, dtype=float)
    m = np.asarray(values, dtype=float)
    if w.shape != m.shape or w.ndim != 1:
        raise ValueError(f"widths and values must be 1-D and of equal length, got {w.shape}, {m.shape}")
    if len(w) < minimum:
        raise ValueError(f"a growth fit needs at least {minimum} widths, got {len(w)}")
    if np.any(w <= 0) or np.any(m <= 0):
        raise ValueError("widths and values must be positive")
    return w, m


def fit_loglog(widths: Sequence[float], values: Sequence[float]) -> GrowthFit:
    """``log m = log a + k log w``: ordinary least squares; R^2 in log space."""
    w, m = _check(widths, values, 2)
    k, log_a = np.polyfit(np.log(w), np.log(m), 1)
    pred = log_a + k * np.log(w)
    return GrowthFit("loglog", float(math.exp(log_a)), float(k), 0.0, r_squared(np.log(m), pred))


def fit_power_law(widths: Sequence[float], values: Sequence[float]) -> GrowthFit:
    """``m = a w^k + c`` by nonlinear least squares (started from the log-log fit)."""
    w, m = _check(widths, values, 4)
    scale = float(np.max(m))
    start = fit_loglog(w, m)

    def f(x, a, k, c):
        return a * np.power(x, k) + c

    try:
        (a, k, c), _ = curve_fit(f, w, m / scale, p0=(start.a / scale, start.k, 0.0), maxfev=20000)
    except RuntimeError:  # no convergence: keep the log-log law
        a, k, c = start.a / scale, start.k, 0.0
    fit = GrowthFit("power", float(a * scale), float(k), float(c * scale), 0.0)
    return GrowthFit("power", fit.a, fit.k, fit.c, r_squared(m, fit.predict(w)))


def fit_exponential(widths: Sequence[float], values: Sequence[float]) -> GrowthFit:
    """``m = a exp(b w) + c`` by nonlinear least squares, started from a log-linear fit."""
    w, m = _check(widths, values, 4)
    scale = float(np.max(m))
    wmax = float(np.max(w))
    b0, log_a0 = np.polyfit(w / wmax, np.log(m / scale), 1)

    def f(x, a, b, c):  # x in units of the largest width, for conditioning
        return a * np.exp(b * x) + c

    try:
        (a, b, c), _ = curve_fit(f, w / wmax, m / scale, p0=(math.exp(log_a0), b0, 0.0),
                                 maxfev=20000)
    except RuntimeError:
        a, b, c = math.exp(log_a0), b0, 0.0
    fit = GrowthFit("exponential", float(a * scale), float(b / wmax), float(c * scale), 0.0)
    return GrowthFit("exponential", fit.a, fit.k, fit.c, r_squared(m, fit.predict(w)))


def extrapolation_error(law: str, widths: Sequence[float], values: Sequence[float]) -> float:
    """Relative error at the largest width of the ``law`` fitted to the other widths: a sharper
    test than R^2, which a 3-parameter exponential also gets near 1 on a power law."""
    w, m = _check(widths, values, 5)
    order = np.argsort(w)
    w, m = w[order], m[order]
    fit = {"power": fit_power_law, "exponential": fit_exponential}[law](w[:-1], m[:-1])
    return float(fit.predict(w[-1]) / m[-1] - 1.0)
