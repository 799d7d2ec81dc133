"""The paper's claims, each decided on our runs by a protocol registered before the data.

A claim is one declaration: a :class:`~.claim_protocol.ClaimProtocol` (hypothesis, direction,
metric, cells, test, family, alpha, smallest effect of interest, equivalence margin,
preconditions, version) and the function that computes its test from the data::

    @register_claim(ClaimProtocol(key="my_claim", ...), reads=lambda i: i.first("table1"))
    def my_claim(trials, protocol) -> Finding: ...

A study lists the claims its page shows in its StudySpec (``claims=``) or the protocol names
the study (``studies=``); ``xraygan sweep`` registers those protocols in the study before its
first trial. :func:`evaluate_claims` then decides every claim: a failed precondition makes it
"untestable" (named); otherwise the claim's p-values are Holm-adjusted within its family and
gan_core/claims/decide.py turns them into a verdict (gan_core/claims/verdicts.py). Rules on deterministic
measurements (memory, blockiness) return their verdict directly. The claim modules are
imported by the package (gan_core/claims/__init__.py), so importing any part of
xraygan.claims registers every claim. Numbers in a claim's statement and its evidence go
through one formatter (:func:`num`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import math
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from xraygan.trials import completed

from . import decide
from .frames import natural_values
from .protocol import ClaimProtocol, Precondition
from .stats import fmt
from .verdicts import FAILS, HOLDS, INCONCLUSIVE, UNTESTABLE, Verdict

__all__ = ["FAILS", "HOLDS", "INCONCLUSIVE", "UNTESTABLE", "Claim", "ClaimInputs",
           "ClaimProtocol", "Finding", "Precondition", "Verdict", "evaluate_claims",
           "register_claim"]

ALPHA = 0.05
FID_SESOI = math.log(1 / 0.8)  # 20 % lower FID, on the log scale the tests use
FID_MARGIN = math.log(1.1)  # within 10 %: no difference the claims are about


def num(value: float, digits: int = 1) -> str:
    """The one formatter of numbers quoted in claims (statement and evidence alike)."""
    return fmt(float(value), digits)


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Finding:
    """What a claim function returns: the evidence and either its test (p-values, decided
    after Holm within the family), a direct verdict (rules on deterministic measurements), or
    the precondition that failed."""

    evidence: str
    data: str = "no data"
    details: str = ""
    test: decide.TestResult | None = None
    verdict: Verdict | None = None
    untestable: str = ""  # "precondition key: what failed"
    reason: str = ""  # why a direct verdict came out as it did
    frame: pd.DataFrame | None = field(default=None, repr=False, compare=False)  # for the scope
    n_per_cell: str = ""  # the values each compared cell contributed, e.g. "adas-elu 3, adam-elu 2"
    excluded: str = ""  # runs left out of the test and why (diverged, not past T0), counted


@dataclass(frozen=True)
class Claim:
    key: str
    statement: str
    verdict: Verdict
    evidence: str
    rule: str
    data: str
    details: str = ""
    family: str = ""
    p: float = math.nan  # the claim's own p (the test of H1)
    p_adjusted: float = math.nan  # Holm within the family
    reason: str = ""  # why this verdict (failed precondition, TOST, opposite effect)
    scope: str = ""  # where the verdict was decided and what it does not transfer to
    version: int = 0
    sha256: str = ""
    registration: str = ""  # registered before the data, or how it differs from the code's
    power: str = ""  # seeds needed a priori at the declared smallest effect
    population: str = ""  # the comparable runs it was decided on (reports/load.py)
    estimate: float = math.nan  # the observed effect in the test's units (NaN when untestable)
    low: float = math.nan  # its 95 % interval
    high: float = math.nan
    n_per_cell: str = ""  # values per compared cell the test used
    excluded: str = ""  # runs left out of the test and why, counted
    family_size: int = 0  # the Holm family's size (registered claims, untestable ones counted)


# --------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class ClaimInputs:
    """The data claims read: trials frames keyed by study registry name (table1, table3,
    batchnorm, fmaps, seeds, runs, ...) and a memory frame."""

    frames: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    memory: pd.DataFrame | None = None

    def first(self, *kinds: str) -> pd.DataFrame | None:
        """The frame of the first of ``kinds`` present."""
        for k in kinds:
            if self.frames.get(k) is not None:
                return self.frames[k]
        return None

    def all_trials(self) -> pd.DataFrame | None:
        """Every study's trials in one frame (claims about all runs, e.g. memorization)."""
        parts = [f for f in self.frames.values() if f is not None and not f.empty]
        return pd.concat(parts, ignore_index=True) if parts else None


