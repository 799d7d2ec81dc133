"""How long will this sweep take here? A few seconds of calibration on this machine, then
arithmetic.

A quoted time only holds on the machine it was measured on (the same quick Table I
took 10 minutes on one 2-core CPU and half an hour on another). So instead of a quoted figure,
:func:`calibrate` times what a sweep spends its time on, now, on this machine and
under its current load: a handful of training steps of each distinct configuration of the
study (at its scale, with the threads each worker will get), the generator producing FID
samples, and Inception features of a small batch. :func:`estimate` turns that into the
sweep's wall time:

    per trial   = steps / steps_per_s + fid_samples / generate_images_per_s
                  + fid_samples / feature_images_per_s
    trials      are packed onto ``workers`` processes (longest first, each to the least
                  loaded worker: the makespan, not just the sum / workers)
    once        = reference statistics: the training and held-out images of the data at hand
                  whose statistics are not cached yet / feature rate (the cache file of each set
                  is checked by its fingerprint: ablations/preflight.py)

It is an estimate: AdaS and Adam steps cost the same throughout training, but the load of the
machine may change, and pruned or diverged trials end early (the estimate assumes none do).
"""

from __future__ import annotations

import dataclasses
import heapq
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .errors import XrayganError
from .fingerprint import describe as describe_machine
from .memory.measure import make_batch
from .metrics.features import InceptionFeatures
from .precision import resolve_amp
from .process import cores_available, model_params, threads_for
from .train import build_trainer, resolve_device, total_steps


@dataclass(frozen=True)
class TrialPlan:
    """One trial as the estimate sees it."""

    key: str
    signature: str  # what its step speed depends on (see config_signature)
    steps: int
    fid_samples: int  # 0: no Inception metrics


@dataclass(frozen=True)
class Calibration:
    """Measured rates on this machine (per worker process, with its share of the threads)."""

    steps_per_s: dict[str, float]  # by config signature
    generate_images_per_s: dict[str, float] = field(default_factory=dict)  # by signature
    feature_images_per_s: float | None = None  # None: Inception not available
    feature_note: str = ""  # why it is None, or how it was measured
    threads: int = 0
    seconds: float = 0.0  # wall time the calibration itself took
    machine: str = ""
    notes: tuple[str, ...] = ()
    cores: int = 0  # cores available to the sweep (0: unknown, no contention correction)
    others: float = 0.0  # runnable tasks of other processes seen just before calibrating


def contention(cal: Calibration, workers: int) -> float:
    """How much slower each worker runs than the calibration did, from CPU sharing alone.

    The calibration times one process of ``threads`` threads next to ``others`` runnable tasks
    of other processes; the sweep runs ``workers`` of them next to the same others. With more
    runnable tasks than cores the scheduler shares the cores evenly, so a task gets
    cores / runnable of one: the ratio of the two shares. Quiet (others 0, workers x threads =
    cores): 1. Next to one busy process on 2 cores, 2 workers x 1 thread: 1.5 (measured in the
    quick start: trials 1.6-1.8x their quiet time)."""
    if cal.cores <= 0 or cal.threads <= 0:
        return 1.0
    sweep = max(1.0, (workers * cal.threads + cal.others) / cal.cores)
    alone = max(1.0, (cal.threads + cal.others) / cal.cores)
    return sweep / alone


@dataclass(frozen=True)
class Estimate:
    total_s: float
    train_s: float  # summed over trials
    fid_s: float  # summed over trials (generation + features)
    reference_s: float
    trials: int
    workers: int
    complete: bool  # False: some phase could not be estimated (e.g. no Inception weights)
    notes: tuple[str, ...] = ()
    per_trial_s: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------- arithmetic
def estimate(plans: Sequence[TrialPlan], cal: Calibration, *, workers: int = 1,
             reference_images: int = 0, reference_cached: int = 0) -> Estimate:
    """The sweep's wall time from measured rates (pure arithmetic: tested with fake rates).

    ``reference_images``: real images whose FID statistics must still be computed;
    ``reference_cached``: real images whose statistics are in the cache already (not counted).
    """
    if workers < 1:
        raise ValueError(f"workers: expected >= 1, got {workers}")
    notes: list[str] = list(cal.notes)
    complete = True
    per_trial: dict[str, float] = {}
    train_s = fid_s = 0.0
    share = contention(cal, workers)
    if share > 1.0:
        notes.append(f"{cal.others:.0f} runnable task(s) of other processes on {cal.cores} "
                     f"cores: trials counted {share:.2f}x slower than calibrated, for sharing")
    for p in plans:
        rate = cal.steps_per_s.get(p.signature)
        if not rate:
            raise KeyError(f"no calibration for configuration {p.signature!r} (trial {p.key})")
        rate /= share
        t_train = p.steps / rate
        t_fid = 0.0
        if p.fid_samples:
            gen = cal.generate_images_per_s.get(p.signature)
            if gen:
                t_fid += p.fid_samples / gen * share
            if cal.feature_images_per_s:
                t_fid += p.fid_samples / cal.feature_images_per_s * share
            else:
                complete = False
        train_s += t_train
        fid_s += t_fid
        per_trial[p.key] = t_train + t_fid
    if any(p.fid_samples for p in plans) and not cal.feature_images_per_s:
        notes.append(f"FID time not included: {cal.feature_note or 'Inception not calibrated'}")
    reference_s = 0.0
    if any(p.fid_samples for p in plans):
        if reference_cached:
            notes.append(f"reference statistics of {reference_cached:,} real images cached: "
                         "not counted")
        if reference_images and cal.feature_images_per_s:
            reference_s = reference_images / cal.feature_images_per_s
    makespan = _makespan(list(per_trial.values()), workers)
    return Estimate(total_s=makespan + reference_s, train_s=train_s, fid_s=fid_s,
                    reference_s=reference_s, trials=len(plans), workers=workers,
                    complete=complete, notes=tuple(notes), per_trial_s=per_trial)


