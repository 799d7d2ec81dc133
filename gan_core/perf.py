"""Kept for callers of ``xraygan.perf.tune_malloc``: the allocator thresholds now live with
the other process-level settings in :mod:`xraygan.process`."""

from __future__ import annotations

from .process import (  # noqa: F401
    M_MMAP_THRESHOLD,
    M_TRIM_THRESHOLD,
    MMAP_THRESHOLD_BYTES,
    TRIM_THRESHOLD_BYTES,
    tune_malloc,
)
