"""Claims about the downstream utility of generated radiographs (xraygan.metrics.utility):
can a configuration's synthetic images stand in for real ones when training a classifier?

Non-inferiority, decided on held-out real images: a classifier trained on synthetic images
only may lose some AUROC against one trained on the real images; the claim is that it loses
less than the declared margin. Two preconditions say when the data can speak to it: the real
images must teach the classifier something (else there is nothing to stand in for), and the
anatomy measurer's labels must be good enough on real images (else the labels, not the
generator, limit the synthetic classifier). See gan_core/claims/engine.py for the registry.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from xraygan.trials import completed

from . import decide, simulate
from .engine import Finding, describe, num, register_claim
from .protocol import ClaimProtocol, Precondition

UTILITY = "utility"  # the Holm family of these claims
STAND_IN_CELL = "adas-elu"  # configuration X: the paper's AdaS with ELU
UTILITY_MARGIN = 0.05  # AUROC a synthetic-only classifier may lose and still stand in
REAL_AUROC_FLOOR = 0.6  # the real-only classifier must reach this: else nothing to stand in for
# Measured labels on real images may cost at most what the claim lets the whole synthetic arm
# lose: a labelling that alone costs more than the margin makes the claim unpassable whatever
# the generator does, so the claim is then untestable rather than failed.
LABEL_MARGIN = UTILITY_MARGIN


def cell_rows(df: pd.DataFrame, cell: str) -> pd.DataFrame:
    """Completed trials of grid cell ``cell`` (with its seed repeats ``cell-sN``)."""
    done = completed(df)
    if "cell" not in done.columns:
        return done.iloc[0:0]
    return done[done["cell"].astype(str).str.fullmatch(rf"{re.escape(cell)}(-s\d+)?")]


def stand_in_test(gaps: np.ndarray, margin: float) -> decide.TestResult:
    """Non-inferiority of the gap AUROC(b) - AUROC(a) against -``margin``, over runs (one-sample
    t, 2 or more runs). One run is untestable: its bootstrap standard error over test images
    ignores the variation between generator seeds and classifier trainings, so a z from it
    speaks for that one trained generator only."""
    gaps = gaps[np.isfinite(gaps)]
    if len(gaps) == 1:
        return decide.TestResult(n=1, untestable="seeds: one run with a utility test; the claim "
                                 "is about the configuration and needs 2 or more runs (seeds): "
                                 "one run's bootstrap SE over test images ignores seed and "
                                 "classifier variance")
    if not len(gaps):
        return decide.TestResult(untestable="data: no run with a utility test")
    return decide.one_sample(gaps, "greater", -margin, -margin)


def _sim_utility(truth: str, rng: np.random.Generator, seeds: int) -> pd.DataFrame:
    # null: the synthetic arm loses exactly the margin; effect: it loses nothing
    gap = 0.0 if truth == "effect" else -UTILITY_MARGIN
    return simulate.utility_study(rng, 1 if truth == "one-run" else seeds, gap)


@register_claim(ClaimProtocol(
    key="synthetic_stands_in", version=2,
    statement=(f"Synthetic radiographs from configuration {STAND_IN_CELL} (AdaS, ELU) can stand "
               "in for real ones: a cardiomegaly classifier trained on them alone loses less "
               f"than {UTILITY_MARGIN:g} AUROC on real images against one trained on the real "
               "images"),
    hypothesis=(f"AUROC(synthetic only) - AUROC(real only) > -{UTILITY_MARGIN:g} on held-out "
                "real images (non-inferiority)"),
    direction="greater",
    metric="util_gap_synthetic: AUROC of (b) synthetic-only minus (a) real-only, per run",
    cells=(STAND_IN_CELL,),
    test=(f"one-sample t of the per-run gaps (2 or more runs: seeds) against "
          f"-{UTILITY_MARGIN:g}; one run is untestable. Does not hold when the gap is shown "
          f"below -{UTILITY_MARGIN:g} (non-inferiority rejects at the margin)."),
    family=UTILITY, sesoi=UTILITY_MARGIN, margin=UTILITY_MARGIN, holds_at=-UTILITY_MARGIN,
    fails_at=-UTILITY_MARGIN,
    preconditions=(
        Precondition("real_learns", f"the real-only classifier learns: AUROC (a) >= "
                     f"{REAL_AUROC_FLOOR:g} in every run (else there is nothing to stand in for)",
                     REAL_AUROC_FLOOR),
        Precondition("labels_readable", f"real images labelled by the anatomy measurer do as well "
                     f"as with their own labels: mean AUROC (d) - (a) >= -{LABEL_MARGIN:g} (else "
                     "the measurer's labels, not the generator, limit the synthetic classifier)",
                     -LABEL_MARGIN)),
    studies=("utility",),
    transfer=("other labels and data (VinBigData's radiologist labels), other image sizes and "
              "classifiers, and synthetic labels from another source than the anatomy measurer"),
    params=(("real_auroc_floor", REAL_AUROC_FLOOR), ("label_margin", LABEL_MARGIN))),
    reads=lambda i: i.first("utility"), simulate=_sim_utility)
def synthetic_stands_in(trials: pd.DataFrame | None, p: ClaimProtocol) -> Finding:
    if trials is None or trials.empty:
        return Finding("no utility study", describe(trials), frame=trials)
    cell = p.cells[0]
    rows = cell_rows(trials, cell)
    if rows.empty or "util_gap_synthetic" not in rows.columns or rows["util_gap_synthetic"].isna().all():
        return Finding(f"no completed run of {cell} with a utility test", describe(trials),
                       frame=trials)
    col = lambda c: rows[c].astype(float).to_numpy() if c in rows.columns else np.full(len(rows), np.nan)  # noqa: E731
    gaps = col("util_gap_synthetic")
    real, measured = col("util_auroc_real"), col("util_gap_real_measured")
    test = stand_in_test(gaps, p.margin)
    untestable = ""
    floor = p.param("real_auroc_floor")
    if not (real >= floor).all():
        untestable = (f"real_learns ({p.precondition('real_learns').text}): AUROC (a) "
                      + ", ".join(num(v, 3) for v in real))
    elif not np.nanmean(measured) >= -p.param("label_margin"):
        untestable = (f"labels_readable ({p.precondition('labels_readable').text}): mean gap "
                      f"(d) - (a) {num(np.nanmean(measured), 3)}")
    ev = (f"{cell}: gap (b) - (a) {num(np.nanmean(gaps), 3)} AUROC over {len(rows)} run(s) "
          f"(95 % interval {num(test.low, 3)} to {num(test.high, 3)}); AUROC (a) real "
          f"{num(np.nanmean(real), 3)}, (b) synthetic {num(np.nanmean(col('util_auroc_synthetic')), 3)}, "
          f"(d) real with measured labels {num(np.nanmean(col('util_auroc_real_measured')), 3)}; "
          f"margin {p.margin:g}")
    return Finding(ev, describe(trials), test=test, untestable=untestable, frame=trials)
