"""How a run ends badly, and what survives it: the summary says why, the last good checkpoint
stays, and the error says how to go on.

* Diverged: a loss, a parameter or a buffer became NaN or infinite. Checkpoints are written
  only when every tensor is finite, so "the last good checkpoint" is one to resume or inspect.
* Disk full: the writes are atomic (xraygan.runs), so the file being written when space ran
  out is the old one or nothing, never half of one; the run is marked failed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NoReturn

from . import runs
from .errors import DiskFullError, TrainingDiverged


def diverged(run_dir: Path, step: int, loss_d: float, loss_g: float, last_good: int | None,
             train_time_s: float, reason: str | None = None) -> NoReturn:
    """Mark the run diverged and raise TrainingDiverged; ``reason`` names what went
    non-finite when it is not a loss (a parameter or buffer)."""
    which = "loss_d" if not math.isfinite(loss_d) else "loss_g"
    value = loss_d if which == "loss_d" else loss_g
    kept = (f"the last good checkpoint (step {last_good}) is kept at {runs.checkpoint_path(run_dir)}"
            if last_good is not None else "no checkpoint had been written yet")
    reason = reason or f"{which} became {value} at step {step}"
    runs.update_summary(run_dir, status=runs.RunStatus.DIVERGED, step=step, reason=reason,
                        last_good_step=last_good, train_time_s=round(train_time_s, 3))
    raise TrainingDiverged(
        f"{run_dir}: {reason}; {kept}. Lower the learning rate (--lr-g/--lr-d), "
        "or try another optimizer or loss."
    )


def disk_full(run_dir: Path, e: OSError, step: int, last_good: int | None) -> DiskFullError:
    """Mark the run failed (atomic writes left the last checkpoint intact); the error to raise."""
    where = e.filename or "a file of the run"
    kept = (f"the last checkpoint (step {last_good}) is intact; free space, then "
            f"xraygan train --resume {run_dir}" if last_good is not None
            else "no checkpoint had been written yet")
    reason = f"disk full (errno {e.errno}) while writing {where} at step {step}"
    runs.force_summary(run_dir, status=runs.RunStatus.FAILED, reason=reason, step=step,
                       last_good_step=last_good)
    return DiskFullError(f"{run_dir}: {reason}; {kept}")
