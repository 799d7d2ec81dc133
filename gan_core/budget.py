"""Bytes and budgets: sizes as people write them, the memory this machine (or a CUDA device)
has available, and the budget a command may plan to allocate within it.

A leaf below everything that reads or allocates: reading a file (xraygan.safeio), decoding an
image (xraygan.data.limits) and the training guard (xraygan.guard) ask it, and it asks nothing
of the project but its errors.

The budget is ``XRAYGAN_MEMORY_CAP`` when set ("8GiB", "512MB", "off" to disable the check),
else :data:`DEFAULT_FRACTION` of what is available: ``MemAvailable`` from /proc/meminfo,
bounded by the cgroup's memory limit minus its usage (containers, CI runners, Slurm jobs), or
for a CUDA device the free memory ``torch.cuda.mem_get_info`` reports.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ResourceError

MEMORY_CAP_ENV = "XRAYGAN_MEMORY_CAP"
DEFAULT_FRACTION = 0.8
"""Share of the available memory a run may plan to use: the rest is the OS, the page cache
the data loader relies on, allocator fragmentation and the estimate's error."""

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6,
          "mib": 2**20, "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12,
          "tib": 2**40}


def parse_bytes(text: str) -> int | None:
    """``"8GiB"`` -> 8589934592; ``"off"``, ``"none"`` or ``"0"`` -> None (no cap)."""
    s = text.strip().lower().replace(" ", "")
    if s in ("off", "none", "0", ""):
        return None
    m = re.fullmatch(r"(\d+(?:\.\d*)?)([a-z]*)", s)
    if not m or m.group(2) not in _UNITS:
        raise ResourceError(
            f"{MEMORY_CAP_ENV}: expected a size such as 8GiB, 512MB or 2000000000 (bytes), "
            f"or off, got {text!r}"
        )
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def format_bytes(n: int | float) -> str:
    """1536 -> '1.5 KiB'; absurd sizes stay readable ('4.2e+21 bytes')."""
    n = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            if unit == "bytes":
                return f"{int(n)} bytes"
            if abs(n) >= 1024**2:  # beyond 1 EiB: no unit says more than the exponent
                return f"{n * 1024**5:.2g} bytes"
            return f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # unreachable


# --------------------------------------------------------------------------- what is available
def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if not text.isdigit():  # "max": no limit
        return None
    return int(text)


def _cgroup_headroom() -> int | None:
    """The cgroup's limit minus its usage (v2 memory.max / v1 memory.limit_in_bytes)."""
    root = Path("/sys/fs/cgroup")
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        hier, _, rest = line.partition(":")
        controllers, _, rel = rest.partition(":")
        rel = rel.lstrip("/")
        if hier == "0" and controllers == "":  # v2 unified
            candidates = [(root / rel / "memory.max", root / rel / "memory.current"),
                          (root / "memory.max", root / "memory.current")]
        elif "memory" in controllers.split(","):  # v1
            base = root / "memory"
            candidates = [(base / rel / "memory.limit_in_bytes", base / rel / "memory.usage_in_bytes"),
                          (base / "memory.limit_in_bytes", base / "memory.usage_in_bytes")]
        else:
            continue
        for limit_path, usage_path in candidates:
            limit = _read_int(limit_path)
            if limit is not None and limit < 2**60:  # v1 writes ~2**63 for "no limit"
                return max(limit - (_read_int(usage_path) or 0), 0)
    return None


def available_memory(device: Any = "cpu") -> tuple[int | None, str]:
    """(bytes available, where the figure comes from) for host RAM or a CUDA device."""
    name = str(device)
    if name.startswith("cuda"):
        import torch

        try:
            free, _total = torch.cuda.mem_get_info(torch.device(name))
        except (RuntimeError, AssertionError, ValueError):  # no such device: the caller says so
            return None, f"{name} (not available)"
        return int(free), f"free memory of {name}"
    avail, source = _meminfo_available(), "MemAvailable in /proc/meminfo"
    headroom = _cgroup_headroom()
    if headroom is not None and (avail is None or headroom < avail):
        avail, source = headroom, "the cgroup memory limit minus its usage"
    return avail, source


@dataclass(frozen=True)
class Budget:
    limit: int  # bytes a command may plan to allocate
    available: int | None
    source: str
    capped: bool  # limit set by XRAYGAN_MEMORY_CAP

    def describe(self) -> str:
        avail = (f"{format_bytes(self.available)} available ({self.source})"
                 if self.available is not None else "available memory unknown")
        if self.capped:
            return f"the cap {MEMORY_CAP_ENV}={os.environ.get(MEMORY_CAP_ENV)} allows " \
                   f"{format_bytes(self.limit)}; {avail}"
        return f"{avail}, of which {DEFAULT_FRACTION:.0%} ({format_bytes(self.limit)}) may be planned"


def memory_budget(device: Any = "cpu") -> Budget | None:
    """The budget for ``device``; None when the check is off or nothing is known."""
    cap_text = os.environ.get(MEMORY_CAP_ENV)
    avail, source = available_memory(device)
    if cap_text is not None:
        cap = parse_bytes(cap_text)
        if cap is None:
            return None
        return Budget(limit=cap, available=avail, source=source, capped=True)
    if avail is None:
        return None
    return Budget(limit=int(avail * DEFAULT_FRACTION), available=avail, source=source, capped=False)


def check_allocation(nbytes: int, what: str, flag: str, device: Any = "cpu") -> None:
    """Raise ResourceError when ``nbytes`` for ``what`` exceed the budget of ``device``.

    ``what`` reads as a noun phrase ("decoding 20000x20000 x 1 frame at 16 bits"), ``flag``
    as the way out ("--image-size or --num-images").
    """
    budget = memory_budget(device)
    if budget is None or nbytes <= budget.limit:
        return
    raise ResourceError(
        f"{what} would allocate {format_bytes(nbytes)} on {where(device)}, but "
        f"{budget.describe()}; lower {flag}"
    )


def where(device: Any) -> str:
    """How an error names ``device``: a CUDA device by name, else the host's RAM."""
    name = str(device)
    return name if name.startswith("cuda") else "the host (RAM)"
