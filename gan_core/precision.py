"""Which autocast dtype a run uses (``train.amp`` / ``--amp``): off | bf16 | fp16 | auto.

``auto`` picks what is fast on the device at hand: fp16 (with GradScaler) on CUDA; bf16 on a
CPU only when it has native bf16 (avx512_bf16 or AMX); fp32 otherwise. On a CPU without native
bf16, oneDNN emulates bf16 by converting to fp32 around every kernel, and the step is many
times slower than fp32 (measured below), so ``auto`` must not pick it and an explicit ``bf16``
warns with the cost.
"""

from __future__ import annotations

import os
import warnings

import torch

from . import fingerprint
from .errors import ConfigError
from .fingerprint import has_native_bf16

# Measured (one GANStep of paper-elu 32x32, width 32, batch 64, AdaS, fp32 and bf16
# built side by side, 4 interleaved rounds of 3 steps, median of per-round ratios) on an AMD
# EPYC, AVX2 without avx512_bf16, 2 cores shared with other jobs (load 13-15), torch 2.14.1:
#   2 threads: fp32 7.0-18.3 images/s, bf16 1.05-1.80; fp32/bf16 8.1x (6.7-10.2x)
#   1 thread:  fp32 60-130 images/s,  bf16 4.7-5.6;   fp32/bf16 15.5x (12.8-24x)
# The same step on a quiet AVX2 EPYC Milan, 2 threads: 484 vs 50 images/s, 9.7x.
EMULATED_BF16_COST = ("measured 8-16x slower than fp32 on an AVX2 AMD EPYC (paper-elu 32x32, "
                      "width 32, batch 64: 484 vs 50 images/s quiet)")


ONEDNN_ISA_ENV = "ONEDNN_MAX_CPU_ISA"
# oneDNN's ISA names (its docs, "CPU dispatcher control") by what they allow for bf16
_ISA_BELOW_AVX512 = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2"})
_ISA_AVX512_NO_BF16 = frozenset({"AVX512_CORE", "AVX512_CORE_VNNI"})


def onednn_bf16() -> str:
    """How oneDNN runs bf16 convolutions in this process: ``"native"`` (avx512_bf16 or AMX),
    ``"emulated"`` (AVX-512 without bf16: oneDNN converts through fp32 buffers, which take
    memory a bf16 estimate does not hold), or ``"none"`` (below AVX-512: ATen's own kernels).
    ``ONEDNN_MAX_CPU_ISA`` caps what the CPU offers (oneDNN reads it once, at first use)."""
    flags = fingerprint.cpu_flags()  # looked up at call time: tests stand in for the CPU
    level = 2 if has_native_bf16() else 1 if {"avx512f", "avx512bw", "avx512vl"} <= flags else 0
    cap = os.environ.get(ONEDNN_ISA_ENV, "").strip().upper()
    if cap in _ISA_BELOW_AVX512:
        level = 0
    elif cap in _ISA_AVX512_NO_BF16:
        level = min(level, 1)
    return ("none", "emulated", "native")[level]


class SlowPrecisionWarning(UserWarning):
    """An explicit precision that this machine runs much slower than fp32."""


def resolve_amp(mode: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype for ``train.amp``, or None for full fp32."""
    device = torch.device(device)
    if mode == "off":
        return None
    if mode == "auto":
        if device.type == "cuda":
            return torch.float16
        return torch.bfloat16 if onednn_bf16() == "native" else None
    if mode == "fp16" and device.type != "cuda":
        raise ConfigError("train.amp: fp16 autocast needs CUDA; use bf16 on the CPU")
    if mode == "bf16":
        if device.type == "cpu" and onednn_bf16() != "native":
            warnings.warn(
                "train.amp=bf16 on a CPU without native bf16 (no avx512_bf16/AMX): oneDNN "
                f"emulates it, {EMULATED_BF16_COST}; use amp=off or auto for speed",
                SlowPrecisionWarning, stacklevel=2,
            )
        return torch.bfloat16
    return torch.float16
