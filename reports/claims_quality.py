"""Claims about what FID alone cannot tell (issue 12): privacy, frequency bias, diversity.

Each reads the per-run metrics of xraygan.metrics (memorization, spectrum, prdc) from every
study's trials, and states its rule; see reports/claims.py for the registry.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from xraygan.metrics.memorization import CT_THRESHOLD
from xraygan.metrics.spectrum import CUTOFF

from .claims import FAILS, HOLDS, INCONCLUSIVE, Finding, describe, num, register_claim
from .load import completed
from .stats import MeanCI, fmt_ci, mean_ci

HF_MARGIN = 0.10  # a configuration is biased when hf_deficit - lf_deficit exceeds this
BIASED_SHARE = 0.75  # share of configurations that must be biased for the claim to hold
UNBIASED_SHARE = 0.25  # at most this share biased: the claim does not hold
RECALL_MARGIN = 0.05  # recall differences below this do not rank configurations


def _groups(df: pd.DataFrame, column: str) -> dict[str, MeanCI]:
    done = completed(df)
    if column not in done.columns:
        return {}
    out = {}
    for g, part in done.groupby("group", sort=False):
        v = part[column].astype(float).dropna().to_numpy()
        if len(v):
            out[str(g)] = mean_ci(v)
    return out


@register_claim("no_data_copying", studies=("table1", "seeds", "runs"),
                reads=lambda i: i.all_trials())
def no_data_copying(trials: pd.DataFrame | None) -> Finding:
    statement = ("Synthetic images do not copy training images (the paper's privacy argument "
                 "for sharing generated radiographs)")
    rule = (f"Meehan et al.'s data-copying statistic C_T of every run with a memorization test "
            f"(generated vs held-out real images, distances to the training set, in Inception "
            f"features and 16x16 pixels): holds if no run has C_T < {num(CT_THRESHOLD)} in "
            f"either space, does not hold if any run does, inconclusive without a tested run")
    done = completed(trials) if trials is not None and not trials.empty else pd.DataFrame()
    if done.empty or "mem_copying" not in done.columns or done["mem_copying"].isna().all():
        return Finding(statement, INCONCLUSIVE, "no run with a memorization test (needs "
                       "Inception metrics: scale with FID, or xraygan metrics RUN --fid)", rule,
                       describe(trials))
    tested = done[done["mem_copying"].notna()]
    copying = tested[tested["mem_copying"] == 1.0]
    verdict = FAILS if len(copying) else HOLDS
    ct = tested["mem_ct"].astype(float)
    ev = (f"{len(copying)} of {len(tested)} runs flagged as copying; C_T (features) "
          f"{num(ct.min(), 2)} to {num(ct.max(), 2)}; copy fraction (below the held-out 5 % "
          f"quantile; 0.05 expected) {num(tested['mem_copy_fraction'].astype(float).max(), 3)} "
          f"at most")
    details = "; ".join(f"{r['group']}: C_T {num(r['mem_ct'], 2)} (features), "
                        f"{num(r['mem_px_ct'], 2)} (pixels)" for _, r in tested.iterrows())
    return Finding(statement, verdict, ev, rule, describe(trials), details)


@register_claim("hf_bias", studies=("table1", "table3", "seeds", "runs"),
                reads=lambda i: i.all_trials())
def hf_bias(trials: pd.DataFrame | None) -> Finding:
    statement = ("GANs are biased against high frequencies (the paper's Discussion, after "
                 "Khayatkhoei & Elgammal 2022)")
    rule = (f"per configuration, the high-frequency deficit (share of the real images' power "
            f"above {num(CUTOFF, 2)} x Nyquist that generated images lack) minus the same at "
            f"low frequencies: a configuration is biased if the mean difference exceeds "
            f"{num(HF_MARGIN, 2)} (with >= 2 seeds also with the 95 % CI above 0); holds if >= "
            f"{BIASED_SHARE:.0%} of the configurations are, does not hold if <= "
            f"{UNBIASED_SHARE:.0%}, inconclusive between or with fewer than 3 configurations")
    done = completed(trials) if trials is not None and not trials.empty else pd.DataFrame()
    if done.empty or not {"hf_deficit", "lf_deficit"} <= set(done.columns):
        return Finding(statement, INCONCLUSIVE, "no spectrum metrics", rule, describe(trials))
    done = done.assign(hf_excess=done["hf_deficit"].astype(float) - done["lf_deficit"].astype(float))
    groups = _groups(done, "hf_excess")
    if len(groups) < 3:
        return Finding(statement, INCONCLUSIVE, f"{len(groups)} configurations with spectra "
                       "(need 3)", rule, describe(trials))

    def biased(c: MeanCI) -> bool:
        if c.mean <= HF_MARGIN:
            return False
        return c.n < 2 or not math.isfinite(c.low) or c.low > 0

    flags = {g: biased(c) for g, c in groups.items()}
    share = float(np.mean(list(flags.values())))
    verdict = HOLDS if share >= BIASED_SHARE else FAILS if share <= UNBIASED_SHARE else INCONCLUSIVE
    hf = _groups(done, "hf_deficit")
    ev = (f"{sum(flags.values())} of {len(flags)} configurations biased; high-frequency "
          f"deficit {num(min(c.mean for c in hf.values()), 2)} to "
          f"{num(max(c.mean for c in hf.values()), 2)}")
    details = ", ".join(f"{g} {fmt_ci(c, 2)}{' (biased)' if flags[g] else ''}"
                        for g, c in groups.items())
    return Finding(statement, verdict, ev, rule, describe(trials), "hf - lf deficit: " + details)


@register_claim("best_fid_best_recall", studies=("table1", "seeds", "runs"),
                reads=lambda i: i.first("table1", "runs"))
def best_fid_best_recall(trials: pd.DataFrame | None) -> Finding:
    statement = ("The best-FID configuration is also the most diverse (highest recall): FID "
                 "alone ranks diversity")
    rule = (f"the configuration with the lowest mean FID against the others' recall: does not "
            f"hold if another configuration's mean recall exceeds it by more than "
            f"{num(RECALL_MARGIN, 2)} (with >= 2 seeds each also with disjoint 95 % CIs), holds "
            f"if none does, inconclusive with fewer than 2 configurations with both numbers")
    if trials is None or trials.empty:
        return Finding(statement, INCONCLUSIVE, "no table1 study or runs", rule, "no data")
    fid, rec = _groups(trials, "fid"), _groups(trials, "recall")
    both = [g for g in fid if g in rec and math.isfinite(rec[g].mean)]
    if len(both) < 2:
        return Finding(statement, INCONCLUSIVE, f"{len(both)} configurations with FID and recall "
                       "(need 2)", rule, describe(trials))
    best = min(both, key=lambda g: fid[g].mean)
    b = rec[best]

    def beats(c: MeanCI) -> bool:
        if c.mean - b.mean <= RECALL_MARGIN:
            return False
        return not (c.n >= 2 and b.n >= 2) or c.low > b.high

    better = [g for g in both if g != best and beats(rec[g])]
    verdict = FAILS if better else HOLDS
    top = max(both, key=lambda g: rec[g].mean)
    ev = (f"lowest FID: {best} ({fmt_ci(fid[best], 1)}), recall {fmt_ci(b, 3)}; highest recall: "
          f"{top} ({fmt_ci(rec[top], 3)}, FID {fmt_ci(fid[top], 1)})"
          + (f"; clearly more diverse: {', '.join(better)}" if better else ""))
    details = ", ".join(f"{g}: FID {fmt_ci(fid[g], 1)}, recall {fmt_ci(rec[g], 3)}" for g in both)
    return Finding(statement, verdict, ev, rule, describe(trials), details)
