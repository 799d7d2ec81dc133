"""The one training loop: D step, G step, logging, samples from fixed noise, checkpoints.

Determinism is by construction, so that a killed run resumes bit for bit on the CPU:
  * the weight init draws from the CPU generator seeded with the training seed inside a forked
    RNG state, so the process's global RNG is untouched;
  * the data order of epoch e is a permutation drawn from a generator seeded by (seed, e), and
    the batch of step s is a slice of it: no iterator state to save;
  * z is drawn on the CPU from a dedicated generator whose state goes into the checkpoint;
  * the fixed sample noise comes from its own seed and never touches the training generator.
N steps, a resume, and N more steps give the same losses as 2N steps straight (a test).

Three phases, usable apart: :func:`setup` (device, precision, models, optimizers, the step,
noise, the data and the run folder), :func:`run_loop` (the steps, with hooks for logging,
checkpoints, samples and an external stop request) and :func:`finish` (final checkpoint and
sample, summary, metrics). :func:`train` chains them. Process-wide choices (threads, OpenMP
wait policy, allocator, signal handlers) belong to the entry points: xraygan.process.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import guard, runs
from .checkpoint import (
    check_against_run,
    check_resumable,
    check_resume_length,
    load_checkpoint,
    restore_training_state,
    save_checkpoint,
    training_state,
)
from .config import ExperimentConfig, ModelConfig, OptimConfig, validate
from .data import ImageSet, load_dataset
from .errors import DISK_FULL_ERRNOS, ConfigError
from .faults import disk_full, diverged
from .fingerprint import fingerprint
from .imageio import save_grid
from .losses import build_loss
from .models import build_models, count_parameters
from .optim import build_optimizers, resolved_lrs
from .precision import resolve_amp
from .process import reproducibility
from .progress import Progress
from .sampling import generate_from_noise
from .step import GANStep


# --------------------------------------------------------------------------- devices, precision
def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device: expected auto, cpu, cuda or cuda:N, got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name} asked for, but no CUDA device is available")
    return device


def total_steps(cfg: ExperimentConfig, num_images: int) -> int:
    if cfg.train.steps:
        return cfg.train.steps
    return max(1, math.ceil(cfg.train.epochs * steps_per_epoch(num_images, cfg.train.batch_size)))


def steps_per_epoch(num_images: int, batch_size: int) -> int:
    return num_images // batch_size  # drop the ragged last batch, as DCGAN's loader does


def batch_indices(step: int, num_images: int, batch_size: int, seed: int) -> torch.Tensor:
    """Indices of the batch of ``step`` (0-based): a pure function of its arguments."""
    per_epoch = steps_per_epoch(num_images, batch_size)
    epoch, k = divmod(step, per_epoch)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(num_images, generator=gen)
    return perm[k * batch_size : (k + 1) * batch_size]


# --------------------------------------------------------------------------- models + step
def init_models(model: ModelConfig, seed: int) -> tuple[nn.Module, nn.Module]:
    """G and D initialised from ``seed``: the same weights as ``torch.manual_seed(seed)`` then
    ``build_models``, without touching the process's global RNG (fork_rng restores it)."""
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        return build_models(model)


@dataclass
class Trainer:
    """Models, optimizers and the step, laid out as training lays them out: what the memory
    measurements and the benchmarks reuse."""

    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    step: GANStep
    lr_g: float
    lr_d: float


def build_trainer(
    model: ModelConfig,
    optim: OptimConfig,
    *,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    loss: str = "nonsaturating",
    compile: bool = False,
    seed: int = 0,
) -> Trainer:
    G, D = init_models(model, seed)  # validates the geometry before anything else is allocated
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    G.to(device, memory_format=memory_format)
    D.to(device, memory_format=memory_format)
    lr_g, lr_d = resolved_lrs(optim)
    opt_g, opt_d = build_optimizers(G.parameters(), D.parameters(), optim)
    step = GANStep(G, D, opt_g, opt_d, build_loss(loss), device=device, amp_dtype=amp_dtype,
                   channels_last=channels_last, compile=compile)
    return Trainer(G, D, opt_g, opt_d, step, lr_g, lr_d)


# --------------------------------------------------------------------------- setup
@dataclass
class TrainResult:
    run_dir: Path
    step: int
    status: str  # completed | interrupted
    summary: dict[str, Any]