ClaimFn = Callable[[Any, ClaimProtocol], Finding]
Simulator = Callable[[str, np.random.Generator, int], Any]
"""``simulate(truth, rng, seeds)``: one simulated input for the claim's ``reads`` (a trials
frame, a memory frame) under ``truth`` (a scenario name of gan_core/claims/calibration.py)."""


@dataclass(frozen=True)
class ClaimSpec:
    protocol: ClaimProtocol
    evaluate: ClaimFn
    reads: Callable[[ClaimInputs], Any]
    source: str = "trials"  # "trials": decided per population of comparable runs; "memory"
    simulate: Simulator | None = None  # the calibration's model of this claim's data

    @property
    def key(self) -> str:
        return self.protocol.key

    @property
    def studies(self) -> tuple[str, ...]:
        return self.protocol.studies

    @functools.cached_property
    def source_sha256(self) -> str:
        return decision_sha256(self.evaluate)


CLAIMS: dict[str, ClaimSpec] = {}  # in registration order: the order of the report
SOURCES = ("trials", "memory")


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _code_names(c)
    return names


def decision_sha256(fn: Callable[..., Any]) -> str:
    """sha256 of the source that decides a claim: ``fn`` and every function of
    xraygan.claims it calls, directly or through a module (``decide.welch``), transitively.
    Registration binds the protocol's data by its hash and the code by this one: a change
    to either without a version bump fails tests/claims/test_claims_golden.py."""
    seen: dict[str, str] = {}
    todo = [inspect.unwrap(fn)]
    while todo:
        f = todo.pop()
        name = f"{f.__module__}.{f.__qualname__}"
        if name in seen:
            continue
        seen[name] = inspect.getsource(f)
        glb = f.__globals__
        names = _code_names(f.__code__)
        for n in names:
            obj = glb.get(n)
            if isinstance(obj, types.ModuleType) and obj.__name__.startswith("xraygan.claims"):
                todo += [v for k in names if inspect.isfunction(v := getattr(obj, k, None))
                         and v.__module__ == obj.__name__]
            elif inspect.isfunction(obj) and obj.__module__.startswith("xraygan.claims"):
                todo.append(obj)
    text = "\n".join(seen[k] for k in sorted(seen))
    return hashlib.sha256(text.encode()).hexdigest()


def register_claim(protocol: ClaimProtocol, *, reads: Callable[[ClaimInputs], Any],
                   source: str = "trials", simulate: Simulator | None = None,
                   ) -> Callable[[ClaimFn], Callable[..., Claim]]:
    """Register a claim: its protocol and the function computing its test from what ``reads``
    picks (``source`` "trials": trials frames, decided per population of comparable runs;
    "memory": the memory frame), and ``simulate``, the model of its data that
    ``xraygan claims calibrate`` runs it on (a claim without one is refused there). The
    decorated function, called with the data (and optionally another protocol), returns the
    decided :class:`Claim` (a family of one)."""
    if source not in SOURCES:
        raise ValueError(f"claim {protocol.key}: source {source!r}; expected one of {SOURCES}")

    def decorator(fn: ClaimFn) -> Callable[..., Claim]:
        if protocol.key in CLAIMS:
            raise KeyError(f"claim {protocol.key!r} is registered twice")

        @functools.wraps(fn)
        def claim(data: Any, proto: ClaimProtocol | None = None) -> Claim:
            p = proto or protocol
            return decide_family([(p, fn(data, p))])[0]

        claim.key = protocol.key  # type: ignore[attr-defined]
        claim.protocol = protocol  # type: ignore[attr-defined]
        CLAIMS[protocol.key] = ClaimSpec(protocol, fn, reads, source, simulate)
        return claim

    return decorator


def claim_keys(source: str) -> tuple[str, ...]:
    """Keys of the registered claims reading ``source`` ("trials" or "memory")."""
    return tuple(k for k, s in CLAIMS.items() if s.source == source)


def protocols() -> dict[str, ClaimProtocol]:
    """Every registered claim's protocol, in report order."""
    return {k: s.protocol for k, s in CLAIMS.items()}


def decision_sources() -> dict[str, str]:
    """Every registered claim's :func:`decision_sha256`, for the registration."""
    return {k: s.source_sha256 for k, s in CLAIMS.items()}