def _makespan(durations: list[float], workers: int) -> float:
    """Longest-processing-time-first onto ``workers``: when the last worker finishes."""
    loads = [0.0] * min(workers, max(1, len(durations)))
    heapq.heapify(loads)
    for d in sorted(durations, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + d)
    return max(loads) if durations else 0.0


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def describe(est: Estimate, cal: Calibration) -> str:
    """The lines a sweep prints at its start (and --dry-run prints)."""
    rates = ", ".join(f"{v:.2f} steps/s" for v in sorted(set(cal.steps_per_s.values()), reverse=True))
    feat = (f"{cal.feature_images_per_s:.1f} images/s Inception" if cal.feature_images_per_s
            else "Inception not measured")
    head = "estimated time" if est.complete else "estimated time (incomplete)"
    lines = [
        f"{head}: {format_duration(est.total_s)} for {est.trials} trials on {est.workers} "
        f"worker(s): training {format_duration(est.train_s)}, FID {format_duration(est.fid_s)} "
        f"(summed over trials), reference statistics {format_duration(est.reference_s)}",
        f"  calibrated in {cal.seconds:.1f} s on {cal.machine or 'this machine'}, "
        f"{cal.threads} thread(s) per worker: {rates}; {feat}",
    ]
    lines += [f"  note: {n}" for n in est.notes]
    return "\n".join(lines)


# --------------------------------------------------------------------------- measurement
def config_signature(cfg: Any) -> str:
    """What a training step's speed depends on: the model, batch, optimizer and precision
    (not the seed, the learning rates or the length)."""
    t = cfg.train
    model = ",".join(f"{k}={v}" for k, v in sorted(dataclasses.asdict(cfg.model).items()))
    return "|".join(str(x) for x in (model, t.batch_size, cfg.optim.name, t.amp,
                                     t.channels_last, t.loss, t.device))


def plan_trials(configs: Iterable[tuple[str, Any]], *, fid_samples: int) -> list[TrialPlan]:
    """TrialPlans of (key, ExperimentConfig) pairs; ``fid_samples`` 0 when FID is off."""
    plans = []
    for key, cfg in configs:
        n = cfg.data.num_images or 0
        plans.append(TrialPlan(key=key, signature=config_signature(cfg),
                               steps=total_steps(cfg, max(n, cfg.train.batch_size)),
                               fid_samples=fid_samples))
    return plans


def _time_steps(step, real, z, budget_s: float, min_steps: int = 1) -> float:
    step(real, z).tolist()  # warm-up: optimizer state, oneDNN primitive caches
    n, t0 = 0, time.perf_counter()
    while n < min_steps or time.perf_counter() - t0 < budget_s:
        step(real, z).tolist()
        n += 1
        if n >= 50:
            break
    return n / (time.perf_counter() - t0)


def _time_generate(G, latent_dim: int, device, batch: int = 64) -> float:
    z = torch.randn(batch, latent_dim, device=device)
    G.eval()
    with torch.no_grad():
        G(z)
        t0 = time.perf_counter()
        G(z).sum().item()
        dt = time.perf_counter() - t0
    G.train()
    return batch / max(dt, 1e-9)


def _time_features(image_size: int, device, batch: int = 4) -> tuple[float | None, str]:
    try:
        extractor = InceptionFeatures(device, allow_download=False)
    except XrayganError as e:
        return None, f"Inception weights unavailable ({e})"
    images = torch.randint(0, 256, (batch, 1, image_size, image_size), dtype=torch.uint8)
    extractor(images[:1])  # warm-up
    t0 = time.perf_counter()
    extractor(images)
    rate = batch / (time.perf_counter() - t0)
    return rate, f"{batch} images at {image_size}x{image_size}"


