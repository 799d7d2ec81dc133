"""The protocol section: what a reader needs to judge the numbers (data, image size, steps,
FID sample count, Inception weights checksum, seeds, hardware and the machine fingerprints the
trials ran on, software)."""

from __future__ import annotations

import hashlib
import platform
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib
import numpy
import optuna
import pandas as pd
import scipy

from xraygan import __version__, runs
from xraygan.claims.frames import natural_values
from xraygan.data.folderspec import LABELS_KEY
from xraygan.errors import XrayganError
from xraygan.lazy import lazy_module

from .tables import markdown

torch = lazy_module("torch")


def _values(df: pd.DataFrame, col: str) -> str:
    if df is None or df.empty or col not in df.columns:
        return "—"
    return ", ".join(natural_values(df[col])) or "—"


def dataset_descriptions(df: pd.DataFrame) -> str:
    """The dataset line the trainer wrote into each run's summary.json (first distinct ones)."""
    seen: list[str] = []
    for run in df.get("run_dir", pd.Series(dtype=object)).dropna():
        if run and Path(run).is_dir():
            desc = runs.read_summary(run).get("dataset")
            if desc and desc not in seen:
                seen.append(desc)
    return "; ".join(seen[:3]) or "—"


def _summary_machine(run: object) -> dict[str, Any] | None:
    if isinstance(run, str) and run and Path(run).is_dir():
        try:
            machine = runs.read_summary(run).get("machine")
        except (OSError, ValueError, XrayganError):  # a corrupt summary: "not recorded"
            return None
        return machine if isinstance(machine, Mapping) else None
    return None


def machine_fingerprints(df: pd.DataFrame) -> list[tuple[str, str, int]]:
    """(machine class, description, number of trials) for every machine the trials ran on,
    from the trial attr ``machine`` or the run's summary.json ``machine`` (gan_core.
    fingerprint); trials with neither (runs made before fingerprints) count as "not recorded"."""
    from xraygan.fingerprint import describe, machine_class

    counts: dict[tuple[str, str], int] = {}
    if df is None or df.empty:
        return []
    machines = df["machine"] if "machine" in df.columns else pd.Series([None] * len(df))
    runs_col = df["run_dir"] if "run_dir" in df.columns else pd.Series([None] * len(df))
    for machine, run in zip(machines, runs_col, strict=True):
        if not isinstance(machine, Mapping):
            machine = _summary_machine(run)
        if isinstance(machine, Mapping):
            key = (str(machine.get("machine_class") or machine_class(dict(machine))),
                   describe(dict(machine)))
        else:
            key = ("not recorded", "")
        counts[key] = counts.get(key, 0) + 1
    # most trials first; "not recorded" last
    return sorted(((c, d, n) for (c, d), n in counts.items()),
                  key=lambda t: (t[0] == "not recorded", -t[2], t[0]))


def machines_line(df: pd.DataFrame) -> str:
    items = machine_fingerprints(df)
    if not items:
        return "—"
    return "; ".join(f"{c}: {d} ({n} trial{'s' if n != 1 else ''})" if d else
                     f"{c} ({n} trial{'s' if n != 1 else ''}, run before fingerprints)"
                     for c, d, n in items)


def weights_checksum() -> str:
    """sha256 of the local FID Inception weights file, or the recorded one when absent."""
    from xraygan.metrics import weights

    path = weights.weights_path()
    if path.is_file():
        return f"sha256 {weights.sha256_file(path)} ({path.name})"
    return (f"not present on the report machine; verified conversions have sha256 "
            f"{weights.CONVERTED_SHA256} (content {weights.CONTENT_SHA256})")


def software() -> dict[str, str]:
    return {"xraygan": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
            "numpy": numpy.__version__, "scipy": scipy.__version__, "pandas": pd.__version__,
            "optuna": optuna.__version__, "matplotlib": matplotlib.__version__}


def sweep_memory_line(m: Mapping[str, Any] | None) -> str:
    """The last sweep's peak resident memory over its whole process tree (xraygan sweep)."""
    if not m:
        return "not recorded"
    pss = m.get("peak_pss_bytes")
    head = f"{pss / 1e9:.2f} GB PSS" if pss is not None else "PSS unavailable"
    return (f"{head}, sum of RSS {m.get('peak_rss_bytes', 0) / 1e9:.2f} GB (parent + "
            f"{m.get('workers', '?')} worker(s), {m.get('processes_at_peak', '?')} processes at "
            f"the peak; /proc smaps_rollup sampled every {m.get('interval_s', '?')} s)")


