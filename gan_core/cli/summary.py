"""The end-of-run console summary: a short table of what a run measured and the commands a
user would try next. Everything else stays in RUN/summary.json."""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..runs import RunStatus

# (label, metric keys shown on one row, significant digits; 0: an integer, None: yes/no);
# a row without any of its keys is left out
ROWS = (
    ("D loss mean / var / std", ("d_loss_mean", "d_loss_var", "d_loss_std"), 3),
    ("T0 (end of D's early lead)", ("t0",), 0),
    ("mode collapse", ("collapse_detected",), None),
    ("FID / KID", ("fid", "kid"), 4),
    ("precision / recall", ("precision", "recall"), 3),
    ("blockiness (blurry squares)", ("blockiness",), 3),
    ("sample diversity vs real", ("diversity_ratio",), 3),
)


def _value(v: Any, digits: int | None) -> str:
    if digits is None or isinstance(v, bool):
        return "n/a" if v is None else "yes" if v else "no"
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        return "n/a"
    return f"{v:.0f}" if digits == 0 else f"{v:.{digits}g}"


def table(rows: list[tuple[str, str]]) -> list[str]:
    width = max(len(k) for k, _ in rows)
    return [f"  {k:<{width}}  {v}" for k, v in rows]


def run_summary(run_dir: Path, status: str, step: int, summary: Mapping[str, Any]) -> list[str]:
    """The lines ``xraygan train`` prints when a run ends."""
    rows = [("run folder", str(run_dir)),
            ("status", f"{status} at step {step}/{summary.get('total_steps')}"),
            ("speed", f"{summary.get('images_per_s', 0):.1f} images/s, "
                      f"{summary.get('train_time_s', 0):.1f} s of training")]
    metrics = summary.get("metrics") or {}
    for label, keys, digits in ROWS:
        present = [k for k in keys if k in metrics]
        if present:
            rows.append((label, " / ".join(_value(metrics[k], digits) for k in present)))
    lines = table(rows)
    lines.append(f"  (every metric: {Path(run_dir) / 'summary.json'})")
    run = shlex.quote(str(run_dir))
    if status == RunStatus.INTERRUPTED:
        nxt = [(f"xraygan train --resume {run}", "continue where it stopped")]
    else:
        nxt = [(f"xraygan fid {run} phantom --kid", "FID and KID against the built-in phantoms"),
               (f"xraygan metrics {run} --fid", "every metric, kept in evaluations.jsonl"),
               (f"xraygan sample {run} --n 2048 --out samples", "PNGs for other FID tools"),
               (f"xraygan train --resume {run} --steps {2 * max(step, 1)}", "train it longer")]
    lines.append("next:")
    lines += table(nxt)
    return lines


def sweep_next(name: str, out: Path, storage_url: str, default_out: str) -> list[str]:
    """The commands to read a finished sweep: its report, and the dashboard."""
    where = "" if Path(out) == Path(default_out) else f" --studies {shlex.quote(str(out))}"
    if not storage_url.startswith("sqlite:///"):
        where = f" --storage {shlex.quote(storage_url)}"
    return ["next:"] + table([
        (f"xraygan report {name}{where}", "tables, figures and verdicts -> reports/out/"),
        (f"optuna-dashboard {shlex.quote(storage_url)}", "browse the trials (pip install "
         "optuna-dashboard)"),
    ])
