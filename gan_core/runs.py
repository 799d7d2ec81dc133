"""The run-folder contract between training and everything after it.

    runs/0003-paper-elu/
      config.json         resolved ExperimentConfig, written before step 0
      metrics.csv         one row per logged iteration (pandas.read_csv reads it directly)
      samples/            step_000200.png ... sample grids from fixed noise
      checkpoints/last.pt G, D, both optimizers, the noise RNG state, step, config (weights_only-safe)
      summary.json        status, steps, timings and end-of-run metrics (updated at every checkpoint)
      evaluations.jsonl   one JSON object per later evaluation (xraygan metrics / fid)
      .lock               while training: held (flock) by the one writer, "PID HOST"

Every reader and writer of these files lives here; metrics, ablations and reports go through
this module, never through hard-coded paths. Writes are atomic (temp file + rename), so a
killed process leaves either the old file or the new one, never half of one; the temp file a
killed writer leaves behind carries its PID and is removed by the next writer that takes the
lock (:func:`lock_run`). A folder is a run once it has both config.json and summary.json: the
trainer writes the two together after validation, data loading and the resource guard, so a
start that fails leaves no half-made run behind.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from .config import ExperimentConfig
from .errors import RunFolderError, XrayganError
from .lazy import lazy_module
from .safeio import LIMITS, read_bounded, regular_file_size

torch = lazy_module("torch")
pd = lazy_module("pandas")
np = lazy_module("numpy")

CONFIG = "config.json"
STEP_LOG = "metrics.csv"  # one row per logged step (not the metrics registry, xraygan.metrics.METRICS)
SUMMARY = "summary.json"
EVALUATIONS = "evaluations.jsonl"
SAMPLES = "samples"
CHECKPOINTS = "checkpoints"
LAST_CHECKPOINT = "last.pt"
LOCK = ".lock"


class RunStatus(StrEnum):
    """summary.json's ``status``: where a run folder's training stands."""

    RUNNING = "running"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"  # Ctrl-C / SIGTERM: checkpointed, resumable
    DIVERGED = "diverged"  # a loss or a parameter became non-finite
    FAILED = "failed"  # stopped by the system (a full disk): the last checkpoint is intact

METRIC_COLUMNS = ("step", "epoch", "loss_d", "loss_g", "d_real", "d_fake", "images_per_s", "time_s")
"""Columns of metrics.csv. d_real / d_fake are mean D(x) and D(G(z)) as probabilities."""


# --------------------------------------------------------------------------- atomic writes
TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"^\..+\.(\d+)-[A-Za-z0-9_]+\.tmp$")  # .NAME.PID-RANDOM.tmp
_LEGACY_TEMP_AGE_S = 3600  # temp names without a PID (older versions): removed once this old
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The PID in the name lets the next writer tell a dead writer's leftover from a live one's.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=TEMP_SUFFIX,
                               dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        if e.filename in (None, tmp):  # write/fsync errors name no file, or the temp one:
            raise type(e)(e.errno, e.strerror, str(path)) from None  # name the target
        raise
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
    """A run: config.json and summary.json (a run that started training, whatever its end)."""
    path = Path(path)
    return (path / CONFIG).is_file() and (path / SUMMARY).is_file()


def is_failed_start(path: str | Path) -> bool:
    """config.json without summary.json: a start that failed before training (older versions
    wrote config.json before validating); no metrics to show, nothing to resume."""
    path = Path(path)
    return ((path / CONFIG).is_file() and not (path / SUMMARY).is_file()
            and not lost_summary(path))


def lost_summary(path: str | Path) -> str:
    """What training left in a folder whose summary.json is missing (a checkpoint, a metric
    log), in words; "" when there is none. Such a folder is a run that lost its summary (a
    deleted file, a copy that left it out), not a failed start: it must not be deleted."""
    path = Path(path)
    if not (path / CONFIG).is_file() or (path / SUMMARY).is_file():
        return ""
    found = [what for what, f in (("a checkpoint", checkpoint_path(path)),
                                  (f"a metric log ({STEP_LOG})", path / STEP_LOG)) if f.is_file()]
    return " and ".join(found)


def find_runs(paths: Iterable[str | Path], skipped: list[Path] | None = None) -> list[Path]:
    """Run folders among ``paths``; a folder that is not a run is searched one level down.

    Folders holding only config.json (failed starts) are left out, and appended to
    ``skipped`` when given, so that reports list runs, not NaN rows; naming one directly is an
    error that says what it is.
    """
    paths = list(paths)
    found: list[Path] = []
    left_out: list[Path] = []
    for p in map(Path, paths):
        if is_run_dir(p):
            found.append(p)
        elif lost_summary(p):
            raise RunFolderError(
                f"{p}: a run without its {SUMMARY} (it holds {lost_summary(p)}); keep it: "
                f"`xraygan train --resume {p}` continues it and writes the summary again"
            )
        elif is_failed_start(p):
            raise RunFolderError(
                f"{p}: not a run, only {CONFIG} and no {SUMMARY} (a start that failed before "
                "step 0); delete it or train into it again"
            )
        elif p.is_dir():
            children = sorted(c for c in p.iterdir() if c.is_dir())
            found.extend(c for c in children if is_run_dir(c))
            left_out.extend(c for c in children if is_failed_start(c) or lost_summary(c))
        else:
            raise RunFolderError(f"{p}: not a run folder (no {CONFIG}) and not a folder of runs")
    if skipped is not None:
        skipped.extend(left_out)
    if not found:
        lost = [c for c in left_out if lost_summary(c)]
        extra = (f"; {len(left_out) - len(lost)} folder(s) hold only {CONFIG} (failed starts)"
                 if len(left_out) > len(lost) else "")
        if lost:
            extra += (f"; {len(lost)} run(s) lack their {SUMMARY} (e.g. {lost[0]}: keep them, "
                      "`xraygan train --resume RUN` writes it again)")
        raise RunFolderError(
            f"no run folders (with {CONFIG} and {SUMMARY}) under {', '.join(map(str, paths))}{extra}"
        )
    return found


def checkpoint_path(run: str | Path) -> Path:
    return Path(run) / CHECKPOINTS / LAST_CHECKPOINT


def sample_path(run: str | Path, step: int) -> Path:
    return Path(run) / SAMPLES / f"step_{step:06d}.png"


def sample_paths(run: str | Path) -> list[Path]:
    return sorted((Path(run) / SAMPLES).glob("step_*.png"))


# --------------------------------------------------------------------------- config
def write_config(run: str | Path, cfg: ExperimentConfig) -> bool:
    """Write config.json unless it already holds exactly this text (a resume to the same
    target leaves the file byte for byte, mtime included). True when written."""
    path = Path(run) / CONFIG
    text = cfg.to_json() + "\n"
    try:
        if path.read_bytes() == text.encode("utf-8"):
            return False
    except OSError:
        pass
    atomic_write_text(path, text)
    return True


def read_config(run: str | Path) -> ExperimentConfig:
    path = Path(run) / CONFIG
    if not path.is_file():
        raise RunFolderError(f"{run}: no {CONFIG}; is this a run folder?")

    try:
        return ExperimentConfig.from_json(
            read_bounded(path, "config_bytes", str(path), error=RunFolderError).decode("utf-8"))
    except json.JSONDecodeError as e:
        raise RunFolderError(f"{path}: not valid JSON ({e})") from None
    except UnicodeDecodeError:
        raise RunFolderError(f"{path}: not UTF-8 text; is it a config.json?") from None
    except XrayganError as e:  # a field of the wrong type or out of range: name the file
        raise RunFolderError(f"{path}: {e}") from None


# --------------------------------------------------------------------------- the writer's lock
class RunInUse(RunFolderError):
    """Another process holds the run folder's lock."""


