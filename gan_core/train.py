"""The one training loop: D step, G step, logging, samples from fixed noise, checkpoints.

Determinism is by construction, so that a killed run resumes bit for bit on the CPU:
  * the data order of epoch e is a permutation drawn from a generator seeded by (seed, e), and
    the batch of step s is a slice of it: no iterator state to save;
  * z is drawn on the CPU from a dedicated generator whose state goes into the checkpoint;
  * the fixed sample noise comes from its own seed and never touches the training generator.
N steps, a resume, and N more steps give the same losses as 2N steps straight (a test).
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from . import runs
from .checkpoint import load_checkpoint, save_checkpoint
from .config import ExperimentConfig, validate
from .data import ImageSet, load_dataset
from .errors import ConfigError, TrainingDiverged
from .imageio import save_grid
from .losses import build_loss
from .models import build_models, count_parameters
from .optim import build_optimizers, resolved_lrs
from .perf import tune_malloc
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


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``train.amp``, or None for full fp32."""
    if mode == "off":
        return None
    if mode == "auto":
        return torch.float16 if device.type == "cuda" else torch.bfloat16
    if mode == "fp16" and device.type != "cuda":
        raise ConfigError("train.amp: fp16 autocast needs CUDA; use bf16 on the CPU")
    return torch.bfloat16 if mode == "bf16" else torch.float16


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


# --------------------------------------------------------------------------- the trainer
@dataclass
class TrainResult:
    run_dir: Path
    step: int
    status: str  # completed | interrupted
    summary: dict[str, Any]


class _StopFlag:
    """SIGINT/SIGTERM set a flag; the loop checkpoints after the current step and returns."""

    def __init__(self) -> None:
        self.raised: str | None = None

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        def handler(signum: int, frame: object) -> None:
            if self.raised:  # second signal: stop now
                raise KeyboardInterrupt
            self.raised = signal.Signals(signum).name

        try:
            old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        except ValueError:  # not the main thread (e.g. an Optuna worker thread): no handlers
            yield
            return
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)


