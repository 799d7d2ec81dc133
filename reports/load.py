"""Reports read two things only (ARCHITECTURE.md): Optuna studies, through the trial user
attributes documented in ablations/__init__.py, and run folders, through xraygan.runs.
Both become one *trials frame*: a DataFrame with one row per trial or run and flat columns
(cell, group, status, the metrics, memory, timings and the config fields tables group by).
"""

from __future__ import annotations

import datetime
import io
import json
import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from xraygan import runs
from xraygan.ablations.storage import (
    default_storage,
    open_storage,  # bad URL, corrupt file, dead server: one line
)
from xraygan.errors import XrayganError
from xraygan.safeio import read_bounded
from xraygan.trials import (
    InvalidTrial,
    TrialRecord,
    TrialStatus,
    check_study_attrs,
    duplicate_of,
)

# config fields every table may group or label by: column -> dotted path in config.to_dict()
CONFIG_COLUMNS = {
    "image_size": "model.image_size",
    "g_features": "model.g_features",
    "d_features": "model.d_features",
    "latent_dim": "model.latent_dim",
    "batchnorm": "model.batchnorm",
    "g_activation": "model.g_activation",
    "d_activation": "model.d_activation",
    "optimizer": "optim.name",
    "ttur": "optim.ttur",
    "batch_size": "train.batch_size",
    "config_steps": "train.steps",
    "config_epochs": "train.epochs",
    "train_seed": "train.seed",
    "data_source": "data.source",
    "num_images": "data.num_images",
    "device_requested": "train.device",
}
TRIAL_COLUMNS = ("trial", "study", "scale", "cell", "group", "state", "status", "failure",
                 "reference", "seed", "run_dir", "host", "objective", "value", "started")
# ``started``: the trial's start (Optuna's datetime_start) as ISO 8601 UTC, "" when unknown;
# the report checks the claims' registration time against the earliest one.
NUMERIC_ATTRS = ("peak_memory_bytes", "wall_time_s", "train_time_s", "eval_time_s",
                 "images_per_s", "params_g", "params_d", "steps")
MEMORY_ATTRS = ("measured_peak_bytes", "measured_resident_bytes", "estimate_bytes")