def claims_for_study(kind: str, declared: Sequence[str] = ()) -> tuple[str, ...]:
    """Keys of the claims a study bears on: its StudySpec's list plus the claims whose
    protocol names the study, in registration order."""
    want = set(declared)
    unknown = sorted(want - set(CLAIMS))
    if unknown:
        raise KeyError(f"study {kind!r} declares unknown claim(s) {', '.join(unknown)}; "
                       f"registered: {', '.join(CLAIMS)}")
    return tuple(k for k, c in CLAIMS.items() if k in want or kind in c.studies)


# --------------------------------------------------------------------------- deciding
def _untestable(f: Finding) -> str:
    if f.untestable:
        return f.untestable
    if f.verdict is not None:
        return ""
    if f.test is None:
        return f"data: {f.evidence}"
    return f.test.untestable


def decide_family(items: Sequence[tuple[ClaimProtocol, Finding]], *,
                  context: bool = True) -> list[Claim]:
    """Verdicts of claims decided together: Holm within each family, per kind of p-value,
    over the family's size among ``items`` (the registered claims: an untestable claim still
    counts, as a hypothesis that was not rejected). ``context=False`` skips the scope and a
    priori power lines (simulations need verdicts)."""
    adjusted: dict[int, tuple[float, float]] = {}
    families: dict[str, list[int]] = {}
    sizes: dict[str, int] = {}
    for i, (p, f) in enumerate(items):
        if f.verdict is None:
            sizes[p.family] = sizes.get(p.family, 0) + 1
            if not _untestable(f):
                families.setdefault(p.family, []).append(i)
    for fam, idx in families.items():
        cols = [decide.holm([getattr(items[i][1].test, k) for i in idx], sizes[fam])
                for k in ("p_holds", "p_against")]
        for j, i in enumerate(idx):
            adjusted[i] = (cols[0][j], cols[1][j])
    out = []
    for i, (p, f) in enumerate(items):
        raw = adj = est = lo = hi = math.nan
        if why := _untestable(f):
            v = UNTESTABLE
        elif f.verdict is not None:
            v, why = f.verdict, f.reason
        else:
            assert f.test is not None
            raw, adj = f.test.p_holds, adjusted[i][0]
            est, lo, hi = f.test.estimate, f.test.low, f.test.high
            v, why = decide.verdict(*adjusted[i], p.alpha)
            if f.test.note:
                why = f"{why}; {f.test.note}"
        out.append(Claim(p.key, p.statement, v, f.evidence, p.rule_text(), f.data, f.details,
                         p.family, raw, adj, why, scope(f.frame, p) if context else "",
                         p.version, p.sha256(), power=power_line(f.frame, p) if context else "",
                         estimate=est, low=lo, high=hi, n_per_cell=f.n_per_cell,
                         excluded=f.excluded, family_size=sizes.get(p.family, 0)))
    return out


def evaluate_claims(frames: Mapping[str, pd.DataFrame], memory: pd.DataFrame | None = None,
                    registered: Mapping[str, ClaimProtocol] | None = None, *,
                    keys: Sequence[str] | None = None, timing: str = "") -> list[Claim]:
    """Every registered claim (or ``keys``), from trials frames keyed by study kind (one
    population: never pool studies of different scale, data or FID N; see build.py) and a
    memory frame. ``registered``: the protocols the studies registered before their first
    trial; they decide when this code implements their version, and where the code's differ
    both are shown. A registered version this code does not implement cannot be replayed:
    the code's rule decides and says so. None: the studies registered none (made before
    registration existed), the code's protocols decide, said in each claim. ``timing``: what
    the report found about the registration's time against the first trial's start."""
    inputs = ClaimInputs(frames, memory)
    specs = [CLAIMS[k] for k in (keys if keys is not None else CLAIMS)]
    data = [s.reads(inputs) for s in specs]
    code = [(s.protocol, s.evaluate(d, s.protocol)) for s, d in zip(specs, data, strict=True)]
    code_claims = decide_family(code)
    when = f" {timing}" if timing else ""
    if registered is None:
        return [dataclasses.replace(c, registration="not registered before the data (the "
                                    f"study predates registration): decided by the code's "
                                    f"rule, version {c.version}") for c in code_claims]
    used = []
    for s, d, (_, found) in zip(specs, data, code, strict=True):
        p = registered.get(s.key, s.protocol)
        if p.version != s.protocol.version:
            p = s.protocol
        used.append((p, found if p == s.protocol else s.evaluate(d, p)))
    out = []
    for c, mine in zip(code_claims, decide_family(used), strict=True):
        reg = registered.get(c.key)
        if reg is None:
            note = (f"not in the study's registration (added later): decided by the code's "
                    f"rule, version {c.version}")
        elif reg.version != c.version:
            note = (f"registered version {reg.version} (sha256 {reg.sha256()[:12]}) is not the "
                    f"code's version {c.version}, which cannot replay it: decided by the code's "
                    f"rule, version {c.version}, not pre-registered")
        elif mine.sha256 == c.sha256:
            note = f"registered: version {mine.version}, sha256 {mine.sha256[:12]}.{when}"
        else:
            note = (f"registered version {mine.version} (sha256 {mine.sha256[:12]}) differs from "
                    f"the code's (sha256 {c.sha256[:12]}): the registered one decided.{when} "
                    f"The code's rule would say **{c.verdict}**: {c.rule}")
        out.append(dataclasses.replace(mine, registration=note.rstrip()))
    return out