def fid_protocol(df: pd.DataFrame) -> str:
    """How FID was computed, in one paragraph for every page that shows FID (numbers from
    another FID implementation or sample size are not comparable)."""
    if df is None or "fid" not in df.columns or not df["fid"].notna().any():
        return ""
    fid_n = _values(df, "fid_n") if "fid_n" in df.columns else _values(df, "fid_n1")
    return (f"*FID protocol: pytorch-fid's Inception v3 (pool3, 2048 features); images resized "
            f"bilinearly from {_values(df, 'image_size')} px to 299 px; {fid_n} generated "
            f"samples against the run's training set ({_values(df, 'num_images')} images). Not "
            "comparable with clean-fid, whose resize differs, nor across sample sizes: FID is "
            "biased by N.*\n")


_SPEC = re.compile(r"^([a-z][\w]*(?::v\d+)?):(.+)$")


def public_name(source: str) -> str:
    """A data spec as a report may show it: ``folder:/home/me/xr/train`` becomes
    ``folder:train #1a2b3c4d`` (short name and a fingerprint of the full spec), so that a
    shared report names the dataset without the local path; built-in specs stay as they are."""
    m = _SPEC.match(source.strip())
    if not m or not (m.group(2).startswith(("/", "~")) or re.match(r"^[A-Za-z]:[\\/]", m.group(2))):
        return source
    digest = hashlib.sha256(source.encode()).hexdigest()[:8]
    folder = m.group(2).partition(LABELS_KEY)[0]  # folder:PATH,labels=FILE: the folder's name
    short = Path(folder.rstrip("/\\")).name or "data"
    return f"{m.group(1)}:{short} #{digest}"


def redact_paths(text: str, sources: list[str]) -> str:
    """``text`` with each local data path in ``sources`` replaced by its public name."""
    for src in sorted(set(sources), key=len, reverse=True):
        name = public_name(src)
        if name != src:
            m = _SPEC.match(src.strip())
            text = text.replace(src, name)
            if m:
                text = text.replace(m.group(2), name.split(":", 1)[1])
                folder, _, labels = m.group(2).partition(LABELS_KEY)
                if labels:  # the folder's path and the labels file's, each on its own
                    text = text.replace(folder, name.split(":", 1)[1])
                    text = text.replace(labels, Path(labels).name)
    return text


def protocol_rows(df: pd.DataFrame, study_attrs: Mapping[str, Any] | None = None,
                  *, checksum: bool = True) -> list[tuple[str, str]]:
    """(item, value) pairs of the protocol from the trials frame and the study's attrs."""
    attrs = dict(study_attrs or {})
    scale = attrs.get("scale") or {}
    fid_computed = "fid" in df.columns and df["fid"].notna().any()
    if scale:
        fid_n = str(scale.get("fid_samples")) if scale.get("fid", fid_computed) else "not computed"
    else:
        fid_n = _values(df, "fid_n1") if fid_computed else "not computed"
    steps = _values(df, "steps")
    if steps == "—" and scale:
        steps = str(scale.get("steps") or f"{scale.get('epochs')} epochs")
    rows = [
        ("Data", f"{attrs.get('data') or _values(df, 'data_source')} — {dataset_descriptions(df)}"),
        ("Training images", _values(df, "num_images")),
        ("Image size (px)", _values(df, "image_size")),
        ("Feature-map width (G / D)", f"{_values(df, 'g_features')} / {_values(df, 'd_features')}"),
        ("Steps per run", steps),
        ("Batch size", _values(df, "batch_size")),
        ("FID generated samples", fid_n),
        ("FID reference", "the run's whole training set" if fid_computed else "—"),
        ("Seeds (train.seed)", _values(df, "seed")),
        # why one seed is not a result
        ("Seeds across machines", "a seed fixes a run on one machine class only: the same seed "
         "trains differently on another CPU (oneDNN kernels) or a GPU (e.g. adam-elu FID 254.2 "
         "vs 297.5 on an AVX-512 and an AVX2 EPYC), so verdicts rest on the spread over seeds; "
         "the machines each trial ran on are listed below"),
        ("Scale", attrs.get("scale", {}).get("name", "") if scale else _values(df, "scale")),
        ("Hardware (runs)", f"hosts {_values(df, 'host')}; devices {_values(df, 'memory_device')}"),
        ("Machines (fingerprint)", machines_line(df)),
        ("Memory measured with", _values(df, "memory_method")),
        ("Sweep peak memory", sweep_memory_line(attrs.get("sweep_memory"))),
    ]
    if checksum:
        rows.append(("Inception weights", weights_checksum()))
    sw = software()
    rows.append(("Software (report machine)", ", ".join(f"{k} {v}" for k, v in sw.items())))
    rows.append(("Report machine", report_machine()))
    return rows


def report_machine() -> str:
    """The OS and the CPU this report was written on, in words (platform.processor() is empty
    on Linux, so the CPU comes from the machine fingerprint)."""
    from xraygan.fingerprint import describe

    return f"{platform.platform()}; {describe()}"


def protocol_markdown(df: pd.DataFrame, study_attrs: Mapping[str, Any] | None = None,
                      *, checksum: bool = True) -> str:
    return markdown(["Item", "Value"], protocol_rows(df, study_attrs, checksum=checksum),
                    ["l", "l"])
