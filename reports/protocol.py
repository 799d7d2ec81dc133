"""The protocol section: what a reader needs to judge the numbers (data, image size, steps,
FID sample count, Inception weights checksum, seeds, hardware, software)."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd


def _str(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def natural_values(series: pd.Series) -> list[str]:
    """Distinct non-empty values as strings, numbers in numeric order (20, not 20.0)."""
    return sorted({_str(v) for v in series.dropna() if str(v) != ""}, key=_natural)


def _values(df: pd.DataFrame, col: str) -> str:
    if df is None or df.empty or col not in df.columns:
        return "—"
    return ", ".join(natural_values(df[col])) or "—"


def _natural(s: str) -> tuple:
    try:
        return (0, float(s), s)
    except ValueError:
        return (1, 0.0, s)


def dataset_descriptions(df: pd.DataFrame) -> str:
    """The dataset line the trainer wrote into each run's summary.json (first distinct ones)."""
    from gan_core import runs

    seen: list[str] = []
    for run in df.get("run_dir", pd.Series(dtype=object)).dropna():
        if run and Path(run).is_dir():
            desc = runs.read_summary(run).get("dataset")
            if desc and desc not in seen:
                seen.append(desc)
    return "; ".join(seen[:3]) or "—"


def weights_checksum() -> str:
    """sha256 of the local FID Inception weights file, or the recorded one when absent."""
    from gan_core.metrics import weights

    path = weights.weights_path()
    if path.is_file():
        return f"sha256 {weights.sha256_file(path)} ({path.name})"
    return (f"not present on the report machine; verified conversions have sha256 "
            f"{weights.CONVERTED_SHA256} (content {weights.CONTENT_SHA256})")


def software() -> dict[str, str]:
    import matplotlib
    import numpy
    import optuna
    import scipy
    import torch

    from gan_core import __version__

    return {"xraygan": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
            "numpy": numpy.__version__, "scipy": scipy.__version__, "pandas": pd.__version__,
            "optuna": optuna.__version__, "matplotlib": matplotlib.__version__}


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
        ("Scale", attrs.get("scale", {}).get("name", "") if scale else _values(df, "scale")),
        ("Hardware (runs)", f"hosts {_values(df, 'host')}; devices {_values(df, 'memory_device')}"),
        ("Memory measured with", _values(df, "memory_method")),
    ]
    if checksum:
        rows.append(("Inception weights", weights_checksum()))
    sw = software()
    rows.append(("Software (report machine)", ", ".join(f"{k} {v}" for k, v in sw.items())))
    rows.append(("Report machine", f"{platform.platform()}, {platform.processor() or '?'}, "
                 f"{os.cpu_count()} CPUs"))
    return rows


def protocol_markdown(df: pd.DataFrame, study_attrs: Mapping[str, Any] | None = None,
                      *, checksum: bool = True) -> str:
    from .tables import markdown

    return markdown(["Item", "Value"], protocol_rows(df, study_attrs, checksum=checksum),
                    ["l", "l"])