# --------------------------------------------------------------------------- scope, power
PAPER_SETUP = {"image_size": 64, "data": "VinBigData chest X-rays (DICOM)",
               "length": "150 epochs", "fid_n": 10000}


def _vals(df: pd.DataFrame, col: str) -> str:
    if df is None or col not in df.columns:
        return "?"
    return "/".join(natural_values(df[col])) or "?"


def scope(df: pd.DataFrame | None, p: ClaimProtocol) -> str:
    """Where a verdict was decided (scale, data, image size, length, FID sample size) and
    what it does not transfer to."""
    if df is None or df.empty:
        return "no data"
    size, data = _vals(df, "image_size"), _vals(df, "data_source")
    n_fid = _vals(df, "fid_n" if "fid_n" in df.columns else "fid_n1")
    n_fid = "no" if n_fid == "0" else n_fid
    where = (f"{_vals(df, 'scale') or '?'} scale: {data} data ({_vals(df, 'num_images')} "
             f"images), {size} px, {_vals(df, 'steps')} steps of batch {_vals(df, 'batch_size')}, "
             f"FID on {n_fid} generated samples")
    differs = []
    if size != str(PAPER_SETUP["image_size"]):
        differs.append(f"{PAPER_SETUP['image_size']} px")
    if "dicom" not in data:
        differs.append(PAPER_SETUP["data"])
    if _vals(df, "scale") != "full":
        differs.append(f"the paper's {PAPER_SETUP['length']}")
    if n_fid != str(PAPER_SETUP["fid_n"]):
        differs.append("FID at another sample size (FID is biased by N)")
    extra = [p.transfer] if p.transfer else []
    nope = "; ".join(differs + extra)
    return f"{where}. Does not transfer to: {nope or 'settings other than these'}"


def power_line(df: pd.DataFrame | None, p: ClaimProtocol) -> str:
    """A priori seeds per cell for the protocol's power at its declared smallest effect, from
    this study's per-seed spread of the metric as a pilot (FID comparisons only). "Holds"
    tests beyond ``holds_at``, so the effect to detect is the distance from it; a claim that
    needs k comparisons to reject together (intersection-union over k + 1 cells) plans each
    for power ** (1 / k)."""
    if df is None or df.empty or not math.isfinite(p.sesoi) or "fid" not in p.metric.lower() \
            or "fid" not in df.columns or p.cells == ("*",):
        return ""
    done = completed(df)
    groups = [np.log(g["fid"].astype(float).clip(lower=1e-9)).to_numpy()
              for _, g in done.groupby("group") if len(g) >= 2]
    sd, dof = decide.pooled_sd(groups)
    k = max(1, len(p.cells) - 1)
    each = p.power ** (1 / k)
    n = decide.seeds_for_power(p.sesoi - abs(p.holds_at), sd, alpha=p.alpha, power=each)
    if n is None:
        return ""
    parts = (f"; {k} comparisons must all reject, each planned for power {each:.3f}"
             if k > 1 else "")
    return (f"{n} seeds per cell for power {p.power:g} at the declared smallest effect "
            f"({p.sesoi:.3f} in log FID, i.e. {100 * (1 - math.exp(-p.sesoi)):.0f} % lower "
            f"FID) tested beyond {abs(p.holds_at):.3f}, one-sided alpha {p.alpha:g}{parts}, from "
            f"this study's pooled per-seed sd {sd:.3f} ({dof} df) as the pilot")


