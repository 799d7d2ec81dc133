"""Where a figure was made: the machine fingerprint stamped into every summary, trial, memory
baseline, benchmark JSON and report protocol.

A measured figure (images/s, a CPU peak in bytes) is only comparable to one made on the same
kind of machine: torch and oneDNN pick kernels by the ISA level of the CPU (AVX2 vs AVX-512),
bf16 runs at native speed only with avx512_bf16 / AMX, and the cores a process may use are set
by its affinity mask and cgroup quota, not by ``os.cpu_count()``. :func:`fingerprint` records
all of that as a JSON-ready dict; :func:`machine_class` reduces it to the short key that
per-machine baselines are filed under; :func:`describe` is the one human line for logs.

Probing the CPU reads /proc and a few torch attributes once per process (cached).
"""

from __future__ import annotations

import functools
import math
import os
import platform
import re
import sys
from pathlib import Path
from typing import Any

import torch

from .process import cgroup_cpu_quota

FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, frozenset[str]]:
    """(model name, flags) of the first CPU in /proc/cpuinfo; platform.processor() elsewhere."""
    model, flags = "", frozenset()
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:  # x86 | ARM
            flags = frozenset(value.split())
        if model and flags:
            break
    return model or platform.processor() or platform.machine() or "unknown", flags


# the cgroup parser lives in process.py (no torch import there, so the CLI can size threads
# before torch loads); the fingerprint records the same numbers
_cgroup_cpu_quota = cgroup_cpu_quota


@functools.lru_cache(maxsize=1)
def _cpu_probe() -> dict[str, Any]:
    model, flags = _cpuinfo()
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    # A quota of 1.5 CPUs runs 2 busy threads at 75 %: count whole CPUs (as Go's automaxprocs
    # does), never below one.
    cores = min(affinity, max(1, math.floor(quota))) if quota else affinity
    return {
        "cpu_model": model,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": bool({"avx512_bf16", "amx_bf16"} & flags),
        "cpu_flags_summary": {f: f in flags for f in FLAGS_OF_INTEREST},
        "cores_available": cores,
        "cpu_affinity": affinity,
        "cgroup_cpu_quota": quota,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "onednn": _onednn_version(),
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "platform": f"{platform.system()}-{platform.release()}-{platform.machine()}",
    }


def _onednn_version() -> str | None:
    if not torch.backends.mkldnn.is_available():
        return None
    version = getattr(torch.backends.mkldnn, "version", None)  # not exposed in torch 2.x
    if callable(version):
        try:
            return str(version())
        except Exception:  # pragma: no cover - depends on the torch build
            pass
    m = re.search(r"(?:MKL-DNN|oneDNN)\s+v?([\d.]+)", torch.__config__.show())
    return m.group(1) if m else "unknown"


def _process_settings() -> dict[str, Any]:
    """The process-level settings in effect (threads, OpenMP wait policy, malloc tuning):
    what is in effect now, overlaid with what xraygan.process applied (when it did)."""
    perf = sys.modules.get(f"{__package__}.perf")  # only if something imported it
    out: dict[str, Any] = {
        "threads": torch.get_num_threads(),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "malloc_tuned": getattr(perf, "_applied", None),
    }
    try:
        from .process import applied_settings
    except ImportError:  # an older tree without the process policy
        return out
    out.update(applied_settings())
    return out


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (/proc/cpuinfo; empty where it cannot be read)."""
    return _cpuinfo()[1]


def has_native_bf16() -> bool:
    """True when the CPU runs bf16 matmuls/convs in hardware (avx512_bf16 or AMX)."""
    return bool(_cpu_probe()["native_bf16"])


def fingerprint(device: str | torch.device | None = None) -> dict[str, Any]:
    """The machine fingerprint as a JSON-ready dict; GPU name and capability when ``device``
    is a CUDA device. Carries no hostname: two machines of one kind fingerprint alike."""
    fp = dict(_cpu_probe())
    fp["cpu_flags_summary"] = dict(fp["cpu_flags_summary"])
    dev = torch.device(device) if device is not None else torch.device("cpu")
    fp["device"] = str(dev)
    if dev.type == "cuda" and torch.cuda.is_available():
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(index)
        fp["gpu_name"] = torch.cuda.get_device_name(index)
        fp["gpu_capability"] = f"{major}.{minor}"
        fp["cudnn"] = torch.backends.cudnn.version()
    fp["process"] = _process_settings()
    fp["machine_class"] = machine_class(fp)
    return fp


def machine_class(fp: dict[str, Any] | None = None) -> str:
    """A short stable key for the hardware class measured memory figures depend on, e.g.
    ``cpu-avx2-torch2.14``, ``cpu-avx512-torch2.14``, ``cuda-sm90-torch2.14``.

    The CPU model name is deliberately not part of it: the allocation pattern of a step is
    fixed by which kernels torch and oneDNN dispatch to, and they dispatch by ISA level
    (``get_cpu_capability``: DEFAULT / AVX2 / AVX512 / SVE...), not by vendor or model; a Zen 3
    and a Haswell with AVX2 get the same kernels, while the same EPYC family has members on
    both sides. Native bf16 is not in it either: it changes only bf16 kernels, and the
    baselines are fp32 steps (``native_bf16`` stays in the fingerprint). The torch major.minor
    is: kernels and their scratch sizes change between releases, not within one.
    """
    fp = fp if fp is not None else fingerprint()
    torch_mm = ".".join(str(fp.get("torch", torch.__version__)).split("+")[0].split(".")[:2])
    if fp.get("gpu_capability"):
        return f"cuda-sm{str(fp['gpu_capability']).replace('.', '')}-torch{torch_mm}"
    isa = str(fp.get("cpu_capability") or "default").lower()
    return f"cpu-{isa}-torch{torch_mm}"


def describe(fp: dict[str, Any] | None = None) -> str:
    """One human line: ``AMD EPYC (AVX2, no native bf16), 2 cores, torch 2.14.1``."""
    fp = fp if fp is not None else fingerprint()
    bf16 = "native bf16" if fp.get("native_bf16") else "no native bf16"
    line = (f"{fp.get('cpu_model', 'unknown CPU')} ({fp.get('cpu_capability', '?')}, {bf16}), "
            f"{fp.get('cores_available', '?')} cores, torch {str(fp.get('torch', '?')).split('+')[0]}")
    if fp.get("gpu_name"):
        line += f", {fp['gpu_name']} (sm {fp['gpu_capability']}, CUDA {fp.get('cuda')})"
    return line


if __name__ == "__main__":  # python -m xraygan.fingerprint
    import json

    json.dump(fingerprint(), sys.stdout, indent=2)
    print()
