"""Process-level speed settings for CPU training: the glibc allocator thresholds.

A DCGAN step at 64x64, batch 64 allocates activation maps of tens of MB. glibc serves blocks
above ``M_MMAP_THRESHOLD`` (dynamic, capped at 32 MiB) with a fresh ``mmap`` and returns them
with ``munmap`` on free, and trims the heap top above ``M_TRIM_THRESHOLD``: every step then
faults its temporaries in page by page again. Raising both thresholds keeps the pages mapped
between steps. The environment variables ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_``
do the same but are read only at process start; ``mallopt`` sets them at run time, so the
trainer can apply them itself without re-executing the interpreter.

Numerics are untouched; the cost is that the process keeps its peak heap instead of returning
it to the OS between steps. ``XRAYGAN_MALLOC_TUNE=0`` turns it off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1 << 30  # blocks up to 1 GiB come from the heap, not a fresh mmap
TRIM_THRESHOLD_BYTES = 1 << 31  # keep up to 2 GiB of free heap top mapped

_applied: bool | None = None


def tune_malloc(enabled: bool | None = None) -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True when they are in effect.

    ``enabled=None`` reads ``XRAYGAN_MALLOC_TUNE`` (default on). A no-op off Linux/glibc and
    when the environment variables already set the thresholds.
    """
    global _applied
    if enabled is None:
        enabled = os.environ.get("XRAYGAN_MALLOC_TUNE", "1") not in ("0", "false", "no")
    if not enabled:
        return bool(_applied)
    if _applied is not None:
        return _applied
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        _applied = True  # the user chose at process start: leave their values
        return _applied
    _applied = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):  # musl and others have no mallopt
            return _applied
        mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        _applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
            mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
        )
    return _applied