# --------------------------------------------------------------------------- helpers
def describe(df: pd.DataFrame | None) -> str:
    """Data and scale of a trials frame, in one line."""
    if df is None or df.empty:
        return "no data"
    done = completed(df)
    return (f"study {_vals(df, 'study')} (scale {_vals(df, 'scale')}), data "
            f"{_vals(df, 'data_source')}, {_vals(df, 'image_size')} px, {_vals(df, 'steps')} "
            f"steps, batch {_vals(df, 'batch_size')}; {len(done)} completed of {len(df)} trials")


def cell_values(df: pd.DataFrame, group: str, column: str) -> np.ndarray:
    """The completed runs' values of ``column`` in configuration ``group``."""
    if column not in df.columns:
        return np.zeros(0)
    keep = (df["status"].to_numpy() == "completed") & (df["group"].to_numpy() == group)
    return df[column].to_numpy(dtype=float)[keep]


COPY_LIMIT = 0.5  # a configuration whose runs hand back this share of training images copies


def not_copying(df: pd.DataFrame, cells: Sequence[str], p: ClaimProtocol) -> str:
    """'' unless some cell's mean copy fraction (the larger of the feature and pixel spaces)
    exceeds the registered limit (precondition ``not_copying``): a generator that hands back
    its training images has the training set's FID, precision and spectrum, which says
    nothing about generating them."""
    if "mem_copy_fraction" not in df.columns:
        return ""
    pre = p.precondition("not_copying")
    bad = []
    for g in cells:
        f = np.fmax(cell_values(df, g, "mem_copy_fraction"),
                    cell_values(df, g, "mem_px_copy_fraction")
                    if "mem_px_copy_fraction" in df.columns else cell_values(df, g, "mem_copy_fraction"))
        if np.isfinite(f).any() and float(np.nanmean(f)) > pre.threshold:
            bad.append(f"{g} copy fraction {float(np.nanmean(f)):.2f}")
    return f"not_copying ({pre.text}): " + ", ".join(bad) if bad else ""


NOT_COPYING = Precondition("not_copying", f"no compared configuration's mean copy fraction "
                           f"above {COPY_LIMIT:g}: a generator handing back training images "
                           "scores the training set, not what it generates", COPY_LIMIT)

MIN_SEEDS = 2
SEEDS = Precondition("seeds", f"every registered cell present with at least {MIN_SEEDS} "
                     "completed seeds that have the metric (a diverged or failed run is counted "
                     "and shown, never silently dropped)", MIN_SEEDS)


def seeds_short(df: pd.DataFrame, cells: Sequence[str], column: str, p: ClaimProtocol,
                keep: Mapping[str, np.ndarray] | None = None) -> tuple[str, str, str]:
    """(failed precondition or '', values per cell, runs left out) for ``cells`` of ``df``:
    each cell needs the registered minimum of completed seeds with a finite ``column``
    (``keep``: per cell, a mask over its completed runs of those the test may use)."""
    need = int(p.precondition("seeds").threshold) if any(
        q.key == "seeds" for q in p.preconditions) else MIN_SEEDS
    short, counts, out = [], [], []
    status = df["status"].astype(str).to_numpy() if "status" in df.columns else np.array([])
    group = df["group"].astype(str).to_numpy() if "group" in df.columns else np.array([])
    for g in cells:
        mine = group == g
        total = int(mine.sum())
        done = mine & (status == "completed")
        vals = cell_values(df, g, column)
        ok = np.isfinite(vals)
        if keep is not None and g in keep:
            ok &= keep[g]
        failed = total - int(done.sum())
        no_value = int((~np.isfinite(vals)).sum())
        dropped = int(np.isfinite(vals).sum() - ok.sum())
        counts.append(f"{g} {int(ok.sum())}")
        why = []
        if failed:
            bad = sorted(set(status[mine & ~done]))
            why.append(f"{failed} {'/'.join(bad)}")
        if no_value:
            why.append(f"{no_value} without {column}")
        if dropped:
            why.append(f"{dropped} not past T0")
        if why:
            out.append(f"{g}: " + ", ".join(why) + f" of {total}")
        if total == 0:
            short.append(f"{g} missing")
        elif ok.sum() < need:
            short.append(f"{g} {int(ok.sum())} of {total} runs usable")
    fail = (f"seeds ({SEEDS.text.replace(str(MIN_SEEDS), str(need), 1)}): " + "; ".join(short)
            if short else "")
    return fail, ", ".join(counts), "; ".join(out)
