"""The synthetic-stands-in claim on simulated utility studies with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xraygan.claims.engine import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    UNTESTABLE,
    claims_for_study,
)
from xraygan.claims.utility import STAND_IN_CELL, synthetic_stands_in


def frame(gaps, se=0.01, real=0.95, measured=-0.01, cell=STAND_IN_CELL) -> pd.DataFrame:
    rows = []
    for i, g in enumerate(gaps):
        rows.append({"study": "utility", "scale": "quick", "status": "completed",
                     "cell": cell if len(gaps) == 1 else f"{cell}-s{i}", "group": cell,
                     "util_gap_synthetic": g, "util_gap_synthetic_se": se,
                     "util_auroc_real": real, "util_auroc_synthetic": real + g,
                     "util_auroc_real_measured": real + measured, "util_gap_real_measured": measured})
    rows.append({"study": "utility", "scale": "quick", "status": "completed", "cell": "adam-elu",
                 "group": "adam-elu", "util_gap_synthetic": -0.5, "util_gap_synthetic_se": 0.01,
                 "util_auroc_real": real, "util_gap_real_measured": measured})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("gaps, se, verdict", [
    ([0.0], 0.01, UNTESTABLE),  # one run: its SE ignores seed and classifier variance
    ([-0.3], 0.02, UNTESTABLE),
    ([0.0, 0.0, 0.0], 0.01, UNTESTABLE),  # no spread between seeds
    ([-0.01, 0.0, 0.01, -0.02], 0.5, HOLDS),  # over seeds: the per-run SE is not used
    ([-0.2, -0.25, -0.22], 0.5, FAILS),
    ([0.1, -0.3], 0.01, INCONCLUSIVE),  # two seeds that disagree
])
def test_verdicts_on_simulated_studies(gaps, se, verdict):
    claim = synthetic_stands_in(frame(gaps, se))
    assert claim.verdict == verdict, claim.reason


def test_other_cells_do_not_count():
    # adam-elu's -0.5 is in every frame above; the claim is about configuration X only
    assert synthetic_stands_in(frame([0.0, 0.01, -0.01])).verdict == HOLDS


def test_one_run_is_untestable_and_says_why_without_a_p_value():
    c = synthetic_stands_in(frame([0.0]))
    assert c.verdict == UNTESTABLE and "needs 2 or more runs" in c.reason
    assert np.isnan(c.p) and np.isnan(c.p_adjusted)


def test_preconditions_make_it_untestable():
    weak = synthetic_stands_in(frame([0.0, 0.01], real=0.55))
    assert weak.verdict == UNTESTABLE and "real_learns" in weak.reason
    labels = synthetic_stands_in(frame([0.0, 0.01], measured=-0.2))
    assert labels.verdict == UNTESTABLE and "labels_readable" in labels.reason


def test_no_data_and_registration():
    assert synthetic_stands_in(None).verdict != HOLDS
    assert synthetic_stands_in(frame([np.nan])).verdict != HOLDS
    assert "synthetic_stands_in" in claims_for_study("utility")


def test_the_utility_sweep_registers_the_claim():
    from xraygan.ablations.registration import study_protocols

    protos = {p.key: p for p in study_protocols("utility")}
    assert "synthetic_stands_in" in protos
    p = protos["synthetic_stands_in"]
    assert (p.family, p.margin, p.direction, p.cells) == ("utility", 0.05, "greater", (STAND_IN_CELL,))
    assert {c.key for c in p.preconditions} == {"real_learns", "labels_readable"}


@pytest.mark.parametrize("seeds", [3])
def test_level_and_no_false_fail_on_simulated_studies(seeds):
    """Monte Carlo with known truth: at the null's boundary (true gap = -margin) the rule says
    "holds" at most alpha of the time; with a true gap of 0 it almost never says "does not
    hold". Per-run gaps scatter by the SE each run reports (one run) or by a seed-to-seed sd."""
    rng = np.random.default_rng(seeds)
    reps, se, alpha = 400, 0.02, 0.05
    mc = 3 * np.sqrt(alpha * (1 - alpha) / reps)
    rates = {}
    for truth, gap in (("null", -0.05), ("effect", 0.0)):
        verdicts = [synthetic_stands_in(frame(list(gap + rng.normal(0, se, seeds)), se)).verdict
                    for _ in range(reps)]
        rates[truth] = {v: verdicts.count(v) / reps for v in (HOLDS, FAILS)}
    assert rates["null"][HOLDS] <= alpha + mc
    assert rates["effect"][FAILS] <= alpha + mc
    assert rates["effect"][HOLDS] > 0.3  # and some power at a gap of 0 (2.5 SE from the margin)