@dataclass
class Session:
    """Everything one run needs, built by :func:`setup`; ``step`` advances in :func:`run_loop`."""

    cfg: ExperimentConfig
    run_dir: Path
    device: torch.device
    amp_dtype: torch.dtype | None
    trainer: Trainer
    noise: torch.Generator  # z for the training steps; its state is checkpointed
    fixed_z: torch.Tensor  # the sample grid's noise
    data: ImageSet
    images_u8: torch.Tensor
    steps: int  # total
    per_epoch: int
    start: int  # the step this session starts from (the checkpoint's on resume)
    resumed: bool
    prior: dict[str, Any] = field(default_factory=dict)  # the summary before a resume
    lock: runs.RunLock | None = None  # the run folder's writer lock, held until close()
    current_step: int = 0  # where run_loop is (for the disk-full summary)
    last_good: int | None = None  # the step of the last checkpoint written (checked finite)

    def close(self) -> None:
        """Release the run folder's lock (finish() does; call it when stopping otherwise)."""
        if self.lock is not None:
            self.lock.release()

    def named_tensors(self) -> Iterable[tuple[str, torch.Tensor]]:
        """G's and D's parameters and buffers as ("D.net.layer2.bn.running_var", tensor)."""
        for prefix, m in (("G", self.trainer.G), ("D", self.trainer.D)):
            for name, t in m.named_parameters():
                yield f"{prefix}.{name}", t
            for name, t in m.named_buffers():
                yield f"{prefix}.{name}", t

    @property
    def n_images(self) -> int:
        return len(self.data)

    @property
    def step_fn(self) -> GANStep:
        return self.trainer.step

    def checkpoint(self, step: int) -> None:
        save_checkpoint(runs.checkpoint_path(self.run_dir),
                        training_state(step, self.cfg.to_dict(), self.trainer, self.noise))

    def sample(self, step: int) -> torch.Tensor:
        """Save the fixed-noise grid of ``step``; return the images (CPU, float, [-1, 1]).

        G runs in batches of the training batch size (xraygan.sampling), so a large
        --num-samples costs one batch of activations, not num_samples of them."""
        G = self.trainer.G
        G.eval()
        try:
            images = generate_from_noise(G, self.fixed_z, batch_size=self.cfg.train.batch_size,
                                         autocast=self.step_fn.autocast)
        finally:
            G.train()
        save_grid(images, runs.sample_path(self.run_dir, step))
        return images


def setup(
    cfg: ExperimentConfig,
    *,
    runs_root: str | Path = "runs",
    run_dir: str | Path | None = None,
    resume: bool = False,
    dataset: ImageSet | None = None,
    progress: bool | str = True,
) -> Session:
    """Validate ``cfg``, check it fits in memory (xraygan.guard), build models and optimizers
    (restored from the checkpoint on ``resume``), load the data, and only then create the run
    folder, take its lock and write its config: a start that fails leaves no folder behind.
    On resume the lock is taken first, so the checkpoint read is the one continued."""
    validate(cfg)
    device = resolve_device(cfg.train.device)
    amp_dtype = resolve_amp(cfg.train.amp, device)
    guard.check_training(cfg, device=str(device), include_data=dataset is None)

    lock = None
    if resume:
        if run_dir is None:
            raise ConfigError("--resume needs the run folder to continue")
        run_dir = Path(run_dir)
        lock = runs.lock_run(run_dir, create=False)  # RunInUse when another process has it
    try:
        return _setup_locked(cfg, device, amp_dtype, runs_root, run_dir, resume, dataset, lock,
                             progress=bool(progress))
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def _setup_locked(cfg, device, amp_dtype, runs_root, run_dir, resume, dataset, lock, *,
                  progress: bool = True) -> Session:
    trainer = build_trainer(
        cfg.model, cfg.optim, device=device, amp_dtype=amp_dtype,
        channels_last=cfg.train.channels_last, loss=cfg.train.loss, compile=cfg.train.compile,
        seed=cfg.train.seed,
    )

    ckpt = None
    if resume:
        ckpt = load_checkpoint(runs.checkpoint_path(run_dir))
        check_against_run(ckpt, runs.checkpoint_path(run_dir), run_dir)
        check_resumable(ExperimentConfig.from_dict(ckpt["config"]), cfg)

    data = dataset if dataset is not None else load_dataset(
        cfg.data, cfg.model.image_size, cfg.model.channels, progress=progress
    )
    expected = (cfg.model.channels, cfg.model.image_size, cfg.model.image_size)
    if tuple(data.images.shape[1:]) != expected:
        raise ConfigError(f"dataset images are {tuple(data.images.shape[1:])}, the model needs {expected}")
    n_images = len(data)
    if n_images < cfg.train.batch_size:
        raise ConfigError(
            f"train.batch_size: {cfg.train.batch_size} is larger than the dataset "
            f"({n_images} images from {data.description}); lower --batch-size"
        )

    steps = total_steps(cfg, n_images)
    start = int(ckpt["step"]) if ckpt is not None else 0
    check_resume_length(run_dir, start, steps, cfg)

    noise = torch.Generator().manual_seed(cfg.train.seed)
    fixed_z = torch.randn(
        cfg.train.num_samples, cfg.model.latent_dim,
        generator=torch.Generator().manual_seed(cfg.train.seed + 7919),
    ).to(device)

    if ckpt is not None:
        restore_training_state(ckpt, trainer, noise)

    # Everything that can fail on bad input has run: now the folder, its lock, its config.
    if not resume:
        if run_dir is None:
            run_dir = runs.new_run_dir(runs_root, cfg.name)
        lock = runs.lock_run(Path(run_dir))
    run_dir = Path(run_dir)
    try:
        # Before step 0 the run is rebuildable from its folder. On resume the file changes
        # only when the length target does (written only if its text differs).
        runs.write_config(run_dir, cfg)
    except BaseException:
        lock.release()
        raise

    return Session(
        cfg=cfg, run_dir=run_dir, device=device, amp_dtype=amp_dtype, trainer=trainer,
        noise=noise, fixed_z=fixed_z, data=data,
        images_u8=data.images.pin_memory() if device.type == "cuda" else data.images,
        steps=steps, per_epoch=steps_per_epoch(n_images, cfg.train.batch_size),
        start=start, resumed=ckpt is not None,
        prior=runs.read_summary_lenient(run_dir) if ckpt is not None else {},
        lock=lock, current_step=start, last_good=start if ckpt is not None else None,
    )