def _lock_fd(fd: int) -> bool:
    """Try to take an exclusive lock on ``fd`` without waiting; False when someone holds it."""
    try:
        import fcntl
    except ImportError:  # Windows: lock the first byte instead
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as e:  # a filesystem without locks (some network mounts): train unlocked
        if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
            return True
        raise


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (own.st_dev, own.st_ino) == (st.st_dev, st.st_ino)


class RunLock:
    """The exclusive lock of one run folder, held for a whole training run.

    ``flock`` on ``RUN/.lock``: the kernel drops it when the holder dies (kill -9 included),
    so a stale lock cannot block a resume; the file keeps "PID HOST" for the message a second
    writer gets. Taking the lock also removes the temp files a dead writer left behind.
    Releasing removes the file, so a finished run folder holds only its results: the holder
    unlinks it before unlocking, and a writer that locked a file just unlinked sees that its
    inode is no longer the path's and tries again.
    """

    def __init__(self, run: str | Path, create: bool = True) -> None:
        self.run = Path(run)
        self.path = self.run / LOCK
        self.create = create
        self._fd: int | None = None
        self.removed: list[Path] = []

    def acquire(self) -> RunLock:
        if self.create:
            self.run.mkdir(parents=True, exist_ok=True)
        elif not self.run.is_dir():
            raise RunFolderError(f"{self.run}: no such run folder")
        for _ in range(100):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
            if not _lock_fd(fd):
                try:
                    holder = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
                finally:
                    os.close(fd)
                pid, host = (holder + ["?", "?"])[:2] if holder else ("?", "?")
                raise RunInUse(f"run {self.run} is in use by PID {pid} on {host}; wait for it "
                               "to finish or stop it (Ctrl-C checkpoints) before writing to "
                               "this run")
            if _same_file(fd, self.path):
                break
            os.close(fd)  # locked a lock file its holder removed on release: open the new one
        else:
            raise RunFolderError(f"{self.path}: could not take the run's lock (its file keeps "
                                 "being replaced)")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        self.removed = remove_stale_temp_files(self.run)
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.unlink(self.path)  # still locked: no writer can take this inode meanwhile
            except OSError:
                try:
                    os.ftruncate(fd, 0)  # could not remove it: at least name no holder
                except OSError:
                    pass
            os.close(fd)  # the kernel frees the flock here

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire() if self._fd is None else self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_run(run: str | Path, create: bool = True) -> RunLock:
    """Take ``run``'s writer lock (RunInUse when another process has it); release it with
    ``.release()`` or use it as a context manager. ``create=False``: the folder must exist."""
    return RunLock(run, create=create).acquire()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # exists, another user's (or not ours to ask)
        return True
    return True


