"""Every claim's rule run on simulated studies whose truth is known (Morris, White & Crowther,
Stat Med 2019): how often it says "holds" when the claim is false (its false-positive rate,
at the boundary of the null), "holds" when the claim is true at the declared smallest effect
(its power), "does not hold" when the claim is true, and "untestable" on degenerate generators.

A simulated study is a Table I-shaped trials frame (the four configurations x ``seeds``) with
every column the claims read, drawn per run from a model of a trained generator:

    log FID      = 5.4 + configuration effect + N(0, FID_SD)   (FID_SD: the quick scale's
                   per-seed sd of log FID, 0.2: 184.8-271.6 for adas-elu)
    t0           = 150 (left T0), D-loss mean per configuration + N(0, 0.1)
    precision    ~ 0.5, density ~ 0.8, recall ~ 0.3 + N(0, 0.05), equal 128/128 sets
    C_T          ~ N(0, 1) in both spaces; copy fraction ~ Binomial(128, q) / 128
    spectrum     log HF/LF power ratio per configuration + N(0, 0.05), low frequencies learned

and degenerate generators replace every configuration's runs by the signature such a
generator leaves in the metrics: noise (D wins: no T0; precision 0; C_T +7; power everywhere),
exact copies of training images (C_T -15, copy fraction 1), constant images (no T0,
precision 0, no power at all), undertrained (no T0, precision 0, C_T +5). Memory and
blockiness rules (deterministic measurements) are run on constructed measurements.

Claims are decided alone (a family of one: the raw level); Holm within a family only lowers
each rule's rate further.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from xraygan import paper
from xraygan.markdown import markdown

from . import decide
from .engine import CLAIMS, FID_SESOI, load_claim_modules
from .frames import memory_rows_frame
from .verdicts import FAILS, HOLDS, INCONCLUSIVE, UNTESTABLE, Verdict

FID_SD = 0.2  # per-seed sd of log FID: the quick scale's adas-elu seeds (pilot)
N_GEN = 128  # the quick scale's FID samples (ablations/scale.py)
CELLS = tuple(paper.TABLE1)  # adas-elu, adam-elu, adas-elu-ttur, adas-dcgan
QUICK_SEEDS = 3
DEGENERATE = ("noise", "copies", "constant", "undertrained")


@dataclass(frozen=True)
class Scenario:
    name: str
    truth: str  # "null" (claim false, at H0's boundary) | "effect" (claim true) | degenerate
    expect: str  # what the rule must do, in words
    check: Callable[[dict[Verdict, float], int, float], bool]  # rates, reps, alpha -> ok


def _mc(alpha: float, reps: int) -> float:
    """Three Monte-Carlo standard errors of a rate alpha estimated from ``reps`` studies."""
    return 3 * math.sqrt(alpha * (1 - alpha) / reps)


def _fpr_ok(r: dict[Verdict, float], reps: int, alpha: float) -> bool:
    return r[HOLDS] <= alpha + _mc(alpha, reps)


def _no_false_fail(r: dict[Verdict, float], reps: int, alpha: float) -> bool:
    return r[FAILS] <= alpha + _mc(alpha, reps)


def _untestable(r: dict[Verdict, float], reps: int, alpha: float) -> bool:
    return r[UNTESTABLE] == 1.0


def _fails(r: dict[Verdict, float], reps: int, alpha: float) -> bool:
    return r[FAILS] >= 1 - alpha


NULL = Scenario("null", "null", "holds <= alpha (+3 MC s.e.)", _fpr_ok)
EFFECT = Scenario("effect", "effect", "does not hold <= alpha; holds = power", _no_false_fail)


def degenerate(name: str, claim: str) -> Scenario:
    if claim == "no_data_copying" and name in ("copies", "quarter-copies"):
        return Scenario(name, name, "does not hold (copies found)", _fails)
    return Scenario(name, name, "untestable", _untestable)


# --------------------------------------------------------------------------- simulation
def _base(rng: np.random.Generator, seeds: int, fid_effect: dict[str, float],
          dloss: dict[str, float], recall: dict[str, float], hf: dict[str, float],
          copy_rate: float) -> pd.DataFrame:
    rows = []
    for c in CELLS:
        for s in range(seeds):
            lf = rng.normal(0, 0.1)
            h = hf[c] + rng.normal(0, 0.05)
            rows.append({
                "group": c, "cell": f"{c}-s{s}", "seed": s, "status": "completed",
                "study": "table1", "scale": "sim", "image_size": 32, "data_source": "phantom",
                "num_images": 2048, "fid_n1": N_GEN, "fid_n2": N_GEN, "steps": 400,
                "batch_size": 64,
                "fid": math.exp(5.4 + fid_effect[c] + rng.normal(0, FID_SD)),
                "t0": 150.0, "d_loss_mean": dloss[c] + rng.normal(0, 0.1),
                "precision": 0.5 + rng.normal(0, 0.05), "density": 0.8,
                "recall": recall[c] + rng.normal(0, 0.05), "coverage": 0.5,
                "prdc_n_real": N_GEN, "prdc_n_fake": N_GEN,
                "mem_ct": rng.normal(0, 1), "mem_px_ct": rng.normal(0, 1),
                "mem_copy_fraction": rng.binomial(N_GEN, copy_rate) / N_GEN,
                "mem_px_copy_fraction": rng.binomial(N_GEN, copy_rate) / N_GEN,
                "lf_deficit": 1 - math.exp(lf), "hf_deficit": 1 - math.exp(h + lf),
            })
    return pd.DataFrame(rows)


def _degenerate(df: pd.DataFrame, kind: str, rng: np.random.Generator) -> pd.DataFrame:
    n = len(df)
    out = df.copy()
    if kind in ("noise", "constant", "undertrained", "quarter-copies"):
        out["t0"] = math.nan
        out["d_loss_mean"] = rng.uniform(0.002, 0.01, n)
        out[["precision", "density", "recall", "coverage"]] = 0.0
        out["fid"] = np.exp(6.0 + rng.normal(0, 0.05, n))
    if kind in ("noise", "quarter-copies"):
        out["mem_ct"] = 7 + rng.normal(0, 0.5, n)
        out["mem_px_ct"] = 6.5 + rng.normal(0, 0.5, n)
        out[["mem_copy_fraction", "mem_px_copy_fraction"]] = 0.0
        out["hf_deficit"] = -15.0 + rng.normal(0, 1, n)  # noise adds high frequencies
        out["lf_deficit"] = -3.0 + rng.normal(0, 0.3, n)
    if kind == "quarter-copies":  # a quarter exact training images among noise
        out["mem_ct"] = 3.5 + rng.normal(0, 0.5, n)
        out[["mem_copy_fraction", "mem_px_copy_fraction"]] = 0.25
    if kind == "constant":
        out["mem_ct"] = 9 + rng.normal(0, 0.5, n)
        out["mem_px_ct"] = 9 + rng.normal(0, 0.5, n)
        out[["mem_copy_fraction", "mem_px_copy_fraction"]] = 0.0
        out[["hf_deficit", "lf_deficit"]] = 1.0
    if kind == "undertrained":
        out["mem_ct"] = 5 + rng.normal(0, 0.5, n)
        out["mem_px_ct"] = 4 + rng.normal(0, 0.5, n)
        out[["mem_copy_fraction", "mem_px_copy_fraction"]] = 0.0
        out["lf_deficit"] = 0.9  # blurry blobs: little structure at any frequency
        out["hf_deficit"] = 0.99
    if kind == "copies":
        out["mem_ct"] = -15 + rng.normal(0, 1, n)
        out["mem_px_ct"] = -20 + rng.normal(0, 1, n)
        out[["mem_copy_fraction", "mem_px_copy_fraction"]] = 1.0
        out[["precision", "density"]] = 1.0
        out["fid"] = np.exp(1.0 + rng.normal(0, 0.05, n))
        out[["hf_deficit", "lf_deficit"]] = 0.0
    return out


def study(claim: str, truth: str, rng: np.random.Generator, seeds: int) -> pd.DataFrame:
    """One simulated study for ``claim`` under ``truth`` (null, effect or a degenerate kind)."""
    p = CLAIMS[claim].protocol
    fid = dict.fromkeys(CELLS, 0.0)
    dloss = dict.fromkeys(CELLS, 1.0)
    recall = dict.fromkeys(CELLS, 0.3)
    hf = dict.fromkeys(CELLS, 0.0)
    q = 0.05  # fresh data: the 5 % quantile yardstick
    if claim in ("adas_beats_adam", "elu_ttur_adas_best"):
        a = p.cells[0]
        others = [c for c in CELLS if c != a]
        if claim == "adas_beats_adam":
            fid["adas-elu"] = -p.sesoi if truth == "effect" else 0.0
        else:  # least favourable null: equal to one cell, far better than the others
            for c in others:
                fid[c] = p.sesoi if truth == "effect" else 1.0
            if truth == "null":
                fid[others[0]] = 0.0
    elif claim == "dloss_inverse_fid":
        # configuration effects on FID and D loss: independent under the null, r = sesoi
        # (negative) between them under the effect; no link within a configuration
        z1, z2 = rng.normal(0, 1, len(CELLS)), rng.normal(0, 1, len(CELLS))
        rho = -p.sesoi if truth == "effect" else 0.0
        z2 = rho * z1 + math.sqrt(1 - rho**2) * z2
        fid = {c: 0.3 * v for c, v in zip(CELLS, z1, strict=True)}
        dloss = {c: 1.0 + 0.4 * v for c, v in zip(CELLS, z2, strict=True)}
    elif claim == "no_data_copying":
        q = 0.05 if truth == "effect" else 0.05 + p.margin
    elif claim == "hf_bias":
        hf = dict.fromkeys(CELLS, -p.sesoi if truth == "effect" else 0.0)
    elif claim == "best_fid_best_recall":
        fid["adas-elu-ttur"] = -1.0  # a clear best-FID configuration
        if truth == "null":  # its recall lower than another's by exactly the margin
            recall["adas-elu"] = 0.3 + p.margin
    df = _base(rng, seeds, fid, dloss, recall, hf, q)
    if truth not in ("null", "effect"):
        df = _degenerate(df, truth, rng)
    return df


def pooled_runs_rule(df: pd.DataFrame, alpha: float = 0.05) -> Verdict:
    """The retired rule of dloss_inverse_fid (version 1): Pearson r over all runs pooled,
    holds when r < 0 with two-sided p < alpha. Kept to show its false-positive rate."""
    from scipy import stats

    r, p = stats.pearsonr(df["d_loss_mean"], df["fid"])
    return HOLDS if p < alpha and r < 0 else INCONCLUSIVE


# --------------------------------------------------------------------------- memory rules
def _memory_study(claim: str, truth: str, rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for size in (16, 32):
        for w in (8, 16, 32, 64, 128):
            for bn in ("both", "d"):
                if truth == "effect":  # the paper's law: exponential growth, a 3 % saving
                    m = 0.5 * 2.0 ** (w / 16) if claim == "memory_exponential" else 0.2 + 0.001 * w**1.5
                    save = 1.03
                elif truth == "null":  # a power law; a 20 % saving
                    m, save = 0.2 + 0.001 * w**1.5, 1.20
                else:  # degenerate: nothing measured beside the d placement
                    m, save = 0.2 + 0.001 * w**1.5, 1.03
                m *= (size / 16) * (save if bn == "both" else 1.0) * (1 + rng.normal(0, 1e-4))
                rows.append({"image_size": size, "features": w, "batchnorm": bn,
                             "batch_size": 8, "optimizer": "adas", "device": "cpu",
                             "measured_peak_bytes": int(m * 2**20),
                             "estimate_bytes": int(0.95 * m * 2**20)})
    mf = memory_rows_frame(rows)
    if truth == "missing":
        mf = mf[(mf["batchnorm"] == "d") & (mf["features"] <= 16)]
    return mf


def _table3_study(truth: str, rng: np.random.Generator) -> pd.DataFrame:
    rows = [{"group": "baseline", "cell": "baseline", "status": "completed", "reference": True,
             "param_factor": "none", "param_side": "none", "blockiness": 0.08, "fid": 100.0}]
    n = 4 if truth == "missing" else 12
    level = 0.4 if truth == "effect" else 0.09
    cells = [(f, s) for f in paper.TABLE3_FACTORS for s in paper.TABLE3_SIDES][:n]
    for f, s in cells:
        rows.append({"group": f"{f}-{s}", "cell": f"{f}-{s}", "status": "completed",
                     "reference": False, "param_factor": f, "param_side": s,
                     "blockiness": level + rng.normal(0, 0.01), "fid": 150.0})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Row:
    claim: str
    scenario: str
    seeds: int
    reps: int
    rates: dict[Verdict, float]
    expect: str
    ok: bool
    alpha: float


def _rates(verdicts: Sequence[Verdict]) -> dict[Verdict, float]:
    n = len(verdicts)
    return {v: sum(x == v for x in verdicts) / n for v in Verdict}


def a_priori_seeds(alpha: float = 0.05, power: float = 0.8) -> int:
    """Seeds per configuration for the declared power at the declared smallest FID effect,
    from the pilot's per-seed sd (FID_SD)."""
    n = decide.seeds_for_power(FID_SESOI, FID_SD, alpha=alpha, power=power)
    return int(n or QUICK_SEEDS)