def train(
    cfg: ExperimentConfig,
    *,
    runs_root: str | Path = "runs",
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    evaluate: bool = True,
    fid: bool = False,
    dataset: ImageSet | None = None,
    on_log: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train ``cfg`` into a run folder and return where it went.

    ``resume``: continue ``run_dir`` from its last checkpoint (``cfg`` may raise the step or
    epoch count; everything else must match the saved config). ``dataset``: an already loaded
    ImageSet (sweeps reuse one). ``on_log``: called with each logged row (Optuna pruning).
    """
    validate(cfg)
    device = resolve_device(cfg.train.device)
    amp_dtype = resolve_amp(cfg.train.amp, device)
    tune_malloc()  # keep large temporaries mapped between steps (gan_core/perf.py); numerics unchanged
    torch.manual_seed(cfg.train.seed)  # the weight init
    G, D = build_models(cfg.model)  # validates the geometry before the data is touched

    ckpt = None
    if resume:
        if run_dir is None:
            raise ConfigError("--resume needs the run folder to continue")
        run_dir = Path(run_dir)
        ckpt = load_checkpoint(runs.checkpoint_path(run_dir))
        saved = ExperimentConfig.from_dict(ckpt["config"])
        _check_resumable(saved, cfg)
    else:
        run_dir = Path(run_dir) if run_dir else runs.new_run_dir(runs_root, cfg.name)
        run_dir.mkdir(parents=True, exist_ok=True)
    runs.write_config(run_dir, cfg)  # before step 0: the run is rebuildable from its folder

    data = dataset if dataset is not None else load_dataset(
        cfg.data, cfg.model.image_size, cfg.model.channels
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
    per_epoch = steps_per_epoch(n_images, cfg.train.batch_size)

    memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    G.to(device, memory_format=memory_format)
    D.to(device, memory_format=memory_format)
    lr_g, lr_d = resolved_lrs(cfg.optim)
    opt_g, opt_d = build_optimizers(G.parameters(), D.parameters(), cfg.optim)
    step_fn = GANStep(
        G, D, opt_g, opt_d, build_loss(cfg.train.loss), device=device, amp_dtype=amp_dtype,
        channels_last=cfg.train.channels_last, compile=cfg.train.compile,
    )
    scaler = step_fn.scaler
    noise = torch.Generator().manual_seed(cfg.train.seed)
    fixed_z = torch.randn(
        cfg.train.num_samples, cfg.model.latent_dim,
        generator=torch.Generator().manual_seed(cfg.train.seed + 7919),
    ).to(device)

    start = 0
    if ckpt is not None:
        G.load_state_dict(ckpt["G"])
        D.load_state_dict(ckpt["D"])
        opt_g.load_state_dict(ckpt["opt_g"])
        opt_d.load_state_dict(ckpt["opt_d"])
        if "scaler" in ckpt:
            scaler.load_state_dict(ckpt["scaler"])
        noise.set_state(ckpt["rng"]["noise"])
        start = int(ckpt["step"])

    images_u8 = data.images.pin_memory() if device.type == "cuda" else data.images

    def checkpoint(step: int) -> None:
        save_checkpoint(runs.checkpoint_path(run_dir), {
            "step": step,
            "config": cfg.to_dict(),
            "G": G.state_dict(), "D": D.state_dict(),
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": {"noise": noise.get_state()},
        })

    def sample(step: int) -> None:
        G.eval()
        with torch.no_grad(), step_fn.autocast():
            save_grid(G(fixed_z), runs.sample_path(run_dir, step))
        G.train()

    prior = runs.read_summary(run_dir) if ckpt is not None else {}
    elapsed_before = float(prior.get("train_time_s", 0.0))
    runs.update_summary(
        run_dir, status="running", step=start, total_steps=steps, device=str(device),
        params_g=count_parameters(G), params_d=count_parameters(D), lr_g=lr_g, lr_d=lr_d,
        dataset=data.description, num_images=n_images, skipped_files=len(data.skipped),
    )
    stop = _StopFlag()
    bar = _progress(progress, start, steps, run_dir.name)
    log = runs.MetricsLog(run_dir, resume_step=start if ckpt is not None else None)
    t_start = time.perf_counter()
    t_window, window_steps = t_start, 0
    step = start
    last_good = start if ckpt is not None else None
    try:
        with stop.installed():
            while step < steps:
                idx = batch_indices(step, n_images, cfg.train.batch_size, cfg.data.seed + cfg.train.seed)
                real = ImageSet.to_float(images_u8[idx]).to(device, non_blocking=True)
                z = torch.randn(real.shape[0], cfg.model.latent_dim, generator=noise).to(device, non_blocking=True)

                ld, lg, dr, df = step_fn(real, z).tolist()  # one device sync per step
                step += 1
                window_steps += 1
                if not (math.isfinite(ld) and math.isfinite(lg)):
                    log.write({"step": step, "epoch": step / per_epoch, "loss_d": ld, "loss_g": lg,
                               "d_real": dr, "d_fake": df})
                    log.flush()
                    _diverged(run_dir, step, ld, lg, last_good, elapsed_before + time.perf_counter() - t_start)

                if step % cfg.train.log_every == 0 or step == steps:
                    now = time.perf_counter()
                    ips = window_steps * cfg.train.batch_size / max(now - t_window, 1e-9)
                    row = {"step": step, "epoch": round(step / per_epoch, 6), "loss_d": ld,
                           "loss_g": lg, "d_real": dr, "d_fake": df, "images_per_s": round(ips, 3),
                           "time_s": round(elapsed_before + now - t_start, 4)}
                    log.write(row)
                    t_window, window_steps = now, 0
                    if on_log is not None:
                        on_log(row)
                    if bar is not None:
                        bar.set_postfix(loss_d=f"{ld:.3f}", loss_g=f"{lg:.3f}", img_s=f"{ips:.0f}")
                if bar is not None:
                    bar.update(1)
                if cfg.train.sample_every and step % cfg.train.sample_every == 0:
                    sample(step)
                if cfg.train.checkpoint_every and step % cfg.train.checkpoint_every == 0:
                    log.flush()
                    checkpoint(step)
                    last_good = step
                if stop.raised:
                    break
    finally:
        log.close()
        if bar is not None:
            bar.close()

    train_time = elapsed_before + time.perf_counter() - t_start
    if last_good != step:
        checkpoint(step)
    status = "completed" if step >= steps else "interrupted"
    if status == "completed" and not runs.sample_path(run_dir, step).exists():
        sample(step)
    summary = runs.update_summary(
        run_dir, status=status, step=step, train_time_s=round(train_time, 3),
        images_per_s=round((step - start) * cfg.train.batch_size / max(time.perf_counter() - t_start, 1e-9), 3),
        final_loss_d=ld if step > start else prior.get("final_loss_d"),
        final_loss_g=lg if step > start else prior.get("final_loss_g"),
        **_memory_stats(device),
    )
    if status == "completed" and evaluate:
        from .metrics import run_metrics

        summary = runs.update_summary(run_dir, metrics=run_metrics(run_dir, fid=fid, device=str(device)))
    return TrainResult(run_dir=run_dir, step=step, status=status, summary=summary)


def _check_resumable(saved: ExperimentConfig, new: ExperimentConfig) -> None:
    """Only the length of training may change on resume; anything else is another run."""
    a = replace(saved, train=replace(saved.train, steps=0, epochs=0.0))
    b = replace(new, train=replace(new.train, steps=0, epochs=0.0))
    if a != b:
        diff = [k for k, v in _flatten(b.to_dict()).items() if _flatten(a.to_dict()).get(k) != v]
        raise ConfigError(
            "cannot resume with a different configuration (only --steps/--epochs may change); "
            f"changed: {', '.join(diff)}"
        )


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _diverged(run_dir: Path, step: int, ld: float, lg: float, last_good: int | None, t: float) -> None:
    which = "loss_d" if not math.isfinite(ld) else "loss_g"
    value = ld if which == "loss_d" else lg
    kept = (f"the last good checkpoint (step {last_good}) is kept at {runs.checkpoint_path(run_dir)}"
            if last_good is not None else "no checkpoint had been written yet")
    reason = f"{which} became {value} at step {step}"
    runs.update_summary(run_dir, status="diverged", step=step, reason=reason,
                        last_good_step=last_good, train_time_s=round(t, 3))
    raise TrainingDiverged(
        f"{run_dir}: {reason}; {kept}. Lower the learning rate (--lr-g/--lr-d), "
        "or try another optimizer or loss."
    )


def _memory_stats(device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        return {"peak_memory_bytes": torch.cuda.max_memory_allocated(device)}
    return {}


def _progress(enabled: bool, start: int, total: int, name: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, desc=name, unit="it", dynamic_ncols=True)