def begin(session: Session) -> dict[str, Any]:
    """Mark the run as running in summary.json, with what it runs on."""
    s, t = session, session.trainer
    fields: dict[str, Any] = dict(
        status=runs.RunStatus.RUNNING, step=s.start, total_steps=s.steps, device=str(s.device),
        params_g=count_parameters(t.G), params_d=count_parameters(t.D), lr_g=t.lr_g, lr_d=t.lr_d,
        dataset=s.data.description, num_images=s.n_images, skipped_files=len(s.data.skipped),
        machine=fingerprint(s.device), **run_reproducibility(s),
    )
    return runs.update_summary(s.run_dir, **fields)


def run_reproducibility(s: Session) -> dict[str, Any]:
    """threads and reproducible for summary.json; a resume at another thread count than the
    run started with rounds differently from then on, so the run is marked as such."""
    now = reproducibility()
    first = s.prior.get("threads") if s.resumed else None
    if first is not None and first != now["threads"]:
        now = {**now, "threads": first, "reproducible": False,
               "not_reproducible_because": f"started at {first} threads, resumed at "
                                           f"{now['threads']}"}
    elif s.resumed and s.prior.get("reproducible") is False:
        now = {**now, "reproducible": False,
               "not_reproducible_because": s.prior.get("not_reproducible_because", "")}
    return now


# --------------------------------------------------------------------------- the loop
@dataclass
class LoopResult:
    step: int
    status: str  # completed | interrupted
    loss_d: float | None  # of the last step run in this session (None: no step ran)
    loss_g: float | None
    train_time_s: float  # including the time before a resume
    images_per_s: float  # of this session's steps
    stopped_by: str | None = None  # what should_stop answered


LogHook = Callable[[dict[str, Any]], None]


def _hooks(h: Callable | Iterable[Callable] | None) -> list[Callable]:
    if h is None:
        return []
    return [h] if callable(h) else list(h)


