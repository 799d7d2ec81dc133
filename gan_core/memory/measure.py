"""Measured peak memory of one real training step (G and D forward, backward, optimizer step).

The step is :class:`xraygan.step.GANStep`, the trainer's own code. Warm-up steps run first so
the optimizer state and both models' gradients exist, as in every step after the first.

* CUDA: ``torch.cuda.max_memory_allocated`` over one step, after ``reset_peak_memory_stats``.
* CPU: process RSS mixes in the allocator's cached pages, the Python heap and the libraries, so
  we count the allocator's own bookkeeping instead. ``torch.profiler`` with
  ``profile_memory=True`` records every c10 CPU allocation and free (oneDNN scratch included)
  with its size; we profile two steps and walk the events of the second, whose frees all belong
  to blocks the profiler saw allocated. Live bytes at the start of the step are the distinct
  storages of everything the step owns (parameters, buffers, gradients, optimizer state, the
  batch); peak = that + the highest running sum of the second step's events.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from ..config import ModelConfig, OptimConfig
from ..step import GANStep
from ..train import build_trainer

CPU_METHOD = "torch.profiler allocation events (c10 CPU allocator), peak live bytes"
CUDA_METHOD = "torch.cuda.max_memory_allocated"
_MARK = "xraygan::measured_step"


@dataclass(frozen=True)
class MeasuredPeak:
    peak_bytes: int  # highest live bytes during the step, everything the step owns
    resident_bytes: int  # live bytes between steps: params, buffers, grads, optimizer state, batch
    method: str
    device: str


def build_step(
    model: ModelConfig,
    optim: OptimConfig,
    *,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    loss: str = "nonsaturating",
    seed: int = 0,
) -> GANStep:
    """A GANStep on fresh models and optimizers: the trainer's own setup
    (:func:`xraygan.train.build_trainer`), so what is measured is what trains."""
    return build_trainer(model, optim, device=device, amp_dtype=amp_dtype,
                         channels_last=channels_last, loss=loss, seed=seed).step


def make_batch(model: ModelConfig, batch_size: int, device: torch.device, seed: int = 0
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """A real batch in [-1, 1] (B, C, H, W) and z (B, latent), drawn on the CPU."""
    gen = torch.Generator().manual_seed(seed)
    shape = (batch_size, model.channels, model.image_size, model.image_size)
    real = torch.rand(shape, generator=gen).mul_(2).sub_(1)
    z = torch.randn(batch_size, model.latent_dim, generator=gen)
    return real.to(device), z.to(device)


def resident_bytes(step: GANStep, *tensors: torch.Tensor) -> int:
    """Bytes of the distinct storages the step keeps between iterations (and ``tensors``)."""
    seen: dict[int, int] = {}

    def add(t: torch.Tensor | None) -> None:
        if isinstance(t, torch.Tensor) and t.device.type != "meta":
            s = t.untyped_storage()
            seen[s.data_ptr()] = s.nbytes()

    for module in (step.G, step.D):
        for p in module.parameters():
            add(p)
            add(p.grad)
        for b in module.buffers():
            add(b)
    for opt in (step.opt_g, step.opt_d):
        for state in opt.state.values():
            for v in state.values():
                add(v)
    for t in tensors:
        add(t)
    return sum(seen.values())


def measure_step_peak(
    step: GANStep, real: torch.Tensor, z: torch.Tensor, *, warmup: int = 2
) -> MeasuredPeak:
    """Peak memory of one ``step(real, z)`` after ``warmup`` steps (at least 1)."""
    for _ in range(max(1, warmup)):
        step(real, z)
    device = real.device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        resident = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step(real, z)
        torch.cuda.synchronize(device)
        return MeasuredPeak(torch.cuda.max_memory_allocated(device), resident, CUDA_METHOD,
                            str(device))
    resident = resident_bytes(step, real, z)
    return MeasuredPeak(resident + _profiled_peak_delta(step, real, z), resident, CPU_METHOD,
                        str(device))


@contextlib.contextmanager
def _native_stderr_silenced():
    """Kineto writes "USDT: profiler_start/stop" lines straight to file descriptor 2 on every
    profile; sweeps measure each trial, so silence the descriptor (not Python's sys.stderr,
    whose exceptions still propagate) while the profiler starts and stops."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _profiled_peak_delta(step: GANStep, real: torch.Tensor, z: torch.Tensor) -> int:
    with _native_stderr_silenced(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step(real, z)  # frees blocks allocated before profiling: sizes unknown, hence step 2
        with record_function(_MARK):
            step(real, z)
    events = prof.profiler.kineto_results.events()
    marks = [e for e in events if e.name() == _MARK]
    if len(marks) != 1:
        raise RuntimeError(f"expected one {_MARK} range in the profile, found {len(marks)}")
    start, end = marks[0].start_ns(), marks[0].end_ns()
    allocs = sorted(
        (e.start_ns(), e.nbytes()) for e in events
        if e.name() == "[memory]" and e.device_type().name == "CPU" and start <= e.start_ns() <= end
    )
    live = peak = 0
    for _, nbytes in allocs:
        live += nbytes
        peak = max(peak, live)
    return peak

