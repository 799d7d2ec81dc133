"""Memory of a training step: torchinfo's estimate (the paper's method), the project's own
estimate, the measured peak, batch-norm savings and growth laws (paper Fig. 7 and 8)."""

from .estimate import (
    SavedForBackward,
    StepEstimate,
    TorchinfoStats,
    estimate_step,
    paper_estimate_bytes,
    saved_at_batch,
    saved_for_backward,
    torchinfo_stats,
)
from .fit import GrowthFit, extrapolation_error, fit_exponential, fit_loglog, fit_power_law
from .measure import MeasuredPeak, build_step, make_batch, measure_step_peak, resident_bytes
from .report import (
    MemoryRow,
    bn_savings,
    format_table,
    growth_fits,
    memory_row,
    memory_table,
    report_dict,
    rows_to_csv,
    write_csv,
    write_json,
)

__all__ = [
    "GrowthFit",
    "MeasuredPeak",
    "MemoryRow",
    "SavedForBackward",
    "StepEstimate",
    "TorchinfoStats",
    "bn_savings",
    "build_step",
    "estimate_step",
    "extrapolation_error",
    "fit_exponential",
    "fit_loglog",
    "fit_power_law",
    "format_table",
    "growth_fits",
    "make_batch",
    "measure_step_peak",
    "memory_row",
    "memory_table",
    "paper_estimate_bytes",
    "report_dict",
    "resident_bytes",
    "rows_to_csv",
    "saved_at_batch",
    "saved_for_backward",
    "torchinfo_stats",
    "write_csv",
    "write_json",
]
