"""Is the quick scale's reduced FID a faithful stand-in? FID at 2,048 samples on the same runs.

The quick reproduction scores every trial by FID on ``QUICK.fid_samples`` generated images (a
budget choice, ablations/scale.py) and records FID_inf and KID beside it. This re-scores the
same finished runs (same checkpoints, same evaluation noise seed) at ``--fid-samples`` (default
2,048): per trial the recorded small-N numbers next to FID at 2,048 (and its own FID_inf).
xraygan.reports.rescore_table turns the rows into a table with the AdaS-vs-Adam effect under each
metric, so a reader sees whether the reduced metric changes any conclusion.

    xraygan fid-check table1-quick [--studies DIR | --storage URL] [--fid-samples 2048]
        [--md FILE] [--cells adas-elu adam-elu]

(``nox -s fid_check``). It costs one Inception pass of 2,048 images per trial (about 300 s per
trial on two quiet AVX2 EPYC cores), so it is not part of the quick start.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xraygan import runs
from xraygan.metrics import METRICS, RunContext
from xraygan.trials import TrialStatus

SMALL = ("fid", "fid_infinity", "kid")  # recorded by the sweep at the scale's sample count


def rescore(run_dir: str | Path, fid_samples: int, device: str = "cpu") -> dict[str, Any]:
    """FID (and FID_inf, KID) of a finished run at ``fid_samples`` generated images.

    Each result is appended to the run's evaluations.jsonl (kind "fid_check") and read back
    from there on the next call: a check killed after 50 of its 60 minutes resumes at the trial
    it was on, not at the first."""
    for ev in reversed(runs.read_evaluations(run_dir)):
        if ev.get("kind") == "fid_check" and ev.get("fid_samples") == fid_samples:
            return {k: v for k, v in ev.items() if k not in ("kind", "time", "fid_samples")}
    ctx = RunContext(Path(run_dir), device=device, fid_samples=fid_samples, kid=True)
    result = dict(METRICS.get("fid")(ctx))
    runs.append_evaluation(run_dir, {"kind": "fid_check", "time": time.time(),
                                     "fid_samples": fid_samples, **result})
    return result


def _group(t: Mapping[str, Any]) -> str:
    """A trial's cell without its seed suffix (adas-elu-s2 -> adas-elu)."""
    params = t.get("cell_params") or {}
    return str(t.get("cell", "")).rsplit("-s", 1)[0] if "seed" in params else str(t.get("cell"))


def check(trials: Sequence[Mapping[str, Any]], fid_samples: int = 2048, device: str = "cpu",
          cells: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One row per completed trial (its user attrs): cell group, seed, small-N and large-N;
    ``cells`` keeps only those cell groups (e.g. the two a claim compares)."""
    rows = []
    todo = [t for t in trials if t.get("status") == TrialStatus.COMPLETED and t.get("run_dir")
            and (not cells or _group(t) in cells)]
    start = time.monotonic()
    for i, t in enumerate(todo, 1):
        m = t.get("metrics") or {}
        big = rescore(t["run_dir"], fid_samples, device)
        # a line per trial, so a log redirected to a file shows progress (~3.5 min apart on CPU)
        fid = big.get("fid")
        shown = f"{fid:.1f}" if isinstance(fid, (int, float)) else "n/a"
        print(f"fid_check: {i}/{len(todo)} {t.get('cell')}: FID@{fid_samples} "
              f"{shown} ({time.monotonic() - start:.0f} s)", file=sys.stderr,
              flush=True)
        rows.append({"cell": _group(t), "seed": t.get("seed"), "n_small": m.get("fid_n1"),
                     **{f"{k}_small": m.get(k) for k in SMALL},
                     "n_large": big.get("fid_n1"), "fid_large": big.get("fid"),
                     "fid_infinity_large": big.get("fid_infinity"), "kid_large": big.get("kid")})
    return rows