def remove_stale_temp_files(run: str | Path) -> list[Path]:
    """Delete atomic-write temp files of dead writers in ``run`` and its subfolders.

    Called by the lock holder, so no writer of this run is alive but itself; the PID check
    still spares files of another live process (``xraygan metrics`` updating summary.json).
    """
    run = Path(run)
    removed = []
    now = time.time()
    for folder in (run, run / CHECKPOINTS, run / SAMPLES):
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for f in entries:
            if not (f.name.startswith(".") and f.name.endswith(TEMP_SUFFIX)) or not f.is_file():
                continue
            m = _TEMP_NAME.match(f.name)
            try:
                stale = (not _pid_alive(int(m.group(1))) if m
                         else now - f.stat().st_mtime > _LEGACY_TEMP_AGE_S)
                if stale:
                    f.unlink()
                    removed.append(f)
            except OSError:
                continue
    return removed


# --------------------------------------------------------------------------- metrics log
class MetricsLog:
    """Append-only CSV of per-iteration metrics. Reopened on resume, truncated to the
    checkpoint's step so that the log and the weights always describe the same run."""

    def __init__(self, run: str | Path, resume_step: int | None = None) -> None:
        self.path = Path(run) / STEP_LOG
        if resume_step is not None and self.path.exists():
            self._truncate_after(resume_step)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._file = open(self.path, "a", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=METRIC_COLUMNS)
        if new:
            self._writer.writeheader()
            self._file.flush()

    def _truncate_after(self, step: int) -> None:
        # Only the lock holder gets here, so no appender is live while the file is replaced.
        # Rows whose step is not an integer (a line cut by kill -9) are dropped.
        with open(self.path, newline="", encoding="utf-8", errors="replace") as f:
            rows = [r for r in csv.DictReader(f) if _int(r.get("step")) is not None
                    and _int(r["step"]) <= step]
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


