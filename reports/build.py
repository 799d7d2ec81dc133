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

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from gan_core.runs import atomic_write_text

from . import figures, paper, tables
from .claims import Claim, claims_markdown, evaluate_claims
from .load import (
    completed,
    fill_sample_metrics,
    load_study,
    memory_json_rows,
    runs_frame,
    trials_frame,
)
from .protocol import protocol_markdown

DEFAULT_OUT = Path("reports/out")
MAX_PANELS = 12  # loss-curve and sample panels per figure
MAX_COLLAPSE = 3  # collapse figures per study

# which claims each study bears on (the index lists all of them)
CLAIMS_OF = {
    "table1": ("adas_beats_adam", "elu_ttur_adas_best", "dloss_inverse_fid"),
    "runs": ("dloss_inverse_fid",),
    "batchnorm": ("bn_saving",),
    "fmaps": ("memory_exponential",),
    "table3": ("blurry_squares",),
    "memory": ("bn_saving", "memory_exponential"),
}
MEMORY_KINDS = ("batchnorm", "fmaps", "memory")


@dataclass
class StudyData:
    name: str  # Optuna study name (table1-quick) or "runs"
    kind: str  # registry name of the study (table1, ...) or "runs"
    frame: pd.DataFrame
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    index: Path
    pages: dict[str, Path]
    figures: dict[str, list[Path]]
    claims: list[Claim]
    notes: list[str]


def load_inputs(studies: Sequence[str], storage: str | None = None,
                run_paths: Sequence[str | Path] = (),
                memory_files: Sequence[str | Path] = ()) -> list[StudyData]:
    out = []
    for name in studies:
        study = load_study(name, storage)
        df = trials_frame(study)
        kind = study.user_attrs.get("study") or (df["study"].dropna().iloc[0] if len(df) else name)
        if kind == "table3":  # a number in every cell: score failed runs' last samples
            df = fill_sample_metrics(df)
        out.append(StudyData(name, str(kind), df, dict(study.user_attrs)))
    if run_paths:
        out.append(StudyData("runs", "runs", runs_frame(run_paths)))
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


def _frames_by_kind(data: Sequence[StudyData]) -> dict[str, pd.DataFrame]:
    by: dict[str, list[pd.DataFrame]] = {}
    for d in data:
        if d.kind == "memory":
            continue
        by.setdefault(d.kind, []).append(d.frame)
    return {k: pd.concat(v, ignore_index=True) for k, v in by.items()}


def _representatives(df: pd.DataFrame) -> dict[str, str]:
    """One run folder per configuration (the lowest seed that completed), for figures."""
    done = completed(df)
    reps: dict[str, str] = {}
    for g in dict.fromkeys(done["group"]):
        part = done[done["group"] == g].sort_values("seed")
        for run in part["run_dir"]:
            if run and Path(run, "metrics.csv").is_file():
                reps[g] = run
                break
        if len(reps) >= MAX_PANELS:
            break
    return reps


def _figure(fn: Callable[..., Any], rel: str, page_dir: Path, made: list[Path], title: str,
            *args: Any, **kwargs: Any) -> str:
    path = page_dir / rel
    try:
        fn(*args, path, **kwargs)
    except (ValueError, KeyError) as e:
        return f"*{title}: not drawn ({e}).*\n"
    made.append(path)
    return f"\n![{title}]({page_dir.name}/{rel})\n"