def _get(d: Mapping[str, Any] | None, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(d, Mapping):
            return None
        d = d.get(part)
    return d


def group_key(cell: str, params: Mapping[str, Any], study: str, name: str = "") -> str:
    """The configuration a cell repeats: a grid cell repeated over seeds (``adas-elu-s2``) and
    the seeds study's cells (``seed2``) fold into one group, whose seeds give a mean and CI."""
    if study == "seeds":
        return re.sub(r"-seed\d+$", "", name) or "seeds"
    if "seed" in params:
        return re.sub(r"-s\d+$", "", cell)
    return cell


def _num(v: Any) -> float:
    """Attr value -> float; None (Optuna stores NaN as null) and non-numbers -> NaN."""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    return math.nan


def record(attrs: Mapping[str, Any], **base: Any) -> dict[str, Any]:
    """One flat row from a trial's user attrs (or the equivalent built from a run folder),
    validated first (xraygan.trials.TrialRecord): a trial whose attributes are impossible (a
    negative FID, an AUROC of 1.7, metrics stored as a list) gives a row with status
    ``invalid`` and the reason as its failure, its numbers left out, so that it is named in
    the trials table and no claim or table counts it."""
    try:
        rec = TrialRecord.from_attrs(attrs)
    except InvalidTrial as e:
        return _invalid_row(attrs, str(e), base)
    attrs = rec.attrs
    params = attrs.get("cell_params") or {}
    config = attrs.get("config") or {}
    row: dict[str, Any] = dict(base)
    study = attrs.get("study", base.get("study", ""))
    cell = attrs.get("cell", base.get("cell", ""))
    row.update({
        "study": study, "scale": attrs.get("scale", base.get("scale", "")), "cell": cell,
        "group": group_key(cell, params, study, config.get("name", "")),
        "status": attrs.get("status", base.get("status", "")),
        "failure": attrs.get("failure", "") or "",
        "reference": bool(attrs.get("reference", False)),
        "seed": attrs.get("seed", _get(config, "train.seed")),
        "run_dir": attrs.get("run_dir", base.get("run_dir", "")),
        "host": attrs.get("host", ""),
        "objective": attrs.get("objective", ""),
        # xraygan.fingerprint dict, for reports/protocol.py (trials store it as "fingerprint")
        "machine": attrs.get("machine") or attrs.get("fingerprint") or None,
    })
    for col, path in CONFIG_COLUMNS.items():
        row[col] = _get(config, path)
    for k, v in params.items():
        row[f"param_{k}"] = v
    row.update(rec.metrics)
    for k in NUMERIC_ATTRS:
        v = rec.numbers.get(k)
        row[k] = math.nan if v is None else v
    for k in MEMORY_ATTRS:
        row[k] = _num(rec.memory.get(k))
    row["memory_device"] = rec.memory.get("device") or ""
    row["memory_method"] = rec.memory.get("method") or ""
    return row


def _invalid_row(attrs: Any, why: str, base: Mapping[str, Any]) -> dict[str, Any]:
    """The row of a trial that failed validation: what identifies it, status invalid."""
    attrs = attrs if isinstance(attrs, Mapping) else {}

    def text(k: str) -> str:
        v = attrs.get(k, base.get(k, ""))
        return v if isinstance(v, str) else ""

    seed = attrs.get("seed")
    return {**base, "study": text("study"), "scale": text("scale"), "cell": text("cell"),
            "group": text("cell"), "status": TrialStatus.INVALID,
            "failure": f"excluded: {why}", "reference": False,
            "seed": seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
            "run_dir": text("run_dir"), "host": text("host"), "objective": "",
            "machine": None, "value": math.nan}


def collapse_duplicates(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Completed rows repeating an earlier completed row's (cell, seed) become status
    ``duplicate`` with a failure naming the trial that counts: one run stored twice is one
    run. The first (lowest trial number) is kept whatever the copies hold."""
    for i, j in duplicate_of(rows).items():
        rows[i] = {**rows[i], "status": TrialStatus.DUPLICATE,
                   "failure": f"excluded: same cell and seed as trial {rows[j].get('trial')}, "
                              "which counts; one run is not counted twice"}
    return rows


def excluded(df: pd.DataFrame) -> list[str]:
    """One line per trial a reader left out (invalid attributes, a duplicate in storage)."""
    if df is None or df.empty or "failure" not in df.columns:
        return []
    part = df[df["failure"].astype(str).str.startswith("excluded: ")]
    return [f"trial {r['trial']} ({r['cell'] or '?'}): {r['failure'].removeprefix('excluded: ')}"
            for r in part.to_dict("records")]


# --------------------------------------------------------------------------- studies
def load_study(name: str, storage: str | None = None, studies_dir: str | Path = "studies"):
    """The Optuna study ``name`` (e.g. ``table1-quick``) from ``storage`` (default:
    STUDIES_DIR/NAME.db, where ``xraygan sweep --out STUDIES_DIR`` puts it); a missing file or
    name raises XrayganError listing what exists."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = storage or default_storage(studies_dir, name)
    if url.startswith("sqlite:///") and not Path(url.split(":///", 1)[1]).is_file():
        raise XrayganError(f"study {name!r}: no database {url.split(':///', 1)[1]}; run "
                           "`xraygan sweep` first, or pass the sweep's --out as --studies DIR "
                           "or its --storage URL")

    opened = open_storage(url)
    names = optuna.get_all_study_names(storage=opened)
    if name not in names:
        raise XrayganError(f"study {name!r} is not in {url}; it holds: {', '.join(names) or 'none'}")
    return optuna.load_study(study_name=name, storage=opened)


def study_attrs(study) -> dict[str, Any]:
    """The study's user attributes, typed (xraygan.trials.check_study_attrs); one
    XrayganError naming the study and the attribute when one has the wrong type."""
    try:
        return check_study_attrs(study.user_attrs)
    except InvalidTrial as e:
        raise XrayganError(f"study {study.study_name}: {e}") from None


def trials_frame(study) -> pd.DataFrame:
    """One row per trial of an Optuna study (attrs flattened; see :func:`record`)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append(record(t.user_attrs, trial=t.number, state=t.state.name,
                           value=t.value if t.value is not None else math.nan,
                           started=_utc(t.datetime_start)))
    return _frame(collapse_duplicates(rows))


# --------------------------------------------------------------------------- run folders
def run_attrs(run: str | Path) -> dict[str, Any]:
    """A run folder as trial-like attrs: config.json, summary.json (its ``metrics`` as
    written by the trainer or ``xraygan metrics``). A summary whose metrics are not a mapping,
    or an evaluations.jsonl line that is not an object, raises InvalidTrial naming the file."""
    run = Path(run)
    cfg = runs.read_config(run)
    summary = runs.read_summary(run)
    metrics = summary.get("metrics") or {}
    if not isinstance(metrics, Mapping):
        raise InvalidTrial(f"{run / runs.SUMMARY}: metrics is {type(metrics).__name__}, "
                           "expected an object")
    metrics = dict(metrics)
    for i, ev in enumerate(runs.read_evaluations(run), 1):  # later evaluations (xraygan fid) override
        if not isinstance(ev, Mapping):
            raise InvalidTrial(f"{run / runs.EVALUATIONS}: record {i} is "
                               f"{type(ev).__name__}, expected an object")
        metrics.update({k: v for k, v in ev.items() if isinstance(v, (int, float))})
    return {
        "study": "runs", "scale": "", "cell": cfg.name, "cell_params": {},
        "config": cfg.to_dict(), "seed": cfg.train.seed, "run_dir": str(run.resolve()),
        "status": summary.get("status", ""), "metrics": metrics,
        "images_per_s": summary.get("images_per_s"), "train_time_s": summary.get("train_time_s"),
        "params_g": summary.get("params_g"), "params_d": summary.get("params_d"),
        "steps": summary.get("step"), "peak_memory_bytes": summary.get("peak_memory_bytes"),
        "memory": {"device": summary.get("device", "")},
    }


def runs_frame(paths: Iterable[str | Path], compute_missing: bool = True) -> pd.DataFrame:
    """One row per run folder under ``paths`` (xraygan.runs.find_runs). A run whose summary
    has no metrics gets the cheap ones from xraygan.metrics.run_metrics (no FID); a run whose
    files hold impossible values is a row with status ``invalid`` (:func:`record`)."""
    rows = []
    for i, run in enumerate(runs.find_runs(list(paths))):
        try:
            attrs = run_attrs(run)
        except InvalidTrial as e:
            rows.append(_invalid_row({"cell": Path(run).name, "run_dir": str(run)}, str(e),
                                     {"trial": i, "state": "FAIL", "study": "runs"}))
            continue
        if compute_missing and "d_loss_mean" not in attrs["metrics"]:
            from xraygan.metrics import run_metrics

            try:
                attrs["metrics"].update(run_metrics(run))
            except XrayganError as e:  # a damaged run stays in the table, marked, not fatal
                warnings.warn(f"{run}: left without metrics: {e}", stacklevel=2)
                attrs["metrics"]["notes"] = f"damaged: {e}"
        status = attrs["status"] if isinstance(attrs["status"], str) else ""
        rows.append(record(attrs, trial=i, state="COMPLETE" if status == TrialStatus.COMPLETED
                           else (status or "UNKNOWN").upper(), value=math.nan))
    return _frame(collapse_duplicates(rows))


def fill_sample_metrics(df: pd.DataFrame, column: str = "blockiness") -> pd.DataFrame:
    """Rows without ``column`` whose run folder still holds samples (a diverged or errored
    trial's last grid or checkpoint) get the ``samples`` metric from xraygan.metrics, so
    that Table III has a number in every cell. Returns a copy; ``filled`` marks those rows."""
    from xraygan.metrics import run_metrics

    out = df.copy()
    if column not in out.columns:
        out[column] = math.nan
    out["filled"] = False
    for i, row in out.iterrows():
        run = row.get("run_dir")
        if pd.notna(row[column]) or not run or not runs.is_run_dir(run):
            continue
        try:
            got = run_metrics(run, metrics=("samples",))
        except (XrayganError, ValueError, OSError):
            continue
        for k, v in got.items():
            if k in out.columns or isinstance(v, (int, float)):
                out.loc[i, k] = v
        out.loc[i, "filled"] = pd.notna(out.loc[i, column])
    return out


def memory_json_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows written by ``xraygan memory --json`` (xraygan.memory.report.write_json: a dict
    with "rows") or ``--csv`` (one MemoryRow per line), read bounded and each row checked
    for the fields a report uses (check_memory_rows)."""
    path = Path(path)
    if not path.is_file():
        raise XrayganError(f"--memory: {path} does not exist (write it with xraygan memory --json)")
    raw = read_bounded(path, "json_bytes", f"--memory: {path}", error=XrayganError)
    if path.suffix == ".csv":
        try:
            df = pd.read_csv(io.BytesIO(raw), encoding="utf-8")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
                ValueError) as e:
            raise XrayganError(f"--memory: {path} is not a CSV of xraygan memory --csv "
                               f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
                for r in df.to_dict("records")]
        return check_memory_rows(rows, path)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise XrayganError(f"--memory: {path} is not valid JSON ({e})") from None
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise XrayganError(f"--memory: {path} has no \"rows\" list (expected xraygan memory --json)")
    return check_memory_rows(rows, path)


MEMORY_ROW_FIELDS = {"image_size": int, "features": int, "batch_size": int, "batchnorm": str,
                     "optimizer": str}
"""Fields of xraygan.memory.report.MemoryRow that a report reads, with their types; the byte
counts (estimate_bytes, measured_peak_bytes, ...) are numbers >= 0 or empty."""


def check_memory_rows(rows: list[Any], path: Path) -> list[dict[str, Any]]:
    """Every row a dict with MEMORY_ROW_FIELDS of the right type (counts >= 1) and byte counts
    that are finite numbers >= 0; XrayganError naming the file and row otherwise."""
    for i, r in enumerate(rows, 1):
        where = f"--memory: {path}: row {i}"
        if not isinstance(r, dict):
            raise XrayganError(f"{where} is a {type(r).__name__}, expected an object")
        for key, kind in MEMORY_ROW_FIELDS.items():
            v = r.get(key)
            ok = (isinstance(v, int) and not isinstance(v, bool) and v >= 1) if kind is int \
                else isinstance(v, str) and bool(v)
            if not ok:
                shown = repr(v)[:40] if key in r else "missing"
                raise XrayganError(f"{where}: {key} is {shown}, expected "
                                   f"{'a whole number >= 1' if kind is int else 'a name'} "
                                   "(expected rows of xraygan memory --json / --csv)")
        for key, v in r.items():
            if key.endswith("_bytes") and v is not None and not (
                    isinstance(v, (int, float)) and not isinstance(v, bool)
                    and math.isfinite(v) and v >= 0):
                raise XrayganError(f"{where}: {key} is {repr(v)[:40]}, expected a byte count >= 0")
    return rows


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for col in TRIAL_COLUMNS:
        if col not in df.columns:
            df[col] = pd.Series(dtype=object)
    return df


def _utc(when: Any) -> str:
    """A datetime as ISO 8601 UTC (naive ones are Optuna's local time), '' for None."""
    if when is None:
        return ""
    if when.tzinfo is None:
        when = when.astimezone()
    return when.astimezone(datetime.UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- populations
POPULATION_COLUMNS = ("scale", "data_source", "num_images", "image_size", "g_features",
                      "d_features", "batch_size", "length", "fid_n")
"""What makes runs comparable: trials that differ in any of these never enter one test
(32 px FIDs on 256 samples and 64 px FIDs on 10,000 are different quantities, and so are
runs of 2,500 and 6,000 iterations, or of another batch or width). ``length`` is the run's
registered length, "N steps" or "E epochs" (config train.steps, else train.epochs)."""


def run_length(row: Mapping[str, Any]) -> str:
    """A trial's registered length in words: "2500 steps", "150 epochs", or "?"."""
    steps, epochs = row.get("config_steps"), row.get("config_epochs")
    if isinstance(steps, (int, float)) and steps == steps and steps > 0:
        return f"{_key_part(steps)} steps"
    if isinstance(epochs, (int, float)) and epochs == epochs and epochs > 0:
        return f"{_key_part(epochs)} epochs"
    return "?"


def with_fid_n(df: pd.DataFrame, scale: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """A copy with column ``fid_n``: the generated-sample count of FID the study declared
    (its scale), else what each run recorded (fid_n1), else 0 (no FID)."""
    out = df.copy()
    declared = math.nan
    if scale:
        declared = float(scale.get("fid_samples") or 0) if scale.get("fid", True) else 0.0
    rec = out["fid_n1"].astype(float) if "fid_n1" in out.columns else pd.Series(math.nan, out.index)
    out["fid_n"] = rec.where(rec.notna(), declared).fillna(0.0) if math.isfinite(declared) \
        else rec.fillna(0.0)
    return out


def _key_part(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "?"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v) or "?"


def population_key(row: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(run_length(row) if c == "length" else _key_part(row.get(c))
                 for c in POPULATION_COLUMNS)


def population_label(key: Sequence[str]) -> str:
    scale, data, n, size, wg, wd, batch, length, fid_n = key
    widths = wg if wg == wd else f"{wg}/{wd}"
    return (f"scale {scale}, {data} data ({n} images), {size} px, width {widths}, "
            f"{length} of batch {batch}, FID on {fid_n if fid_n not in ('0', '?') else 'no'} "
            "samples")


def by_population(df: pd.DataFrame) -> dict[tuple[str, ...], pd.DataFrame]:
    """The trials frame split by :data:`POPULATION_COLUMNS` (in order of first appearance)."""
    if df is None or df.empty:
        return {}
    keys = [population_key(r) for r in df.to_dict("records")]
    out: dict[tuple[str, ...], list[int]] = {}
    for i, k in enumerate(keys):
        out.setdefault(k, []).append(i)
    return {k: df.iloc[idx] for k, idx in out.items()}