def run_loop(
    session: Session,
    *,
    progress: bool | str = True,
    on_log: LogHook | Iterable[LogHook] | None = None,
    on_checkpoint: Callable[[int], None] | Iterable[Callable[[int], None]] | None = None,
    on_sample: Callable[[int, torch.Tensor], None] | Iterable[Callable[[int, torch.Tensor], None]] | None = None,
    should_stop: Callable[[], str | None] | None = None,
    on_step: Callable[[int], None] | Iterable[Callable[[int], None]] | None = None,
) -> LoopResult:
    """Run the session's steps up to its total; return where it stopped.

    ``on_log(row)``: each logged row (Optuna pruning; may raise to abort). ``on_checkpoint(step)``
    after each checkpoint is written; ``on_sample(step, images)`` after each sample grid is
    saved. ``should_stop()`` is polled after every step: a non-None answer (e.g. the signal
    name from xraygan.process.StopFlag) checkpoints and returns "interrupted". ``on_step(step)``
    after every step's device sync (xraygan.process.governor_tick adapts the threads there).
    """
    s, cfg = session, session.cfg
    log_hooks, ckpt_hooks, sample_hooks = _hooks(on_log), _hooks(on_checkpoint), _hooks(on_sample)
    step_hooks = _hooks(on_step)
    step_fn, noise, device = s.step_fn, s.noise, s.device
    n_images, per_epoch, steps, batch = s.n_images, s.per_epoch, s.steps, cfg.train.batch_size
    elapsed_before = float(s.prior.get("train_time_s", 0.0))
    start = s.start

    def check_finite(step: int) -> None:
        bad = guard.first_nonfinite(s.named_tensors())
        if bad is not None:
            diverged(s.run_dir, step, math.nan, math.nan, s.last_good,
                      elapsed_before + time.perf_counter() - t_start,
                      reason=f"{bad} became non-finite (NaN or inf) at step {step}")

    def checkpoint(step: int) -> None:
        check_finite(step)  # a checkpoint is only ever written finite: "last good" means it
        s.checkpoint(step)
        s.last_good = step
        runs.update_summary(s.run_dir, step=step, last_checkpoint_step=step,
                            train_time_s=round(elapsed_before + time.perf_counter() - t_start, 3))
        for hook in ckpt_hooks:
            hook(step)

    def sample(step: int) -> None:
        images = s.sample(step)
        for hook in sample_hooks:
            hook(step, images)

    bar = _progress(progress, start, steps, s.run_dir.name)
    log = runs.MetricsLog(s.run_dir, resume_step=start if s.resumed else None)
    t_start = time.perf_counter()
    t_window, window_steps = t_start, 0
    step = start
    ld = lg = None
    stopped_by = None
    try:
        while step < steps:
            idx = batch_indices(step, n_images, batch, cfg.data.seed + cfg.train.seed)
            real = ImageSet.to_float(s.images_u8[idx]).to(device, non_blocking=True)
            z = torch.randn(real.shape[0], cfg.model.latent_dim, generator=noise).to(device, non_blocking=True)

            ld, lg, dr, df = step_fn(real, z).tolist()  # one device sync per step
            step += 1
            s.current_step = step
            for hook in step_hooks:
                hook(step)
            window_steps += 1
            if not (math.isfinite(ld) and math.isfinite(lg)):
                log.write({"step": step, "epoch": step / per_epoch, "loss_d": ld, "loss_g": lg,
                           "d_real": dr, "d_fake": df})
                log.flush()
                diverged(s.run_dir, step, ld, lg, s.last_good, elapsed_before + time.perf_counter() - t_start)
            if step % guard.FINITE_CHECK_EVERY == 0:
                # Losses can stay finite while a weight or a BN running_var is not (train-mode
                # BN ignores running stats): catch it early, not only at the next checkpoint.
                check_finite(step)

            if step % cfg.train.log_every == 0 or step == steps:
                now = time.perf_counter()
                ips = window_steps * batch / max(now - t_window, 1e-9)
                row = {"step": step, "epoch": round(step / per_epoch, 6), "loss_d": ld,
                       "loss_g": lg, "d_real": dr, "d_fake": df, "images_per_s": round(ips, 3),
                       "time_s": round(elapsed_before + now - t_start, 4)}
                log.write(row)
                t_window, window_steps = now, 0
                for hook in log_hooks:
                    hook(row)
                if bar is not None:
                    bar.set_postfix(loss_d=ld, loss_g=lg, img_s=round(ips))
            if bar is not None:
                bar.update(1)
            if cfg.train.sample_every and step % cfg.train.sample_every == 0:
                sample(step)
            if cfg.train.checkpoint_every and step % cfg.train.checkpoint_every == 0:
                log.flush()
                checkpoint(step)
            if should_stop is not None:
                stopped_by = should_stop()
                if stopped_by:
                    break
    finally:
        log.close()
        if bar is not None:
            bar.close()

    now = time.perf_counter()
    if s.last_good != step:
        checkpoint(step)
    status = runs.RunStatus.COMPLETED if step >= steps else runs.RunStatus.INTERRUPTED
    if status == runs.RunStatus.COMPLETED and not runs.sample_path(s.run_dir, step).exists():
        sample(step)
    return LoopResult(
        step=step, status=status, loss_d=ld, loss_g=lg,
        train_time_s=elapsed_before + now - t_start,
        images_per_s=(step - start) * batch / max(now - t_start, 1e-9),
        stopped_by=stopped_by,
    )


