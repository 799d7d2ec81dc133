"""Numerics under other kernels than this CPU picks: a fast subset of ``nox -s isa`` for every
test run. Each case reruns a few tolerance-bearing tests in a subprocess with forced dispatch
levels (the variables are read once, when the libraries load), so a tolerance fitted to this
machine's rounding fails here rather than on a user's CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
NUMERICS = [
    "tests/metrics/test_frechet.py::test_singular_covariances_are_finite_and_symmetric",
    "tests/metrics/test_frechet.py::test_identical_statistics_give_zero",
    "tests/optim/test_optim.py::test_adas_skips_params_without_grad_and_handles_0d",
    "tests/memory/test_memory.py::test_estimate_within_10_percent_of_measured_peak",
    "tests/core/test_isa.py::test_forced_levels_are_in_effect",
]
LEVELS = {
    # an AVX2 machine (Zen 3): oneDNN, MKL, OpenBLAS at AVX2 and ATen's plain C++ kernels
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
             "OPENBLAS_CORETYPE": "Haswell", "ATEN_CPU_CAPABILITY": "default"},
    # an AVX-512 Xeon without avx512_bf16: oneDNN emulates bf16
    "avx512-no-bf16": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "OPENBLAS_CORETYPE": "Sandybridge"},
}


def test_forced_levels_are_in_effect():
    """Under a forced level, the libraries report it (else the isa runs test nothing new)."""
    from xraygan.precision import onednn_bf16

    if os.environ.get("ATEN_CPU_CAPABILITY") == "default":
        assert torch.backends.cpu.get_cpu_capability() == "DEFAULT"
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA")
    if isa in ("AVX2", "SSE41"):
        assert onednn_bf16() == "none"
    elif isa == "AVX512_CORE":
        assert onednn_bf16() in ("emulated", "none")  # "none" on a CPU without AVX-512


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_numerics_under_a_forced_dispatch_level(level):
    env = {**os.environ, **LEVELS[level], "XRAYGAN_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *NUMERICS], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert f"{len(NUMERICS) + 2} passed" in proc.stdout  # the memory test has 3 cases