def calibrate(configs: Sequence[Any], *, fid: bool, workers: int = 1,
              budget_s: float = 1.0, max_s: float = 10.0) -> Calibration:
    """Time each distinct configuration's step (about ``budget_s`` each, at least 3 steps),
    its generator, and Inception features (when ``fid``, on 4 images), with the intra-op
    threads each of ``workers`` processes gets; restores the thread count afterwards. About
    ``budget_s`` per distinct configuration plus one Inception load on a quiet machine; under
    load it takes longer, and measures the load too, which is the point. Configurations left
    when ``max_s`` has passed are extrapolated from the measured ones by parameter count
    (said in ``notes``)."""
    others = other_runnable()  # before our own steps run: they would count themselves
    t_start = time.perf_counter()
    threads_before = torch.get_num_threads()
    threads = threads_for(cores_available(), workers)
    torch.set_num_threads(threads)
    rates: dict[str, float] = {}
    gen: dict[str, float] = {}
    device = None
    extrapolated: list[Any] = []
    params: dict[str, int] = {}
    try:
        for cfg in configs:
            sig = config_signature(cfg)
            if sig in rates or sig in params:
                continue
            if rates and time.perf_counter() - t_start > max_s:
                params[sig] = model_params(cfg.model)
                extrapolated.append(cfg)
                continue
            device = resolve_device(cfg.train.device)
            trainer = build_trainer(
                cfg.model, cfg.optim, device=device, amp_dtype=resolve_amp(cfg.train.amp, device),
                channels_last=cfg.train.channels_last, loss=cfg.train.loss, seed=cfg.train.seed,
            )
            real, z = make_batch(cfg.model, cfg.train.batch_size, device)
            rates[sig] = _time_steps(trainer.step, real, z, budget_s)
            gen[sig] = _time_generate(trainer.G, cfg.model.latent_dim, device)
            params[sig] = model_params(cfg.model)
        # the step's cost grows about with the weights (same size, batch and depth family):
        # rate x measured params / params, averaged over the measured configurations
        measured = list(rates)
        for cfg in extrapolated:
            sig = config_signature(cfg)
            rates[sig] = sum(rates[m] * params[m] for m in measured) / len(measured) / params[sig]
            gen[sig] = sum(gen[m] * params[m] for m in measured) / len(measured) / params[sig]
        feature_rate, note = (None, "FID off")
        if fid and configs:
            feature_rate, note = _time_features(configs[0].model.image_size, device or "cpu")
    finally:
        torch.set_num_threads(threads_before)
    notes = ((f"{len(extrapolated)} of {len(rates)} configurations extrapolated from the "
              "measured ones by parameter count",) if extrapolated else ())
    return Calibration(steps_per_s=rates, generate_images_per_s=gen,
                       feature_images_per_s=feature_rate, feature_note=note, threads=threads,
                       seconds=time.perf_counter() - t_start, machine=describe_machine(),
                       notes=notes, cores=cores_available(), others=others)


def parse_procs_running(stat_text: str) -> int | None:
    """``procs_running`` of /proc/stat: runnable tasks system-wide, this reader included."""
    for line in stat_text.splitlines():
        if line.startswith("procs_running "):
            return int(line.split()[1])
    return None


def other_runnable(samples: int = 5, interval_s: float = 0.05) -> float:
    """Runnable tasks of other processes now: the median of a few /proc/stat readings, less
    this process's reading thread. 0 where /proc/stat is missing (not Linux)."""
    got = []
    for i in range(samples):
        try:
            with open("/proc/stat") as f:
                n = parse_procs_running(f.read())
        except OSError:
            return 0.0
        if n is None:
            return 0.0
        got.append(n - 1)
        if i + 1 < samples:
            time.sleep(interval_s)
    got.sort()
    return float(max(0, got[len(got) // 2]))


def step_flops(model_cfg: Any, optim_cfg: Any, batch: int) -> float:
    """Floating-point operations of one training iteration (D step + G step) of ``model_cfg``
    at ``batch``, counted by torch's FlopCounterMode (convolutions and matrix products, forward
    and backward; element-wise work is not counted, as in an sgemm's FLOP rate)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .memory.measure import make_batch
    from .train import build_trainer

    trainer = build_trainer(model_cfg, optim_cfg, device=torch.device("cpu"))
    real, z = make_batch(model_cfg, batch, torch.device("cpu"))
    with FlopCounterMode(display=False) as counter:
        trainer.step(real, z)
    return float(counter.get_total_flops())


def sgemm_flops_per_s(n: int = 1024, seconds: float = 1.0) -> float:
    """This process's float32 matrix-product rate at its current thread count (FLOP/s): the
    ceiling a convolution-bound step can approach."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or count < 3:
        torch.mm(a, b)
        count += 1
    return 2.0 * n**3 * count / (time.perf_counter() - t0)