# --------------------------------------------------------------------------- finish
def finish(session: Session, loop: LoopResult, *, evaluate: bool = True, fid: bool = False,
           progress: bool | str = False) -> TrainResult:
    """Write the final summary (and, for a completed run, its metrics: with ``progress``, a
    line at least every 30 s while Inception features are extracted)."""
    s = session
    summary = runs.update_summary(
        s.run_dir, status=loop.status, step=loop.step, train_time_s=round(loop.train_time_s, 3),
        images_per_s=round(loop.images_per_s, 3),
        final_loss_d=loop.loss_d if loop.loss_d is not None else s.prior.get("final_loss_d"),
        final_loss_g=loop.loss_g if loop.loss_g is not None else s.prior.get("final_loss_g"),
        **_memory_stats(s.device),
    )
    if loop.status == runs.RunStatus.COMPLETED and evaluate:
        from .metrics import run_metrics

        summary = runs.update_summary(s.run_dir, metrics=run_metrics(
            s.run_dir, fid=fid, device=str(s.device), progress=bool(progress)))
    s.close()
    return TrainResult(run_dir=s.run_dir, step=loop.step, status=loop.status, summary=summary)


def train(
    cfg: ExperimentConfig,
    *,
    runs_root: str | Path = "runs",
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool | str = True,
    evaluate: bool = True,
    fid: bool = False,
    dataset: ImageSet | None = None,
    on_log: LogHook | Iterable[LogHook] | None = None,
    on_checkpoint: Callable[[int], None] | Iterable[Callable[[int], None]] | None = None,
    on_sample: Callable[[int, torch.Tensor], None] | Iterable[Callable[[int, torch.Tensor], None]] | None = None,
    should_stop: Callable[[], str | None] | None = None,
    tensorboard: bool = False,
    on_step: Callable[[int], None] | Iterable[Callable[[int], None]] | None = None,
) -> TrainResult:
    """Train ``cfg`` into a run folder and return where it went: setup, begin, run_loop, finish.

    ``resume``: continue ``run_dir`` from its last checkpoint (``cfg`` may raise the step or
    epoch count; everything else must match the saved config). ``dataset``: an already loaded
    ImageSet (sweeps reuse one). Hooks: see :func:`run_loop`. ``should_stop``: polled after
    every step; entry points pass a xraygan.process.StopFlag so that Ctrl-C / SIGTERM
    checkpoint and return "interrupted" (train() installs no signal handlers itself).
    ``tensorboard``: also write RUN/tb/ event files; ``progress``: True, False or a
    xraygan.progress mode ("lines").
    """
    session = setup(cfg, runs_root=runs_root, run_dir=run_dir, resume=resume, dataset=dataset,
                    progress=progress)
    try:  # the lock is released however the run ends; disk full is a user error, not a bug
        begin(session)
        tb = None
        if tensorboard:  # a view beside metrics.csv (gan_core/tensorboard.py)
            from .tensorboard import TensorBoardLog

            tb = TensorBoardLog(session.run_dir, start_step=session.start, device=session.device,
                                config=cfg.to_dict())
            on_log, on_sample = [*_hooks(on_log), tb.log], [*_hooks(on_sample), tb.sample]
        try:
            loop = run_loop(session, progress=progress, on_log=on_log, on_checkpoint=on_checkpoint,
                            on_sample=on_sample, should_stop=should_stop, on_step=on_step)
        finally:
            if tb is not None:
                tb.close()
        result = finish(session, loop, evaluate=evaluate, fid=fid, progress=progress)
        if tensorboard and result.summary.get("metrics"):
            from .tensorboard import hparams_of, log_results

            log_results(session.run_dir, result.step, result.summary["metrics"],
                        hparams_of(cfg.to_dict(), device=session.device))
        return result
    except OSError as e:
        if e.errno not in DISK_FULL_ERRNOS:
            raise
        s = session
        raise disk_full(s.run_dir, e, s.current_step, s.last_good) from None
    finally:
        session.close()


def _memory_stats(device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        return {"peak_memory_bytes": torch.cuda.max_memory_allocated(device)}
    return {}


def _progress(enabled: bool | str, start: int, total: int, name: str):
    """A tqdm bar on a terminal, plain lines in a log (gan_core/progress.py); a str is the
    Progress mode ("lines" for sweep workers, whose bars would overwrite each other)."""
    if not enabled:
        return None

    mode = enabled if isinstance(enabled, str) else None
    return Progress(total, desc=name, initial=start, unit="step", mode=mode)
