"""Claims decided by rules on deterministic measurements: memory (batch-norm saving, growth
law) and the blurry squares of compressed generators (Table III). Memory peaks repeat to the
byte on one machine class, so these rules compare measurements with the paper's numbers and
return their verdict directly (no p-value, no Holm family beyond their own); see
gan_core/claims/engine.py for the registry.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from xraygan import paper

from . import simulate
from .engine import FAILS, HOLDS, INCONCLUSIVE, Finding, describe, register_claim
from .frames import MIN_WIDTHS, bn_savings_frame, growth_frame, natural_values, table3_frame
from .protocol import ClaimProtocol, Precondition
from .stats import MeanCI, fmt, fmt_ci, intervals_overlap

BLOCKY_SHARE = 0.75  # the paper: all 12 compressed cells failed; >= 3/4 blocky confirms it
CLEAN_SHARE = 0.25  # <= 1/4 blocky contradicts it
IN_RANGE_SHARE = 0.75  # BN saving: share of pairs inside the paper's range to confirm it
MIN_CELLS = 6  # compressed cells with a blockiness number the Table III rule needs


BLOCKINESS_MARGIN = 0.05
"""Blockiness above the reference generator's by more than this is "blurry squares": one
threshold for the whole project (the blurry_squares claim and the compress-search study)."""


def _blockiness_margin() -> float:
    return BLOCKINESS_MARGIN


def _describe_memory(mf: pd.DataFrame | None) -> str:
    if mf is None or mf.empty:
        return "no data"
    def v(c: str) -> str:
        return "/".join(natural_values(mf[c]))

    return (f"{len(mf)} memory measurements: image {v('image_size')} px, widths "
            f"{v('features')}, BN {v('batchnorm')}, batch {v('batch_size')}, "
            f"optimizer {v('optimizer')}, device {v('device')}")


LO, HI = paper.BN_SAVING_PCT


@register_claim(ClaimProtocol(
    key="bn_saving", version=1,
    statement=f"Removing batch norm from G saves {LO} to {HI} % of memory",
    hypothesis=f"the measured saving lies within the paper's [{LO}, {HI}] %.", direction="none",
    metric="measured peak memory of one step, saving in % per (with, without BN in G) pair",
    cells=("*",),
    test=(f"holds if the median saving is within [{LO}, {HI}] % and at least "
          f"{IN_RANGE_SHARE:.0%} of the pairs are; does not hold if the median is outside; "
          "inconclusive otherwise."),
    family="memory", preconditions=(Precondition("pair", "at least one measured pair differing "
                                                 "only in BN in G", 1),),
    studies=("batchnorm", "memory"), transfer="other devices and allocators",
    params=(("low_pct", LO), ("high_pct", HI), ("in_range_share", IN_RANGE_SHARE))),
    reads=lambda i: i.memory, source="memory",
    simulate=lambda truth, rng, seeds: simulate.memory_study("bn_saving", truth, rng))
def bn_saving(memory: pd.DataFrame | None, p: ClaimProtocol) -> Finding:
    """``memory``: a memory frame (reports.tables.memory_frame / memory_rows_frame)."""
    lo, hi, share = p.param("low_pct"), p.param("high_pct"), p.param("in_range_share")
    bf = bn_savings_frame(memory) if memory is not None and not memory.empty else pd.DataFrame()
    if not bf.empty:
        bf = bf[bf["saving_measured_pct"].notna()]
    if bf.empty:
        return Finding("no measured pair of configurations differing only in BN in G",
                       _describe_memory(memory),
                       untestable="pair: no measured pair differing only in BN in G (run the "
                       "batchnorm study or xraygan memory --batchnorm-compare)")
    s = bf["saving_measured_pct"].to_numpy(dtype=float)
    inside = (s >= lo) & (s <= hi)
    median = float(np.median(s))
    if not lo <= median <= hi:
        verdict, why = FAILS, f"median saving {median:.2f} % outside [{lo}, {hi}] %"
    elif inside.mean() >= share:
        verdict, why = HOLDS, f"median and {inside.mean():.0%} of the pairs inside the range"
    else:
        verdict, why = INCONCLUSIVE, f"median inside, but only {inside.mean():.0%} of the pairs"
    ev = (f"median measured saving {median:.2f} % ({fmt(s.min(), 2)} to {fmt(s.max(), 2)} %); "
          f"{int(inside.sum())} of {len(s)} pairs within the paper's {lo}-{hi} %")
    details = "; ".join(
        f"{w} → {o}: {fmt(m, 2)} % measured, {fmt(e, 2)} % estimated"
        for w, o, m, e in zip(bf["with"], bf["without"], bf["saving_measured_pct"],
                              bf["saving_estimate_pct"], strict=True))
    return Finding(ev, _describe_memory(memory), details, verdict=verdict, reason=why)


@register_claim(ClaimProtocol(
    key="memory_exponential", version=1,
    statement="Memory grows exponentially with feature-map width (Fig. 7, 8)",
    hypothesis="an exponential in the width predicts the measured peak better than a power law.",
    direction="none", metric="measured peak memory per (image size, BN placement) series",
    cells=("*",),
    test=("per series, fit m = a w^k + c and m = a e^(bw) + c (xraygan.memory.fit): with >= 5 "
          "widths the law that, fitted without the largest width, predicts it with the smaller "
          "error wins (R² of both is ~1 on smooth data and does not decide); with 4 widths, the "
          "higher R². Holds if every series favours the exponential, does not hold if every "
          "series favours the power law, inconclusive otherwise."),
    family="memory", preconditions=(Precondition("widths", f"at least {MIN_WIDTHS} widths "
                                                 "measured at one image size", MIN_WIDTHS),),
    studies=("fmaps", "memory"), transfer="widths outside the measured range"),
    reads=lambda i: i.memory, source="memory",
    simulate=lambda truth, rng, seeds: simulate.memory_study("memory_exponential", truth, rng))
def memory_exponential(memory: pd.DataFrame | None, p: ClaimProtocol) -> Finding:
    """``memory``: a memory frame (reports.tables.memory_frame / memory_rows_frame)."""
    gf = growth_frame(memory) if memory is not None and not memory.empty else pd.DataFrame()
    if not gf.empty:
        gf = gf[gf["quantity"] == "measured"]
    if gf.empty:
        return Finding(f"fewer than {MIN_WIDTHS} widths measured at any image size",
                       _describe_memory(memory),
                       untestable=f"widths: fewer than {MIN_WIDTHS} widths measured at any image "
                       "size (run the fmaps study or xraygan memory --features ...)")

    def vote(r: pd.Series) -> str:
        e, q = r["extrap_err_exponential"], r["extrap_err_power"]
        if math.isfinite(e) and math.isfinite(q):
            return "exponential" if abs(e) < abs(q) else "power"
        return "exponential" if r["r2_exponential"] > r["r2_power"] else "power"

    votes = gf.apply(vote, axis=1).tolist()
    verdict = (HOLDS if all(b == "exponential" for b in votes)
               else FAILS if all(b == "power" for b in votes) else INCONCLUSIVE)
    ev = (f"{votes.count('power')} of {len(votes)} (size, BN) series favour the power law, "
          f"{votes.count('exponential')} the exponential; power exponents k "
          f"{gf['power_exponent'].min():.2f} to {gf['power_exponent'].max():.2f}")
    details = "; ".join(f"{r['image_size']} px (BN {r['batchnorm']}): power k = "
                        f"{r['power_exponent']:.2f}, R² {r['r2_power']:.4f} vs exponential "
                        f"{r['r2_exponential']:.4f}; extrapolation error power "
                        f"{fmt(r['extrap_err_power'])}, exp. {fmt(r['extrap_err_exponential'])} → "
                        f"{v}" for v, (_, r) in zip(votes, gf.iterrows(), strict=True))
    return Finding(ev, _describe_memory(memory), details, verdict=verdict,
                   reason=f"{votes.count('exponential')} of {len(votes)} series exponential")


@register_claim(ClaimProtocol(
    key="blurry_squares", version=1,
    statement=("Compressed GANs (fewer, larger-stride layers, FC layers, smaller latent or "
               "widths) produce blurry squares (Table III: all 12 failed, by eye)"),
    hypothesis="most compressed cells are blockier than the uncompressed baseline.",
    direction="none", metric="blockiness of the last sample grid (xraygan.metrics.artifacts)",
    cells=("*",),
    test=("a compressed cell is blocky if its blockiness exceeds the baseline's by more than "
          "compress-search's margin (with >= 2 seeds also with disjoint 95 % CIs); holds if >= "
          f"{BLOCKY_SHARE:.0%} of the cells with a number are blocky, does not hold if <= "
          f"{CLEAN_SHARE:.0%}, inconclusive between."),
    family="table3", preconditions=(Precondition("cells", f"the baseline and at least {MIN_CELLS} "
                                                 "compressed cells with a blockiness number",
                                                 MIN_CELLS),),
    studies=("table3",), transfer="compressions outside the 12-cell grid",
    params=(("blocky_share", BLOCKY_SHARE), ("clean_share", CLEAN_SHARE))),
    reads=lambda i: i.first("table3"),
    simulate=lambda truth, rng, seeds: simulate.table3_study(truth, rng))
def blurry_squares(table3: pd.DataFrame | None, p: ClaimProtocol) -> Finding:
    margin = _blockiness_margin()
    if table3 is None or table3.empty:
        return Finding("no table3 study")
    tf = table3_frame(table3)
    base = tf[tf["factor"] == "none"]
    cells = tf[(tf["factor"] != "none") & tf["blockiness"].map(lambda c: c.n > 0)]
    if base.empty or base.iloc[0]["blockiness"].n == 0 or len(cells) < MIN_CELLS:
        return Finding(f"baseline blockiness missing or only {len(cells)} compressed cells with a "
                       "number", describe(table3), frame=table3,
                       untestable=f"cells: baseline missing or {len(cells)} compressed cells "
                       f"with a number (need {MIN_CELLS})")
    b = base.iloc[0]["blockiness"]

    def blocky(c: MeanCI) -> bool:
        if c.mean - b.mean <= margin:
            return False
        if c.n >= 2 and b.n >= 2:
            return not intervals_overlap(c, b)
        return True

    flags = cells["blockiness"].map(blocky)
    share = float(flags.mean())
    verdict = (HOLDS if share >= p.param("blocky_share") else
               FAILS if share <= p.param("clean_share") else INCONCLUSIVE)
    ev = (f"{int(flags.sum())} of {len(cells)} compressed cells blocky (baseline blockiness "
          f"{fmt_ci(b)}, margin {margin})")
    details = ", ".join(f"{g} {fmt_ci(c)}{' (blocky)' if f else ''}" for g, c, f in
                        zip(cells["group"], cells["blockiness"], flags, strict=True))
    return Finding(ev, describe(table3), details, verdict=verdict,
                   reason=f"{share:.0%} of the compressed cells blocky", frame=table3)