def _int(text: Any) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def read_metrics(run: str | Path):
    """metrics.csv as a pandas DataFrame (one row per logged iteration).

    A last line cut by a crash is dropped; a file that is not this log (wrong header,
    garbage, not UTF-8) is a RunFolderError naming it."""
    path = Path(run) / STEP_LOG
    if not path.is_file():
        raise RunFolderError(f"{run}: no {STEP_LOG}; the run has not logged any iteration")
    size = regular_file_size(path, str(path))
    if size > LIMITS["metrics_bytes"].value():
        raise RunFolderError(f"{path} is {LIMITS['metrics_bytes'].exceeded(f'{size:,} bytes')}")
    try:
        df = pd.read_csv(path, on_bad_lines="skip", encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise RunFolderError(f"{path}: empty file, expected a header row "
                             f"({','.join(METRIC_COLUMNS)})") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RunFolderError(f"{path}: not a metrics log ({reason})") from None
    missing = [c for c in ("step", "loss_d", "loss_g") if c not in df.columns]
    if missing:
        raise RunFolderError(f"{path}: not a metrics log, missing column(s) {', '.join(missing)} "
                             f"(expected {','.join(METRIC_COLUMNS)})")
    # a row cut mid-write has a non-numeric or missing step: not a logged iteration
    steps = pd.to_numeric(df["step"], errors="coerce")
    if steps.isna().any():
        df = df[steps.notna()].reset_index(drop=True)
        df["step"] = pd.to_numeric(df["step"]).astype("int64")
        for c in df.columns.drop("step"):
            df[c] = pd.to_numeric(df[c], errors="coerce")
    check_steps(df["step"], path)
    return df


def check_steps(steps, path: Path) -> None:
    """A metrics log's steps are whole numbers >= 0, strictly increasing: anything else is
    not the log of one run (hand-edited, two runs appended into one file, a corrupt copy),
    and scoring it would give a plausible wrong number."""
    values = np.asarray(steps, dtype=np.float64)
    if not len(values):
        return
    line = lambda i: i + 2  # noqa: E731 - the header is line 1
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0) | (values != np.round(values)))
    if len(bad):
        i = int(bad[0])
        raise RunFolderError(f"{path}:{line(i)}: step {values[i]:g} is not a step (expected a "
                             "whole number >= 0)")
    back = np.flatnonzero(np.diff(values) <= 0)
    if len(back):
        i = int(back[0]) + 1
        raise RunFolderError(f"{path}:{line(i)}: step {int(values[i])} follows step "
                             f"{int(values[i - 1])}; a run's log only moves forward (two runs "
                             "written into one file, or an edited log)")


# --------------------------------------------------------------------------- summary, evaluations
def read_summary(run: str | Path) -> dict[str, Any]:
    """summary.json as a dict ({} when absent); a corrupt one is a RunFolderError naming it."""
    path = Path(run) / SUMMARY
    if not path.is_file():
        return {}

    try:
        summary = json.loads(read_bounded(path, "json_bytes", str(path), error=RunFolderError)
                             .decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise RunFolderError(f"{path}: corrupt summary, not valid JSON ({e})") from None
    if not isinstance(summary, dict):
        raise RunFolderError(f"{path}: corrupt summary, expected a JSON object, got "
                             f"{type(summary).__name__}")
    return summary


def update_summary(run: str | Path, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into summary.json (atomically) and return the new summary.

    The trainer (the lock holder) owns the file: a corrupt one is replaced, keeping what can
    still be said (``fields``), rather than failing a run over its own summary."""
    try:
        summary = read_summary(run)
    except RunFolderError:
        summary = {"summary_recovered": True}
    summary.update(fields)
    atomic_write_json(Path(run) / SUMMARY, summary)
    return summary


def read_summary_lenient(run: str | Path) -> dict[str, Any]:
    """summary.json, or {} when it is absent or corrupt (what a resume carries over)."""
    try:
        return read_summary(run)
    except RunFolderError:
        return {}


def force_summary(run: str | Path, **fields: Any) -> None:
    """update_summary for a full disk: when the atomic write fails for lack of space, rewrite
    summary.json in place (truncating it frees its blocks, so a file of the same size fits);
    gives up silently when even that fails, since the caller is already reporting the error."""
    try:
        update_summary(run, **fields)
        return
    except OSError:
        pass
    summary = read_summary_lenient(run)
    summary.update(fields)
    text = json.dumps(json_safe(summary), indent=2, sort_keys=True, allow_nan=False) + "\n"
    try:
        with open(Path(run) / SUMMARY, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError:
        pass


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
    raw = read_bounded(path, "json_bytes", str(path), error=RunFolderError)
    for line in raw.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a crash mid-write: skip it
                continue
    return out
