"""Build the report: one markdown page per study (tables, figures, claims, protocol) and an
index page linking them, from Optuna studies and run folders only.

    out/
      index.md            the studies, every claim with its verdict
      table1-quick.md     one page per study
      table1-quick/       its figures (PNG)
      runs.md, runs/      run folders given with --runs
      memory-NAME.md      xraygan memory JSON/CSV files given with --memory
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from xraygan import paper
from xraygan.ablations import STUDIES, load_studies
from xraygan.ablations.compress_search import finding
from xraygan.ablations.spec import DEFAULT_SECTIONS
from xraygan.claims.engine import Claim, claim_keys, claims_for_study, evaluate_claims
from xraygan.claims.protocol import (
    REGISTERED_AT,
    REGISTRATION_ATTR,
    ClaimProtocol,
    registered_protocols,
)
from xraygan.errors import XrayganError
from xraygan.metrics.spectrum import CUTOFF
from xraygan.runs import atomic_write_text
from xraygan.safeio import read_bounded
from xraygan.trials import completed

from . import figures, metric_figures, tables, trends
from .anatomy import anatomy_markdown, utility_markdown
from .claim_page import claim_title, claims_markdown, summary_table
from .load import (
    by_population,
    excluded,
    fill_sample_metrics,
    load_study,
    memory_json_rows,
    population_label,
    runs_frame,
    study_attrs,
    trials_frame,
    with_fid_n,
)
from .protocol import fid_protocol, protocol_markdown, redact_paths
from .quality import quality_markdown

DEFAULT_OUT = Path("reports/out")
MAX_PANELS = 12  # loss-curve and sample panels per figure
MAX_COLLAPSE = 3  # collapse figures per study

RUNS_SECTIONS = ("trials", "table1", "quality", "anatomy", "correlation", "throughput", "dynamics",
                 "samples", "spectrum", "memorization", "collapse", "claims")
"""Sections of the page of run folders given with --runs (not a registered study)."""
MEMORY_KINDS = ("batchnorm", "fmaps", "memory")


@dataclass
class StudyData:
    name: str  # Optuna study name (table1-quick) or "runs"
    kind: str  # registry name of the study (table1, ...) or "runs"
    frame: pd.DataFrame
    attrs: dict[str, Any] = field(default_factory=dict)
    trial_attrs: list[dict[str, Any]] = field(default_factory=list)  # raw user attrs, per trial


@dataclass
class Report:
    index: Path
    pages: dict[str, Path]
    figures: dict[str, list[Path]]
    claims: list[Claim]
    notes: list[str]


def load_inputs(studies: Sequence[str], storage: str | None = None,
                run_paths: Sequence[str | Path] = (),
                memory_files: Sequence[str | Path] = (),
                studies_dir: str | Path = "studies") -> list[StudyData]:
    out = []
    for name in studies:
        study = load_study(name, storage, studies_dir)
        attrs = study_attrs(study)
        df = trials_frame(study)
        kind = attrs.get("study") or (df["study"].dropna().iloc[0] if len(df) else name)
        if kind == "table3":  # a number in every cell: score failed runs' last samples
            df = fill_sample_metrics(df)
        df = with_fid_n(df, attrs.get("scale"))
        out.append(StudyData(name, str(kind), df, attrs,
                             [dict(t.user_attrs) for t in study.trials]))
    if run_paths:
        out.append(StudyData("runs", "runs", with_fid_n(runs_frame(run_paths))))
    for path in memory_files:
        mf = tables.memory_rows_frame(memory_json_rows(path))
        mf["source"] = str(path)
        out.append(StudyData(f"memory-{Path(path).stem}", "memory", mf, {"source": str(path)}))
    return out


def memory_of(d: StudyData) -> pd.DataFrame:
    """The memory frame of a study (its trials' measured peaks) or of a memory file."""
    if d.kind == "memory":
        return d.frame
    mf = tables.memory_frame(d.frame)
    if not mf.empty:
        mf["source"] = d.name
    return mf


@dataclass
class Population:
    """Comparable runs (reports/load.py POPULATION_COLUMNS): the frames of each study kind in
    it, the studies they came from and the protocols those studies registered."""

    key: tuple[str, ...]
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    studies: list[str] = field(default_factory=list)
    registered: dict[str, ClaimProtocol] | None = None
    notes: list[str] = field(default_factory=list)
    timing: str = ""  # the registration's time against the first trial's start, in words

    @property
    def label(self) -> str:
        return population_label(self.key)


def registration_timing(d: StudyData) -> str:
    """Whether the study's claims were registered before its first trial started: the
    registration's stored time against the earliest ``started`` of its trials."""
    reg = d.attrs.get(REGISTRATION_ATTR)
    at = reg.get(REGISTERED_AT, "") if isinstance(reg, Mapping) else ""
    starts = sorted(str(v) for v in d.frame.get("started", pd.Series(dtype=object)).dropna()
                    if str(v))
    if not at:
        return (f"Study {d.name} stored no registration time (a sweep older than that check): "
                "whether it preceded the first trial cannot be checked.")
    if not starts:
        return f"Study {d.name} registered at {at}; no trial has a start time."
    try:
        before = datetime.datetime.fromisoformat(at) <= datetime.datetime.fromisoformat(starts[0])
    except ValueError:
        return f"Study {d.name}: registration time {at!r} is not an ISO 8601 time: not checked."
    if before:
        return f"Study {d.name} registered at {at}, before its first trial started ({starts[0]})."
    return (f"Study {d.name} registered at {at}, AFTER its first trial started ({starts[0]}): "
            "not registered before the data.")


def _refuse_twice(data: Sequence[StudyData]) -> None:
    """A study given twice (by name, or two inputs sharing run folders) would count its runs
    twice: refused with a one-line error."""
    runs: dict[str, set[str]] = {}
    for d in data:
        if d.kind == "memory":
            continue
        if d.name in runs:
            raise XrayganError(f"study {d.name} is given twice: its runs would count twice; "
                               "give each study once")
        mine = {str(r) for r in d.frame.get("run_dir", pd.Series(dtype=object)).dropna() if r}
        for other, theirs in runs.items():
            if shared := mine & theirs:
                raise XrayganError(f"{other} and {d.name} share {len(shared)} run folder(s) "
                                   f"(e.g. {sorted(shared)[0]}): the same runs would count "
                                   "twice; give each study once")
        runs[d.name] = mine


def populations(data: Sequence[StudyData]) -> list[Population]:
    """Every population of the inputs, studies of one kind joined only within one; a study
    given twice is refused (XrayganError)."""
    _refuse_twice(data)
    pops: dict[tuple[str, ...], Population] = {}
    for d in data:
        if d.kind == "memory" or none_completed(d.frame):
            continue
        try:
            reg = registered_protocols(d.attrs)
        except ValueError as e:
            raise XrayganError(f"study {d.name}: {e}") from None
        for key, part in by_population(d.frame).items():
            pop = pops.setdefault(key, Population(key))
            old = pop.frames.get(d.kind)
            pop.frames[d.kind] = part if old is None else pd.concat([old, part], ignore_index=True)
            pop.studies.append(d.name)
            if reg is None:
                continue
            pop.timing = " ".join(filter(None, [pop.timing, registration_timing(d)]))
            if pop.registered is None:
                pop.registered = dict(reg)
            for k, proto in reg.items():  # two studies registering one claim differently
                if k in pop.registered and pop.registered[k] != proto:
                    pop.notes.append(f"{d.name} registered {k} differently from "
                                     f"{pop.studies[0]}; the first registration decides")
                pop.registered.setdefault(k, proto)
    return list(pops.values())


def decide_claims(data: Sequence[StudyData], memory: pd.DataFrame | None) -> list[Claim]:
    """Trials claims per population (never pooled across scale, data, image size, widths,
    batch, run length or FID sample size), memory claims once where there are memory measurements."""
    out: list[Claim] = []
    for pop in populations(data):
        # the claims the population's study kinds bear on (a table1 population has no Table
        # III claim to be untestable about)
        mine = set().union(*(claims_for_study(k, study_sections(k)[1]) for k in pop.frames))
        keys = [k for k in claim_keys("trials") if k in mine]
        out += [dataclasses.replace(c, population=pop.label) for c in
                evaluate_claims(pop.frames, None, pop.registered, keys=keys,
                                timing=pop.timing)]
    if memory is not None:  # a report without memory data has no memory claim to decide
        out += evaluate_claims({}, memory, keys=claim_keys("memory"))
    if not out:  # no data at all: every claim, each saying what it lacks
        out = (evaluate_claims({}, None, keys=claim_keys("trials"))
               + evaluate_claims({}, None, keys=claim_keys("memory")))
    return out


def _representatives(df: pd.DataFrame) -> dict[str, str]:
    """One run folder per configuration (the lowest seed that completed), for figures,
    labelled with its seed ("adas-elu, seed 0") so that a panel says which run it shows."""
    done = completed(df)
    reps: dict[str, str] = {}
    for g in dict.fromkeys(done["group"]):
        part = done[done["group"] == g].sort_values("seed")
        for run, seed in zip(part["run_dir"], part["seed"], strict=True):
            if run and Path(run, "metrics.csv").is_file():
                reps[f"{g}, seed {int(seed)}" if pd.notna(seed) else str(g)] = run
                break
        if len(reps) >= MAX_PANELS:
            break
    return reps


def _figure(fn: Callable[..., Any], rel: str, page_dir: Path, made: list[Path], title: str,
            *args: Any, **kwargs: Any) -> str:
    path = page_dir / rel
    try:
        fn(*args, path, **kwargs)
    except figures.FigureUnavailable as e:  # a sentence meant for the reader
        return f"*{title}: not drawn: {e}.*\n"
    except (ValueError, KeyError):
        return (f"*{title}: not drawn: the runs lack the data it needs (see the tables "
                "above).*\n")
    made.append(path)
    return f"\n![{title}]({page_dir.name}/{rel})\n"


# --------------------------------------------------------------------------- sections
@dataclass
class Page:
    """What a section renderer reads and where it puts figures."""

    d: StudyData
    fig_dir: Path
    made: list[Path]
    claims: Sequence[Claim]
    claim_keys: tuple[str, ...]
    checksum: bool
    draw: bool
    reps: dict[str, str]


Section = Callable[[Page], str]
SECTIONS: dict[str, Section] = {}


def section(name: str) -> Callable[[Section], Section]:
    """Register a report section under ``name`` (the names StudySpec.sections lists)."""

    def decorator(fn: Section) -> Section:
        if name in SECTIONS:
            raise KeyError(f"report section {name!r} is registered twice")
        SECTIONS[name] = fn
        return fn

    return decorator


def study_sections(kind: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(sections, declared claims) of a study kind from its StudySpec; --runs pages and
    studies no longer registered get the defaults."""
    if kind == "runs":
        return RUNS_SECTIONS, ()

    load_studies()
    if kind not in STUDIES:
        return DEFAULT_SECTIONS, ()
    spec = STUDIES.get(kind)
    return tuple(spec.sections), tuple(spec.claims)


@section("protocol")
def _protocol(p: Page) -> str:
    return "\n## Protocol\n\n" + protocol_markdown(p.d.frame, p.d.attrs, checksum=p.checksum)


@section("trials")
def _trials(p: Page) -> str:
    return "\n## Trials\n\n" + tables.trials_markdown(p.d.frame)


@section("table1")
def _table1(p: Page) -> str:
    title = "Table I" if p.d.kind == "table1" else "Quality (Table I columns)"
    where = ("Our rows: " + "; ".join(sorted(_labels(p.d.frame))) + ". The paper's rows: 64 px, "
             "VinBigData radiographs, 150 epochs, one run each: numbers from different scales, "
             "not a comparison.\n\n")
    return (f"\n## {title}\n\n" + where + tables.table1_markdown(p.d.frame) + "\n"
            + fid_protocol(p.d.frame))


@section("quality")
def _quality(p: Page) -> str:
    return ("\n## Beyond FID: fidelity, diversity, copying, frequency content\n\n"
            + quality_markdown(p.d.frame))


@section("anatomy")
def _anatomy(p: Page) -> str:
    text = anatomy_markdown(p.d.frame)
    return "\n## Anatomy of generated images (beside FID)\n\n" + text if text else ""


@section("utility")
def _utility(p: Page) -> str:
    return ("\n## Downstream utility: train on synthetic, test on real\n\n"
            + utility_markdown(p.d.frame))


@section("correlation")
def _correlation(p: Page) -> str:
    s = ["\n## FID against D-loss statistics (Fig. 5)\n\n", tables.correlation_markdown(p.d.frame)]
    if p.draw:
        s.append(_figure(figures.correlation_figure, "fig5_correlation.png", p.fig_dir, p.made,
                         "Fig. 5: mean D loss against mean FID per configuration", completed(p.d.frame)))
    return "".join(s)


@section("table3")
def _table3(p: Page) -> str:
    return "\n## Table III: compression\n\n" + tables.table3_markdown(p.d.frame)


@section("memory")
def _memory(p: Page) -> str:
    return memory_sections(memory_of(p.d), p.fig_dir, p.made, draw=False)


@section("memory_figure")
def _memory_figure(p: Page) -> str:
    if not p.draw:
        return ""
    return _figure(figures.memory_vs_width, "fig7_8_memory_vs_width.png", p.fig_dir, p.made,
                   "Fig. 7/8: memory vs width", memory_of(p.d))


@section("quality_trend")
def _quality_trend(p: Page) -> str:
    s = ["\n## Quality against width\n\n", trends.trend_markdown(p.d.frame)]
    if p.draw:
        s.append(_figure(trends.quality_vs_width, "quality_vs_width.png", p.fig_dir, p.made,
                         "Quality metrics against feature-map width (mean, 95 % interval over "
                         "seeds)", p.d.frame))
    return "".join(s)


@section("throughput")
def _throughput(p: Page) -> str:
    return ("\n## Size, memory and speed\n\n"
            + tables.throughput_markdown(p.d.frame, throughput_context(p.d)))


def throughput_context(d: StudyData) -> str | None:
    """How a study's images/s were measured, from its last sweep's record (workers) and the
    trials' machines, or None when the sweep recorded no worker count."""
    workers = (d.attrs.get("sweep_memory") or {}).get("workers")
    if not isinstance(workers, int) or workers < 1:
        return None
    from .protocol import machines_line

    share = ("one worker alone" if workers == 1 else
             f"{workers} workers training at once on the same cores: differences between "
             "configurations of one architecture are contention between workers, not a "
             "property of the configuration")
    return f"during the sweep, {share}; machines: {machines_line(d.frame)}"


def _per_configuration_figure(p: Page, heading: str, fn: Callable[..., Any], rel: str,
                              title: str) -> str:
    """A section holding one figure over the representative run of each configuration."""
    if not (p.draw and p.reps):
        return ""
    return f"\n## {heading}\n\n" + _figure(fn, rel, p.fig_dir, p.made, title, p.reps)


@section("dynamics")
def _dynamics(p: Page) -> str:
    return _per_configuration_figure(p, "Training dynamics (Fig. 3, 4)", figures.loss_curves,
                                     "fig3_4_losses.png", "Fig. 3/4: D and G losses of the lowest completed seed per configuration, T0 dashed")


@section("samples")
def _samples(p: Page) -> str:
    if not (p.draw and p.reps):
        return ""
    real = figures.real_grid(next(iter(p.reps.values())))
    title = ("Fig. 6: real training images, then the last sample grid of the lowest completed "
             "seed per configuration" if real is not None else
             "Fig. 6: last sample grid of the lowest completed seed per configuration (the "
             "training images cannot be read on this machine)")
    return "\n## Samples (Fig. 6)\n\n" + _figure(figures.sample_grids, "fig6_samples.png",
                                                  p.fig_dir, p.made, title, p.reps, real=real)


@section("spectrum")
def _spectrum(p: Page) -> str:
    if not (p.draw and p.reps):
        return ""

    return ("\n## Power spectra (real solid, generated dashed)\n\n"
            + _figure(metric_figures.spectra_of_runs, "spectrum.png", p.fig_dir, p.made,
                      f"Radial power spectrum per configuration; dotted: the high-frequency "
                      f"cut-off ({CUTOFF:g} x Nyquist)", p.reps))


@section("memorization")
def _memorization(p: Page) -> str:
    if not (p.draw and p.reps):
        return ""
    return ("\n## Closest generated/training pairs (memorization)\n\n"
            + metric_figures.closest_pairs_markdown(p.reps, p.fig_dir, p.made))


@section("collapse")
def _collapse(p: Page) -> str:
    df = p.d.frame
    if not (p.draw and "collapse_detected" in df.columns):
        return ""
    hits = completed(df)
    hits = hits[hits["collapse_detected"] == 1.0].head(MAX_COLLAPSE)
    s = ["\n## Mode collapse\n\n"] if len(hits) else []
    for _, r in hits.iterrows():
        onset = r.get("collapse_onset")
        s.append(_figure(figures.collapse_curves, f"collapse_{r['cell']}.png", p.fig_dir, p.made,
                         f"{r['cell']}: collapse at step {onset:g}", r["run_dir"],
                         onset=onset if isinstance(onset, float) and math.isfinite(onset)
                         else None))
    return "".join(s)


@section("compression")
def _compression(p: Page) -> str:
    """compress-search's answer: a shallower G within the reference's blockiness
    margin and FID factor, with its numbers and sample grid, or that none of N trials was."""
    return "\n## Did the search find a compressed generator?\n\n" + finding(p.d.trial_attrs).text + "\n"


@section("claims")
def _claims(p: Page) -> str:
    mine = [c for c in p.claims if c.key in p.claim_keys
            and (not c.population or c.population in _labels(p.d.frame))]
    return "\n## Claims\n\n" + claims_by_population(mine) if mine else ""


def _labels(df: pd.DataFrame) -> set[str]:
    return {population_label(k) for k in by_population(df)}


def claims_by_population(claims: Sequence[Claim], *, link: Callable[[Claim], str] | None = None
                         ) -> str:
    """One claims section per population; with several, a side-by-side verdict table first
    (rows: claims, columns: populations) so that no verdict is read without its scope.
    ``link``: the page holding a claim in full; given, only the summary tables are written,
    each claim linking there (the index page), so that no claim is shown twice."""
    pops = list(dict.fromkeys(c.population for c in claims))
    s = []
    if len([q for q in pops if q]) > 1:
        keys = list(dict.fromkeys(c.key for c in claims))
        title = {c.key: claim_title(c.statement) for c in claims}
        cell = {(c.key, c.population): f"{c.verdict}" for c in claims}
        s += ["Populations are never pooled (scale, data, image size and FID sample size "
              "differ); verdicts side by side:\n\n",
              tables.markdown(["Claim", *[q or "memory measurements" for q in pops]],
                              [[title[k], *[cell.get((k, q), "—") for q in pops]] for k in keys]),
              "\n"]
    for q in pops:
        part = [c for c in claims if c.population == q]
        if len(pops) > 1:
            s.append(f"\n### Decided on: {q or 'memory measurements'}\n\n")
        if link is None:
            s.append(claims_markdown(part))
            continue
        pages = {link(c) for c in part}
        s.append(summary_table(part, link=pages.pop() if len(pages) == 1 else ""))
        s.append("\n")
    return "".join(s)


def study_page(d: StudyData, out_dir: Path, claims: Sequence[Claim], *,
               checksum: bool = True, draw: bool = True) -> tuple[str, list[Path]]:
    """The markdown of one study's page and the figures it drew: the sections its StudySpec
    declares, in order."""
    df, kind = d.frame, d.kind
    fig_dir = out_dir / d.name
    if none_completed(df):
        return no_completed_page(d), []
    if kind == "memory":
        return memory_page(d, fig_dir, claims, draw=draw)
    names, declared = study_sections(kind)
    page = Page(d, fig_dir, [], claims, claims_for_study(kind, declared), checksum, draw,
                _representatives(df) if draw else {})
    s = [f"# {d.name}\n", f"Study `{kind}`; {len(df)} trials, "
         f"{len(completed(df))} completed. Paper: {paper.CITATION}.\n"]
    for name in names:
        if name not in SECTIONS:
            raise KeyError(f"study {kind!r} lists an unknown report section {name!r}; known: "
                           f"{', '.join(sorted(SECTIONS))}")
        s.append(SECTIONS[name](page))
    return redact_paths("".join(s), data_sources([d])), page.made


def data_sources(data: Sequence[StudyData]) -> list[str]:
    """Every data spec the inputs name (their local paths are redacted from pages)."""
    out = []
    for d in data:
        if "data_source" in d.frame.columns:
            out += [str(v) for v in d.frame["data_source"].dropna().unique()]
        if isinstance(d.attrs.get("data"), str):
            out.append(d.attrs["data"])
    return out


def none_completed(df: pd.DataFrame) -> bool:
    """No trial of the frame completed (or it has none): nothing to tabulate or judge."""
    return len(df) == 0 or ("status" in df.columns and not (df["status"] == "completed").any())


def no_completed_page(d: StudyData) -> str:
    """The page of a study without a completed trial (a sweep that failed or has not run
    yet): what happened to each trial, and nothing computed from no data."""
    df = d.frame
    counts = df["status"].fillna("unknown").value_counts() if len(df) else {}
    what = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no trials"
    text = [f"# {d.name}\n", f"Study `{d.kind}`; {len(df)} trials, none completed ({what}). "
            "No table, figure or claim can be computed from it yet: fix the failures below "
            "and run the sweep again (completed cells are kept).\n"]
    if len(df):
        text += ["\n## Trials\n\n", tables.trials_markdown(df), "\n"]
    return "".join(text)


def memory_sections(mf: pd.DataFrame, fig_dir: Path, made: list[Path], *, draw: bool) -> str:
    s = ["\n## Memory: estimated vs measured\n\n", tables.memory_markdown(mf),
         "\n## Batch-norm saving\n\n", tables.bn_savings_markdown(mf),
         "\n## Growth law\n\n", tables.growth_markdown(mf)]
    if draw:
        s.append(_figure(figures.memory_vs_width, "fig7_8_memory_vs_width.png", fig_dir, made,
                         "Fig. 7/8: memory vs width", mf))
    return "".join(s)


def memory_page(d: StudyData, fig_dir: Path, claims: Sequence[Claim], *,
                draw: bool) -> tuple[str, list[Path]]:
    made: list[Path] = []
    mf = d.frame
    s = [f"# {d.name}\n", f"Memory of one training step from `{d.attrs.get('source')}` "
         f"(xraygan memory); {len(mf)} configurations. Paper: {paper.CITATION}.\n\n",
         f"Paper's example: batch {paper.MEMORY_EXAMPLE['batch_size']} of "
         f"{paper.MEMORY_EXAMPLE['image_size']} px images, width {paper.MEMORY_EXAMPLE['features']}: "
         f"{paper.MEMORY_EXAMPLE['total_mb']} MB (torchinfo per-image size x batch).\n",
         memory_sections(mf, fig_dir, made, draw=draw)]
    keys = claims_for_study("memory")
    mine = [c for c in claims if c.key in keys]
    s += ["\n## Claims\n\n", claims_markdown(mine)]
    return "".join(s), made


def claim_home(c: Claim, data: Sequence[StudyData], pages: Mapping[str, Path]) -> str:
    """The page that shows ``c`` in full (its study's page, or a memory page), or ""."""
    for d in data:
        if none_completed(d.frame):
            continue
        if d.kind == "memory":
            if c.key in claims_for_study("memory"):
                return pages[d.name].name
            continue
        names, declared = study_sections(d.kind)
        if ("claims" in names and c.key in claims_for_study(d.kind, declared)
                and (not c.population or c.population in _labels(d.frame))):
            return pages[d.name].name
    return ""


INDEX_ROWS = "index.json"
"""Beside index.md: the index rows of every study page written into the folder, so that a
second report into the same folder lists the first one's studies too."""


def index_rows(data: Sequence[StudyData], pages: Mapping[str, Path]) -> list[list[Any]]:
    """The index rows of this report's studies, after those of earlier reports into the same
    folder whose pages are still there (INDEX_ROWS; an unreadable one is started afresh)."""
    rows = []
    for d in data:
        done = completed(d.frame) if d.kind != "memory" else d.frame
        scale = (d.attrs.get("scale") or {}).get("name", "") if d.kind != "memory" else ""
        pops = "; ".join(sorted(_labels(d.frame))) if d.kind != "memory" else "—"
        rows.append([f"[{d.name}]({pages[d.name].name})", d.kind, scale or "—", pops,
                     len(d.frame), len(done)])
    if not pages:
        return rows
    folder = next(iter(pages.values())).parent
    mine = {r[0] for r in rows}
    earlier = []
    try:
        kept = json.loads(read_bounded(folder / INDEX_ROWS, "json_bytes", str(folder / INDEX_ROWS),
                                       error=XrayganError))
    except (XrayganError, ValueError, RecursionError):
        kept = []
    for r in kept if isinstance(kept, list) else []:
        page = re.fullmatch(r"\[[^\]]*\]\(([^)/]+)\)", str(r[0])) if isinstance(r, list) and r else None
        if page and len(r) == 6 and r[0] not in mine and (folder / page.group(1)).is_file():
            earlier.append(r)
    atomic_write_text(folder / INDEX_ROWS, json.dumps(earlier + rows, indent=1) + "\n")
    return earlier + rows


def index_page(data: Sequence[StudyData], pages: Mapping[str, Path], claims: Sequence[Claim]) -> str:
    rows = index_rows(data, pages)
    named = ", ".join(d.name for d in data)
    s = ["# xraygan report\n\n", f"Reproduction of {paper.CITATION}.\n\n", "## Studies\n\n",
         tables.markdown(["Study", "Kind", "Scale", "Population", "Trials", "Completed"], rows),
         "\n## Claims of the paper\n\n",
         (f"Decided from the studies of the latest report into this folder ({named}); each "
          "study's page holds the claims of the report that wrote it.\n\n"
          if len(rows) > len(data) else "")]
    homes = {id(c): claim_home(c, data, pages) for c in claims}
    shown = [c for c in claims if homes[id(c)]]
    if shown:
        s += ["Each claim's reasoning, rule and numbers are on its study's page (linked).\n\n",
              claims_by_population(shown, link=lambda c: homes[id(c)])]
    rest = [c for c in claims if not homes[id(c)]]
    if rest:  # decided on no page: in full here
        s.append(claims_by_population(rest))
    fids = [d.frame for d in data if d.kind != "memory" and "fid" in d.frame.columns]
    if fids:
        s.append("\n" + fid_protocol(pd.concat(fids, ignore_index=True)))
    return "".join(s)


def build_report(studies: Sequence[str], out_dir: str | Path = DEFAULT_OUT,
                 storage: str | None = None, runs: Sequence[str | Path] = (),
                 memory: Sequence[str | Path] = (), *, checksum: bool = True,
                 draw: bool = True, studies_dir: str | Path = "studies") -> Report:
    """Write one page per study (one for ``runs`` folders, one per ``memory`` file written by
    ``xraygan memory --json``) plus index.md under ``out_dir``.

    ``studies`` are Optuna study names (``table1-quick``) in ``storage`` (default: each in
    STUDIES_DIR/NAME.db, where ``xraygan sweep --out STUDIES_DIR`` puts it).
    """
    if not studies and not runs and not memory:
        raise XrayganError("nothing to report: name a study (e.g. table1-quick), or pass --runs "
                           "or --memory")
    out_dir = Path(out_dir)
    data = load_inputs(studies, storage, runs, memory, studies_dir)
    mems = [m for d in data if d.kind in MEMORY_KINDS and not none_completed(d.frame)
            and not (m := memory_of(d)).empty]
    claims = decide_claims(data, pd.concat(mems, ignore_index=True) if mems else None)
    pages: dict[str, Path] = {}
    made: dict[str, list[Path]] = {}
    for d in data:
        text, figs = study_page(d, out_dir, claims, checksum=checksum, draw=draw)
        pages[d.name] = out_dir / f"{d.name}.md"
        atomic_write_text(pages[d.name], text)
        made[d.name] = figs
    index = out_dir / "index.md"
    atomic_write_text(index, redact_paths(index_page(data, pages, claims), data_sources(data)))
    notes = [f"{d.name}: {len(d.frame)} trials" for d in data]
    notes += [f"{d.name}: excluded {line}" for d in data for line in excluded(d.frame)]
    return Report(index, pages, made, claims, notes)
