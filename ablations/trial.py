"""One trial = one training run: train the cell's config into its run folder, score it, and
record everything as trial user attrs (names in ablations/__init__.py)."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import socket
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna.storages import BaseStorage
from optuna.trial import TrialState
from PIL import Image

from xraygan import runs
from xraygan.config import ExperimentConfig
from xraygan.data import ImageSet, load_dataset
from xraygan.errors import TrainingDiverged
from xraygan.fingerprint import fingerprint
from xraygan.memory.estimate import estimate_step
from xraygan.memory.measure import build_step, make_batch, measure_step_peak
from xraygan.metrics import CHEAP_METRICS, run_metrics
from xraygan.metrics.artifacts import blockiness, split_grid
from xraygan.precision import resolve_amp
from xraygan.process import STOP_SIGNALS, StopRequested, governor_tick, stop_on_signals, trim_malloc
from xraygan.train import resolve_device, total_steps, train
from xraygan.trials import TrialStatus

from .spec import Cell, StudyContext, StudySpec
from .storage import requeue

HOST = socket.gethostname()


class Heartbeat:
    """Record the trial's heartbeat every ``interval`` s from a thread while it runs
    (what optuna's own optimize loop does; we drive trials ourselves)."""

    def __init__(self, storage: BaseStorage, trial_id: int, interval: float) -> None:
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.storage.record_heartbeat(self.trial_id)

    def __enter__(self) -> Heartbeat:
        if hasattr(self.storage, "record_heartbeat") and self.storage.get_heartbeat_interval():
            self.storage.record_heartbeat(self.trial_id)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


@dataclass
class TrialEnv:
    """What a worker keeps between trials."""

    spec: StudySpec
    ctx: StudyContext
    study_dir: Path  # run folders of this study on this machine
    storage: BaseStorage  # the raw RDBStorage (heartbeats)
    heartbeat: float
    echo: Callable[[str], None] = print
    reference: Mapping[str, Any] | None = None  # attrs of the finished reference trial
    datasets: dict[tuple, ImageSet] = field(default_factory=dict)
    progress: bool | str = False  # train()'s progress: True, False or "lines" (xraygan.progress)
    tensorboard: bool = False  # RUN/tb/ event files per trial

    def dataset(self, cfg: ExperimentConfig) -> ImageSet:
        key = (cfg.data.source, cfg.data.num_images, cfg.data.seed, cfg.model.image_size,
               cfg.model.channels)
        if key not in self.datasets:
            from xraygan.guard import check_training

            check_training(cfg)  # the data and the model must fit before the data is loaded
            self.datasets[key] = load_dataset(cfg.data, cfg.model.image_size, cfg.model.channels)
        return self.datasets[key]


def run_folder(attrs: Mapping[str, Any], study_dir: Path, key: str) -> tuple[Path, bool]:
    """(run folder, resume). A retried trial continues its killed predecessor's folder from
    the last checkpoint when that folder is on this machine; otherwise a fresh folder."""
    old = attrs.get("run_dir")
    if old and attrs.get("host") == HOST and Path(old).is_dir():
        old = Path(old)
        if runs.checkpoint_path(old).is_file():
            return old, True
        shutil.rmtree(old)  # killed before its first checkpoint: start it over, same place
        old.mkdir(parents=True)
        return old, False
    return runs.new_run_dir(study_dir, key), False


def measure_memory(cfg: ExperimentConfig) -> dict[str, Any]:
    """Measured peak of one training step and the project's estimate (xraygan.memory)."""
    device = resolve_device(cfg.train.device)
    amp = resolve_amp(cfg.train.amp, device)
    step = build_step(cfg.model, cfg.optim, device=device, amp_dtype=amp,
                      channels_last=cfg.train.channels_last, loss=cfg.train.loss)
    est = estimate_step(step.G, step.D, cfg.model, cfg.optim, cfg.train.batch_size,
                        amp_dtype=amp, channels_last=cfg.train.channels_last)
    real, z = make_batch(cfg.model, cfg.train.batch_size, device)
    peak = measure_step_peak(step, real, z)
    return {"measured_peak_bytes": peak.peak_bytes, "measured_resident_bytes": peak.resident_bytes,
            "method": peak.method, "device": peak.device, "estimate_bytes": est.total,
            "estimate": est.to_dict()}


REPORTS_PER_TRIAL = 50
"""How many intermediate values a trial reports (at most, plus its last step): often enough for
a median or successive-halving pruner, few enough that the storage is not written every step."""

INTERMEDIATE_LOSS = "d_loss_mean (running)"
INTERMEDIATE_BLOCKINESS = "blockiness"


class LossReporter:
    """``on_log`` callback of grid studies: the running mean of D's loss over the trial's log so
    far, reported as the trial's intermediate value every ``total_steps / REPORTS_PER_TRIAL``
    steps (and at the last step).

    Why this proxy: it is the ``d_loss_mean`` metric itself (the objective when FID is not
    computed, and equal to it at the last step), and Table I's D-loss statistics are the
    paper's training-time stand-in for FID; an FID of a few hundred samples every few steps
    would cost more than the training it judges. The last intermediate value equals the
    trial's ``metrics.d_loss_mean``.
    """

    kind = INTERMEDIATE_LOSS

    def __init__(self, trial: optuna.Trial, prune: bool, total_steps: int = 0,
                 every: int | None = None) -> None:
        self.trial, self.prune, self._every = trial, prune, every
        self.start(total_steps)

    def start(self, total_steps: int) -> None:
        """Set the trial's length (known once its data is loaded); resets the running mean."""
        self.total = total_steps
        self.every = self._every or max(1, total_steps // REPORTS_PER_TRIAL)
        self.sum, self.n, self.next = 0.0, 0, self.every

    def seed(self, rows: Any, upto: int) -> None:
        """Resume: count the log rows the checkpoint keeps (steps <= ``upto``)."""
        for step, loss in zip(rows["step"], rows["loss_d"], strict=True):
            if step <= upto:
                self._add(float(loss))
        self.next = (upto // self.every + 1) * self.every

    def _add(self, loss: float) -> None:
        if math.isfinite(loss):
            self.sum += loss
            self.n += 1

    def __call__(self, row: Mapping[str, Any]) -> None:
        self._add(float(row["loss_d"]))
        step = int(row["step"])
        if (step < self.next and step != self.total) or not self.n:
            return
        self.next = (step // self.every + 1) * self.every
        value = self.sum / self.n
        self.trial.report(value, step)
        if self.prune and self.trial.should_prune():
            raise optuna.TrialPruned(f"running D-loss mean {value:.4f} at step {step}")


class GridReporter:
    """``on_log`` callback of studies that prune on artifacts (compress-search, whose pruner
    thresholds blockiness): scores each new sample grid for blockiness, reports it as the
    trial's intermediate value and stops a trial the pruner rejects."""

    kind = INTERMEDIATE_BLOCKINESS

    def __init__(self, trial: optuna.Trial, run_dir: Path, image_size: int, prune: bool) -> None:
        self.trial, self.run_dir, self.image_size, self.prune = trial, run_dir, image_size, prune
        self.seen: set[int] = set()

    def __call__(self, row: Mapping[str, Any]) -> None:
        grids = runs.sample_paths(self.run_dir)
        if not grids:
            return
        step = int(grids[-1].stem.split("_")[1])
        if step in self.seen:
            return
        self.seen.add(step)
        value = grid_blockiness(grids[-1], self.image_size)
        if not math.isfinite(value):
            return
        self.trial.report(value, step)
        if self.prune and self.trial.should_prune():
            raise optuna.TrialPruned(f"blockiness {value:.3f} at step {step}")


def grid_blockiness(path: Path, image_size: int) -> float:
    try:
        tiles = split_grid(np.asarray(Image.open(path)), image_size)
    except (ValueError, OSError):  # an all-black grid, or a file being replaced
        return math.nan
    return blockiness(tiles)["blockiness"]


def execute(study: optuna.Study, trial: optuna.Trial, cell: Cell, env: TrialEnv) -> str:
    """Run ``trial`` as ``cell``, tell the study, return the trial's status attr."""
    t_start = time.perf_counter()
    attrs = trial.user_attrs
    cfg = cell.config
    run_dir, resume = run_folder(attrs, env.study_dir, cell.key)
    trial_id = trial._trial_id  # optuna exposes no public id; the storage API needs it

    def set_attrs(**values: Any) -> None:
        for k, v in values.items():
            trial.set_user_attr(k, v)

    prune = env.spec.pruner is not None and not cell.reference
    if env.spec.pruner is not None:  # the pruner judges blockiness: report what it judges
        reporter: LossReporter | GridReporter = GridReporter(trial, run_dir, cfg.model.image_size,
                                                             prune=prune)
    else:
        reporter = LossReporter(trial, prune=prune)
    set_attrs(study=env.spec.name, scale=env.ctx.scale.name, cell=cell.key,
              cell_params=dict(cell.params), reference=cell.reference, config=cfg.to_dict(),
              seed=cfg.train.seed, run_dir=str(run_dir.resolve()), host=HOST, pid=os.getpid(),
              fingerprint=fingerprint(resolve_device(cfg.train.device)),
              intermediate=reporter.kind, status=TrialStatus.RUNNING)
    resumed_step = 0
    if resume:
        from xraygan.checkpoint import load_checkpoint

        resumed_step = int(load_checkpoint(runs.checkpoint_path(run_dir))["step"])
        set_attrs(resumed_from_step=resumed_step)

    def finish(status: str, state: TrialState, value: float | None = None, **extra: Any) -> str:
        set_attrs(status=status, wall_time_s=round(time.perf_counter() - t_start, 3), **extra)
        runs.update_summary(run_dir, trial=trial.number, trial_status=status)
        if state == TrialState.COMPLETE and extra.get("objective"):
            name_metric(study, extra["objective"])
        if env.spec.constraints:  # a constrained search: what TPE reads for feasibility
            values = list(extra.get("constraints") or [1.0] * env.spec.constraints)
            for i, v in enumerate(values):
                trial.set_constraint(str(i), float(v))
        study.tell(trial, value, state=state) if value is not None else study.tell(trial, state=state)
        return status

    with Heartbeat(env.storage, trial_id, env.heartbeat):
        try:
            data = env.dataset(cfg)  # inside the try: unreadable data fails this trial only
            if isinstance(reporter, LossReporter):
                reporter.start(total_steps(cfg, len(data)))
                if resumed_step:
                    with contextlib.suppress(Exception):  # no log yet: nothing to count
                        reporter.seed(runs.read_metrics(run_dir), resumed_step)
            with stop_on_signals() as stop:  # Ctrl-C / SIGTERM: checkpoint, requeue below
                result = train(cfg, run_dir=run_dir, resume=resume, progress=env.progress,
                               evaluate=False, dataset=data, on_log=reporter, should_stop=stop,
                               on_step=governor_tick,
                               tensorboard=env.tensorboard)
        except TrainingDiverged as e:
            return finish(TrialStatus.DIVERGED, TrialState.FAIL, failure=str(e))
        except optuna.TrialPruned as e:
            return finish(TrialStatus.PRUNED, TrialState.PRUNED, failure=f"pruned: {e}")
        except Exception as e:  # a bad cell must not stop the study: record it, go on
            (run_dir / "trial_error.txt").write_text(traceback.format_exc())
            return finish(TrialStatus.ERROR, TrialState.FAIL, failure=f"{type(e).__name__}: {e}")

        if result.status == runs.RunStatus.INTERRUPTED:  # Ctrl-C / SIGTERM: checkpointed; queue the rest
            finish(TrialStatus.INTERRUPTED, TrialState.FAIL,
                   failure=f"interrupted at step {result.step}")
            requeue(study, study.get_trials(deepcopy=False)[trial.number])
            raise StopRequested(stop.raised)
        try:
            with stop_now_on_signals():  # the checkpoint is written: evaluation just stops
                record = evaluate(cfg, run_dir, result.summary, env)
                name, value = env.spec.score(record["score_inputs"])
                extra = {}
                if env.spec.finish is not None:
                    extra = env.spec.finish(env.ctx, cell, {**attrs, **record}, env.reference)
        except StopRequested as e:  # as during training: recorded, queued again, resumable now
            finish(TrialStatus.INTERRUPTED, TrialState.FAIL,
                   failure=f"interrupted by {e.signal} while evaluating (trained to step "
                           f"{result.step}, checkpoint kept)")
            requeue(study, study.get_trials(deepcopy=False)[trial.number])
            raise
        except Exception as e:
            (run_dir / "trial_error.txt").write_text(traceback.format_exc())
            return finish(TrialStatus.ERROR, TrialState.FAIL, failure=f"evaluation: {type(e).__name__}: {e}")
        record.pop("score_inputs")
        if env.tensorboard:  # this trial's metrics and grid parameters, one HParams row
            from xraygan.tensorboard import hparams_of, log_results

            log_results(run_dir, result.step, record["metrics"],
                        hparams_of({}, {"cell": cell.key, **dict(cell.params),
                                        "train.seed": cfg.train.seed},
                                   device=resolve_device(cfg.train.device)))
        samples = attach_samples(trial, run_dir, env.study_dir)
        return finish(TrialStatus.COMPLETED, TrialState.COMPLETE, value, objective=name, **record, **extra,
                      **flat_metrics(record["metrics"]), **samples)


@contextlib.contextmanager
def stop_now_on_signals():
    """SIGINT, SIGTERM and SIGHUP raise StopRequested at once (evaluation has no step to
    finish first); without this, SIGHUP's default action ended the sweep with the trial left
    RUNNING until its heartbeat went stale."""
    def handler(signum: int, frame: object) -> None:
        raise StopRequested(signal.Signals(signum).name)

    try:
        old = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    except ValueError:  # not the main thread: the process's own handlers apply
        yield
        return
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


METRIC_ATTR_PREFIX = "metric."
DASHBOARD_METRICS = ("fid", "kid", "precision", "recall", "density", "coverage", "d_loss_mean",
                     "d_loss_std", "t0", "collapse_detected", "blockiness", "mem_copy_fraction",
                     "util_gap_synthetic", "images_per_s")
"""The metrics a trial also carries as flat user attrs (optuna-dashboard sorts, filters and
plots scalar attrs, not values inside the nested ``metrics`` dict); the rest stay in
``metrics`` only, so the dashboard's attribute list stays readable."""
ARTIFACTS_DIR = "artifacts"  # under the study's run folder: optuna-dashboard --artifact-dir


def flat_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The :data:`DASHBOARD_METRICS` a trial has, finite, as ``metric.fid`` etc."""
    return {METRIC_ATTR_PREFIX + k: float(metrics[k]) for k in DASHBOARD_METRICS
            if isinstance(metrics.get(k), (int, float)) and math.isfinite(metrics[k])}


def attach_samples(trial: optuna.Trial, run_dir: Path, study_dir: Path) -> dict[str, str]:
    """The run's last sample grid as an Optuna artifact of the trial (optuna-dashboard shows
    it beside the trial: ``optuna-dashboard URL --artifact-dir STUDY_DIR/artifacts``); the
    artifact id as the ``samples_artifact`` attr. A grid that cannot be stored costs the trial
    nothing: the run folder keeps it."""
    grids = runs.sample_paths(run_dir)
    if not grids:
        return {}
    store_dir = study_dir / ARTIFACTS_DIR
    try:
        store_dir.mkdir(parents=True, exist_ok=True)
        art = upload_artifact(artifact_store=FileSystemArtifactStore(store_dir),
                              file_path=str(grids[-1]), study_or_trial=trial,
                              mimetype="image/png")
    except OSError:
        return {}
    return {"samples_artifact": art}


def name_metric(study: optuna.Study, name: str) -> None:
    """Name the objective (optuna-dashboard shows "fid", not "Objective 0")."""
    if study.metric_names == [name]:
        return
    with warnings.catch_warnings():  # experimental in optuna, stable in use
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([name])


def metric_options(scale: Any) -> dict[str, Any]:
    """run_metrics' options for a trial at ``scale``: KID beside FID whenever FID is computed
    (it reuses the same Inception features: ~2 s on one loaded core for 256 x 2,048, against a
    trial of ~2 min; unbiased at any sample count, the quick scale's small-N check)."""
    return {"fid": scale.fid, "kid": scale.fid, "fid_samples": scale.fid_samples}


def evaluate(cfg: ExperimentConfig, run_dir: Path, summary: Mapping[str, Any],
             env: TrialEnv) -> dict[str, Any]:
    """Metrics, memory and timings of a finished run, as trial attrs."""
    scale = env.ctx.scale
    device = str(resolve_device(cfg.train.device))
    t0 = time.perf_counter()
    extra = env.spec.metrics
    names = (*CHEAP_METRICS, *extra) if extra else None
    if env.progress:  # the evaluation can take minutes (Inception features): say it started
        what = f"FID/KID on {scale.fid_samples} samples" if scale.fid else "run metrics"
        env.echo(f"[progress] {run_dir.name}: evaluating ({what})")
    metrics = run_metrics(run_dir, device=device, metrics=names, echo=env.echo,
                          progress=bool(env.progress), **metric_options(scale))
    eval_time = time.perf_counter() - t0
    runs.update_summary(run_dir, metrics=metrics)
    memory = measure_memory(cfg)

    trim_malloc()  # Inception's activations and the measured step: not needed until the next
    peak = summary.get("peak_memory_bytes") or memory["measured_peak_bytes"]
    record = {
        "metrics": _jsonable(metrics),
        "memory": memory,
        "peak_memory_bytes": int(peak),
        "train_time_s": summary.get("train_time_s"),
        "eval_time_s": round(eval_time, 3),
        "images_per_s": summary.get("images_per_s"),
        "params_g": summary.get("params_g"),
        "params_d": summary.get("params_d"),
        "steps": summary.get("step"),
    }
    record["score_inputs"] = {**metrics, **{k: record[k] for k in
                              ("params_g", "params_d", "images_per_s", "peak_memory_bytes")}}
    return record


def _jsonable(d: Mapping[str, Any]) -> dict[str, Any]:
    """Optuna stores attrs as JSON: NaN/inf become None, numpy scalars plain floats."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if hasattr(v, "item"):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        out[k] = v
    return out