def study_page(d: StudyData, out_dir: Path, claims: Sequence[Claim], *,
               checksum: bool = True, draw: bool = True) -> tuple[str, list[Path]]:
    """The markdown of one study's page and the figures it drew."""
    df, kind = d.frame, d.kind
    fig_dir = out_dir / d.name
    made: list[Path] = []
    if kind == "memory":
        return memory_page(d, fig_dir, claims, draw=draw)
    s = [f"# {d.name}\n", f"Study `{kind}`; {len(df)} trials, "
         f"{len(completed(df))} completed. Paper: {paper.CITATION}.\n"]
    s += ["\n## Protocol\n\n", protocol_markdown(df, d.attrs, checksum=checksum)]
    s += ["\n## Trials\n\n", tables.trials_markdown(df)]
    reps = _representatives(df) if draw else {}

    if kind in ("table1", "seeds", "runs", "batchnorm", "compress-search"):
        title = "Table I" if kind == "table1" else "Quality (Table I columns)"
        s += [f"\n## {title}\n\n", tables.table1_markdown(df)]
    if kind in ("table1", "seeds", "runs"):
        s += ["\n## FID against D-loss statistics (Fig. 5)\n\n", tables.correlation_markdown(df)]
        if draw:
            s.append(_figure(figures.correlation_figure, "fig5_correlation.png", fig_dir, made,
                             "Fig. 5: correlation matrix", completed(df)))
    if kind == "table3":
        s += ["\n## Table III: compression\n\n", tables.table3_markdown(df)]
    if kind in ("batchnorm", "fmaps"):
        s.append(memory_sections(memory_of(d), fig_dir, made, draw=draw and kind == "fmaps"))
    s += ["\n## Throughput\n\n", tables.throughput_markdown(df)]

    if draw and reps:
        s.append("\n## Training dynamics (Fig. 3, 4)\n\n")
        s.append(_figure(figures.loss_curves, "fig3_4_losses.png", fig_dir, made,
                         "Fig. 3/4: D and G losses, T0 dashed", reps))
        s.append("\n## Samples (Fig. 6)\n\n")
        s.append(_figure(figures.sample_grids, "fig6_samples.png", fig_dir, made,
                         "Fig. 6: last sample grid per configuration", reps))
    if draw and "collapse_detected" in df.columns:
        hits = completed(df)
        hits = hits[hits["collapse_detected"] == 1.0].head(MAX_COLLAPSE)
        if len(hits):
            s.append("\n## Mode collapse\n\n")
        for _, r in hits.iterrows():
            onset = r.get("collapse_onset")
            s.append(_figure(figures.collapse_curves, f"collapse_{r['cell']}.png", fig_dir, made,
                             f"{r['cell']}: collapse at step {onset:g}", r["run_dir"],
                             onset=onset if isinstance(onset, float) and math.isfinite(onset)
                             else None))
    mine = [c for c in claims if c.key in CLAIMS_OF.get(kind, ())]
    if mine:
        s += ["\n## Claims\n\n", claims_markdown(mine)]
    return "".join(s), made


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
    mine = [c for c in claims if c.key in CLAIMS_OF["memory"]]
    s += ["\n## Claims\n\n", claims_markdown(mine)]
    return "".join(s), made


def index_page(data: Sequence[StudyData], pages: Mapping[str, Path], claims: Sequence[Claim]) -> str:
    rows = []
    for d in data:
        done = completed(d.frame) if d.kind != "memory" else d.frame
        scale = (d.attrs.get("scale") or {}).get("name", "") if d.kind != "memory" else ""
        rows.append([f"[{d.name}]({pages[d.name].name})", d.kind, scale or "—", len(d.frame),
                     len(done)])
    s = ["# xraygan report\n\n", f"Reproduction of {paper.CITATION}.\n\n", "## Studies\n\n",
         tables.markdown(["Study", "Kind", "Scale", "Trials", "Completed"], rows),
         "\n## Claims of the paper\n\n", claims_markdown(list(claims))]
    return "".join(s)


def build_report(studies: Sequence[str], out_dir: str | Path = DEFAULT_OUT,
                 storage: str | None = None, runs: Sequence[str | Path] = (),
                 memory: Sequence[str | Path] = (), *, checksum: bool = True,
                 draw: bool = True) -> Report:
    """Write one page per study (one for ``runs`` folders, one per ``memory`` file written by
    ``xraygan memory --json``) plus index.md under ``out_dir``.

    ``studies`` are Optuna study names (``table1-quick``) in ``storage`` (default: each in
    studies/NAME.db, where ``xraygan sweep`` puts it).
    """
    from gan_core.errors import XrayganError

    if not studies and not runs and not memory:
        raise XrayganError("nothing to report: name a study (e.g. table1-quick), or pass --runs "
                           "or --memory")
    out_dir = Path(out_dir)
    data = load_inputs(studies, storage, runs, memory)
    mems = [m for d in data if d.kind in MEMORY_KINDS and not (m := memory_of(d)).empty]
    claims = evaluate_claims(_frames_by_kind(data),
                             pd.concat(mems, ignore_index=True) if mems else None)
    pages: dict[str, Path] = {}
    made: dict[str, list[Path]] = {}
    for d in data:
        text, figs = study_page(d, out_dir, claims, checksum=checksum, draw=draw)
        pages[d.name] = out_dir / f"{d.name}.md"
        atomic_write_text(pages[d.name], text)
        made[d.name] = figs
    index = out_dir / "index.md"
    atomic_write_text(index, index_page(data, pages, claims))
    notes = [f"{d.name}: {len(d.frame)} trials" for d in data]
    return Report(index, pages, made, claims, notes)
