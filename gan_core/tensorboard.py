"""A live TensorBoard view of a training run, written beside the CSV into RUN/tb/.

metrics.csv stays the record every reader uses (reports, metrics, resume); the event files are
a view for ``tensorboard --logdir``: the same logged rows as scalars, and every fixed-noise
sample grid as an image. A sweep writes one TensorBoard run per trial (each trial's run
folder has its own tb/), so ``tensorboard --logdir studies/table1-quick`` lists the trials.

Scalar tags:
  loss/d, loss/g          the logged D and G losses
  D/real, D/fake          mean D(x) and D(G(z)) as probabilities
  perf/images_per_s       training throughput over the last log window
  perf/epoch              epochs done
  memory/rss_mb           resident memory of the process (CPU runs)
  memory/cuda_allocated_mb, memory/cuda_peak_mb   (CUDA runs)
Images: ``samples`` (the grid saved as samples/step_*.png). Text: ``config`` (config.json).

When the run is evaluated (``xraygan train`` at the end; a sweep after each trial), every
numeric end-of-run metric goes in as ``eval/<name>`` (``eval/fid``, ``eval/kid``,
``eval/d_loss_mean``, ...) at the last step, together with the run's hyperparameters (the
flattened config, and a sweep trial's cell and grid parameters), so TensorBoard's HParams tab
compares the trials of a sweep side by side.

Opt-in (``xraygan train --tensorboard``, ``xraygan sweep --tensorboard``, or
XRAYGAN_TENSORBOARD=1): an event writer is a background thread and a second copy of the log,
which a benchmark run should not pay for unasked. Needs the ``tensorboard`` package
(``pip install 'xraygan[tensorboard]'``).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch

from .config import ExperimentConfig, flatten
from .errors import ConfigError
from .imageio import make_grid

TB_DIR = "tb"
SCALARS = {  # metrics.csv column -> tag
    "loss_d": "loss/d",
    "loss_g": "loss/g",
    "d_real": "D/real",
    "d_fake": "D/fake",
    "images_per_s": "perf/images_per_s",
    "epoch": "perf/epoch",
}


def available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def wanted(flag: bool | None) -> bool:
    """The flag if given, else XRAYGAN_TENSORBOARD (1/true/yes)."""
    if flag is not None:
        return bool(flag)
    return os.environ.get("XRAYGAN_TENSORBOARD", "").lower() in ("1", "true", "yes", "on")


def tb_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / TB_DIR


def rss_mb() -> float | None:
    """Resident set size of this process in MiB (Linux /proc), None where unknown."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def hparams_of(config: dict[str, Any], extra: dict[str, Any] | None = None, *,
               device: str | torch.device | None = None) -> dict[str, Any]:
    """Flat ``section.field`` -> value pairs TensorBoard accepts (numbers, strings, booleans):
    only the fields of ``config`` that differ from the defaults (constant columns make the
    HParams table unreadable), ``extra`` (a sweep trial: its cell and the grid's parameters),
    and ``train.device`` as resolved (cuda, cpu), never "auto"."""
    defaults = flatten(ExperimentConfig().to_dict())
    out = {k: v if isinstance(v, (bool, int, float, str)) else str(v)
           for k, v in flatten(config).items()
           if v is not None and k != "name" and defaults.get(k, object()) != v}
    out.update(extra or {})
    if device is not None:
        out["train.device"] = str(device)
    return out


def log_results(run_dir: str | Path, step: int, metrics: dict[str, Any],
                hparams: dict[str, Any]) -> None:
    """The end-of-run metrics as ``eval/<name>`` scalars and one HParams record, in RUN/tb/."""
    if not available():
        return  # --tensorboard already said so when the run started
    from torch.utils.tensorboard import SummaryWriter

    values = {f"eval/{k}": float(v) for k, v in metrics.items()
              if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    writer = SummaryWriter(log_dir=str(tb_dir(run_dir)))
    try:
        # also writes each value as a scalar at ``step``; run_name ".": into RUN/tb itself,
        # so each run (each trial of a sweep) is one HParams row
        writer.add_hparams(hparams, values, run_name=".", global_step=step)
    finally:
        writer.flush()
        writer.close()


class TensorBoardLog:
    """``on_log(row)`` and ``on_sample(step, images)`` hooks of xraygan.train.run_loop."""

    def __init__(self, run_dir: str | Path, *, start_step: int = 0,
                 device: torch.device | str = "cpu", config: dict[str, Any] | None = None) -> None:
        if not available():
            raise ConfigError("--tensorboard needs the tensorboard package: "
                              "pip install 'xraygan[tensorboard]' (or pip install tensorboard)")
        from torch.utils.tensorboard import SummaryWriter

        self.device = torch.device(device)
        # purge_step: on resume, events past the checkpoint (logged by the killed process and
        # redone now) are hidden, as metrics.csv is cut back to the checkpoint
        self.writer = SummaryWriter(log_dir=str(tb_dir(run_dir)),
                                    purge_step=start_step if start_step else None)
        if config is not None and not start_step:
            self.writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```", 0)

    def log(self, row: dict[str, Any]) -> None:
        step = int(row["step"])
        for column, tag in SCALARS.items():
            value = row.get(column)
            if isinstance(value, (int, float)):
                self.writer.add_scalar(tag, float(value), step)
        if self.device.type == "cuda":
            self.writer.add_scalar("memory/cuda_allocated_mb",
                                   torch.cuda.memory_allocated(self.device) / 2**20, step)
            self.writer.add_scalar("memory/cuda_peak_mb",
                                   torch.cuda.max_memory_allocated(self.device) / 2**20, step)
        else:
            rss = rss_mb()
            if rss is not None:
                self.writer.add_scalar("memory/rss_mb", rss, step)

    def sample(self, step: int, images: torch.Tensor) -> None:
        grid = make_grid(images)  # the same grid as samples/step_*.png: (H, W) or (H, W, 3) uint8
        self.writer.add_image("samples", grid, step, dataformats="HW" if grid.ndim == 2 else "HWC")

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
