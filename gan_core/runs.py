"""The run-folder contract between training and everything after it.

    runs/0003-paper-elu/
      config.json         resolved ExperimentConfig, written before step 0
      metrics.csv         one row per logged iteration (pandas.read_csv reads it directly)
      samples/            step_000200.png ... sample grids from fixed noise
      checkpoints/last.pt G, D, both optimizers, RNG states, step, config (weights_only-safe)
      summary.json        status, steps, timings and end-of-run metrics
      evaluations.jsonl   one JSON object per later evaluation (xraygan metrics / fid)

Every reader and writer of these files lives here; metrics, ablations and reports go through
this module, never through hard-coded paths. Writes are atomic (temp file + rename), so a
killed process leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .config import ExperimentConfig
from .errors import RunFolderError

CONFIG = "config.json"
METRICS = "metrics.csv"
SUMMARY = "summary.json"
EVALUATIONS = "evaluations.jsonl"
SAMPLES = "samples"
CHECKPOINTS = "checkpoints"
LAST_CHECKPOINT = "last.pt"

METRIC_COLUMNS = ("step", "epoch", "loss_d", "loss_g", "d_real", "d_fake", "images_per_s", "time_s")
"""Columns of metrics.csv. d_real / d_fake are mean D(x) and D(G(z)) as probabilities."""


# --------------------------------------------------------------------------- atomic writes
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def json_safe(obj: Any) -> Any:
    """NaN and infinities become null: strict JSON, readable by any tool (jq, browsers)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(json_safe(obj), indent=2, sort_keys=True, allow_nan=False) + "\n")


def atomic_torch_save(path: str | Path, obj: Any) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


# --------------------------------------------------------------------------- folders
def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "run"


def new_run_dir(root: str | Path, name: str) -> Path:
    """Create ``root/NNNN-name``, numbered one past the highest existing run."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    numbers = [int(m.group(1)) for p in root.iterdir() if (m := re.match(r"(\d{4,})-", p.name))]
    number = max(numbers, default=0) + 1
    while True:
        path = root / f"{number:04d}-{_slug(name)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:  # another process took this number: take the next
            number += 1


def is_run_dir(path: str | Path) -> bool:
    return (Path(path) / CONFIG).is_file()


def find_runs(paths: Iterable[str | Path]) -> list[Path]:
    """Run folders among ``paths``; a folder that is not a run is searched one level down."""
    found: list[Path] = []
    for p in map(Path, paths):
        if is_run_dir(p):
            found.append(p)
        elif p.is_dir():
            found.extend(sorted(c for c in p.iterdir() if is_run_dir(c)))
        else:
            raise RunFolderError(f"{p}: not a run folder (no {CONFIG}) and not a folder of runs")
    if not found:
        raise RunFolderError(f"no run folders (with {CONFIG}) under {', '.join(map(str, paths))}")
    return found


def checkpoint_path(run: str | Path) -> Path:
    return Path(run) / CHECKPOINTS / LAST_CHECKPOINT


def sample_path(run: str | Path, step: int) -> Path:
    return Path(run) / SAMPLES / f"step_{step:06d}.png"


def sample_paths(run: str | Path) -> list[Path]:
    return sorted((Path(run) / SAMPLES).glob("step_*.png"))


# --------------------------------------------------------------------------- config
def write_config(run: str | Path, cfg: ExperimentConfig) -> None:
    atomic_write_text(Path(run) / CONFIG, cfg.to_json() + "\n")


def read_config(run: str | Path) -> ExperimentConfig:
    path = Path(run) / CONFIG
    if not path.is_file():
        raise RunFolderError(f"{run}: no {CONFIG}; is this a run folder?")
    try:
        return ExperimentConfig.from_json(path.read_text())
    except json.JSONDecodeError as e:
        raise RunFolderError(f"{path}: not valid JSON ({e})") from None


# --------------------------------------------------------------------------- metrics log
class MetricsLog:
    """Append-only CSV of per-iteration metrics. Reopened on resume, truncated to the
    checkpoint's step so that the log and the weights always describe the same run."""

    def __init__(self, run: str | Path, resume_step: int | None = None) -> None:
        self.path = Path(run) / METRICS
        if resume_step is not None and self.path.exists():
            self._truncate_after(resume_step)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._file = open(self.path, "a", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=METRIC_COLUMNS)
        if new:
            self._writer.writeheader()
            self._file.flush()

    def _truncate_after(self, step: int) -> None:
        with open(self.path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("step") and int(r["step"]) <= step]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.path, buf.getvalue())

    def write(self, row: Mapping[str, Any]) -> None:
        self._writer.writerow({k: row.get(k, "") for k in METRIC_COLUMNS})

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> MetricsLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_metrics(run: str | Path):
    """metrics.csv as a pandas DataFrame (one row per logged iteration)."""
    import pandas as pd

    path = Path(run) / METRICS
    if not path.is_file():
        raise RunFolderError(f"{run}: no {METRICS}; the run has not logged any iteration")
    return pd.read_csv(path)


# --------------------------------------------------------------------------- summary, evaluations
def read_summary(run: str | Path) -> dict[str, Any]:
    path = Path(run) / SUMMARY
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def update_summary(run: str | Path, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into summary.json (atomically) and return the new summary."""
    summary = read_summary(run)
    summary.update(fields)
    atomic_write_json(Path(run) / SUMMARY, summary)
    return summary


def append_evaluation(run: str | Path, record: Mapping[str, Any]) -> None:
    """Append one evaluation as a JSON line (stylegan2-ada's metric-jsonl habit)."""
    with open(Path(run) / EVALUATIONS, "a") as f:
        f.write(json.dumps(json_safe(dict(record)), sort_keys=True, allow_nan=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_evaluations(run: str | Path) -> list[dict[str, Any]]:
    path = Path(run) / EVALUATIONS
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a crash mid-write: skip it
                continue
    return out