def calibrate(reps: int = 1000, seeds: int | None = None, seed: int = 0,
              claims: Sequence[str] | None = None,
              scenarios: Sequence[str] | None = None) -> list[Row]:
    """The calibration table: every registered rule (or ``claims``) under the null, the
    declared effect and each degenerate generator (or ``scenarios``), ``reps`` simulated
    studies each. Trials rules run at the a priori seeds (``seeds`` to override) and at the
    quick scale's 3; degenerate inputs at 3 seeds."""
    load_claim_modules()
    rng = np.random.default_rng(seed)
    n_pow = seeds or a_priori_seeds()
    keys = list(claims or CLAIMS)
    rows: list[Row] = []

    def want(name: str) -> bool:
        return scenarios is None or name in scenarios

    for key in keys:
        spec = CLAIMS[key]
        p = spec.protocol
        if spec.source == "memory" or key == "blurry_squares":
            for name, truth in (("effect", "effect"), ("null", "null"), ("missing", "missing")):
                if not want(name):
                    continue
                runs = max(10, reps // 50)  # deterministic measurements: few repeats suffice
                data = [(_table3_study(truth, rng) if key == "blurry_squares"
                         else _memory_study(key, truth, rng)) for _ in range(runs)]
                vs = [spec.evaluate(d, p) for d in data]
                got = [f.verdict if not f.untestable else UNTESTABLE for f in vs]
                r = _rates(got)
                expect = {"effect": (HOLDS, "holds"), "null": (FAILS, "does not hold"),
                          "missing": (UNTESTABLE, "untestable")}[name]
                rows.append(Row(key, name, 0, runs, r, expect[1], r[expect[0]] == 1.0, p.alpha))
            continue
        plan = [(NULL, n_pow), (EFFECT, n_pow)]
        if n_pow != QUICK_SEEDS:
            plan += [(NULL, QUICK_SEEDS), (EFFECT, QUICK_SEEDS)]
        plan += [(degenerate(d, key), QUICK_SEEDS) for d in DEGENERATE]
        if key == "no_data_copying":
            plan.append((degenerate("quarter-copies", key), QUICK_SEEDS))
        for sc, n in plan:
            if not want(sc.name):
                continue
            m = reps if sc.truth in ("null", "effect") else max(10, reps // 20)
            got, pooled = [], []
            for _ in range(m):
                df = study(key, sc.truth, rng, n)
                got.append(_decide_alone(spec, df))
                if key == "dloss_inverse_fid" and sc.truth == "null":
                    pooled.append(pooled_runs_rule(df, p.alpha))
            r = _rates(got)
            rows.append(Row(key, sc.name, n, m, r, sc.expect, sc.check(r, m, p.alpha), p.alpha))
            if pooled:
                rp = _rates(pooled)
                rows.append(Row("dloss_inverse_fid v1 (runs pooled)", "null", n, m, rp,
                                "holds <= alpha (+3 MC s.e.)", _fpr_ok(rp, m, p.alpha), p.alpha))
    return rows


def _decide_alone(spec, df: pd.DataFrame) -> Verdict:
    from .engine import decide_family

    return decide_family([(spec.protocol, spec.evaluate(df, spec.protocol))],
                         context=False)[0].verdict


def _fmt_rate(x: float) -> str:
    return f"{100 * x:.1f} %"


HEADER = ["Claim", "Truth", "Seeds", "Studies", "Holds", "Does not hold", "Inconclusive",
          "Untestable", "Required", "Met"]


def _cells(r: Row) -> list[str]:
    return [r.claim, r.scenario, str(r.seeds or "—"), str(r.reps),
            *[_fmt_rate(r.rates[v]) for v in (HOLDS, FAILS, INCONCLUSIVE, UNTESTABLE)],
            r.expect, "yes" if r.ok else "**no**"]


def calibration_text(rows: Sequence[Row]) -> str:
    widths = [max(len(h), *(len(_cells(r)[i]) for r in rows)) for i, h in enumerate(HEADER)]
    line = "  ".join(h.ljust(w) for h, w in zip(HEADER, widths, strict=True))
    out = [line]
    out += ["  ".join(c.ljust(w) for c, w in zip(_cells(r), widths, strict=True)) for r in rows]
    return "\n".join(out)


def calibration_markdown(rows: Sequence[Row], command: str = "", seed: int = 0) -> str:
    n_pow = a_priori_seeds()
    reps = max((r.reps for r in rows), default=0)
    head = (
        "# Calibration of the claim rules\n\n"
        f"Generated by `{command or 'xraygan claims calibrate --markdown docs/claims-calibration.md'}`"
        f" ({reps} simulated studies per scenario for the null and the effect, fewer for "
        f"degenerate inputs and deterministic rules; simulation seed {seed}). Each row: the share of "
        "simulated studies given each verdict. **null**: the claim is false, at the boundary "
        "of its null hypothesis (for the FPR); **effect**: the claim is true at its declared "
        "smallest effect (holds = power); degenerate generators: noise, exact copies, "
        "constant images, undertrained (and, for copying, a quarter copies among noise). "
        f"Trials rules run at {n_pow} seeds per configuration (the a priori number for power "
        f"0.8 at a 20 % FID effect with the quick scale's per-seed sd of log FID, {FID_SD}) "
        f"and at the quick scale's {QUICK_SEEDS}. 'Met': the false-positive rate is at most "
        "alpha plus three Monte-Carlo standard errors, a true claim is called 'does not hold' "
        "at most as often, degenerate inputs are untestable (copies: does not hold). The "
        "model behind each simulated study is in gan_core/claims/calibration.py.\n\n"
    )
    low = sorted({r.claim for r in rows if r.scenario == "effect" and r.seeds == n_pow
                  and r.rates[HOLDS] < 0.8 - _mc(0.8, r.reps)})
    tail = ("\nReading it: the `v1 (runs pooled)` rows are the retired correlation rule (Pearson r "
            "over all runs as if independent), kept to show that it fails its level; the rule "
            "that replaced it tests configuration means. Power below the declared 0.8 at the "
            f"a priori seeds ({', '.join(low) or 'none'}) means the claim needs more than a "
            "single two-group comparison's seeds: several comparisons that must all reject "
            "(intersection-union) or, for the correlation, more configurations than Table I's "
            "four. Under the null, 'does not hold' is the right answer where the claim is "
            "false by more than the margin (hf_bias, copying).\n")
    return (head + markdown(HEADER, [_cells(r) for r in rows], ["l"] * 3 + ["r"] * 5 + ["l", "l"])
            + tail)
