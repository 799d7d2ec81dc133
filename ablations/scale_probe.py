"""Measure what the quick scale must be long enough for: the iteration at which each Table I
configuration leaves T0 (D's initial winning phase), and what that length costs on the slower
CPU class.

    python -m xraygan.ablations.scale_probe --batch-size 32 --steps 2000 --seeds 0 1 2 \
        --cells adam-elu --out probe/

Each (cell, seed) trains once for ``--steps`` iterations with ``xraygan.train`` (the table1
cell's config at the quick scale's image size and width, FID off, one intra-op thread). T0 is
then found (xraygan.metrics.dynamics.find_t0, the report's definition) on every prefix of the
D-loss log that a shorter run would have logged: training is deterministic and nothing in a
step depends on the run's total length, so one long run gives the T0 of every shorter one.

Time on the reference CPU class: the machine is shared, so a run's wall time means little by
itself. Before, after and every :data:`SAMPLE_EVERY` iterations during each run (that time
excluded from the run's), the probe times a *known reference workload*, the
quick scale's AdaS step (paper-elu, 32 px, width 32, batch 64, one thread), whose quiet rate on
the slower CPU class (AVX2 EPYC, 2.45 GHz) is :data:`REFERENCE_QUIET_IMAGES_PER_S` (measured
there, docs/quick-reproduction.md). A run's time on that CPU, quiet, is then

    wall_s * reference_rate_measured_here_now / REFERENCE_QUIET_IMAGES_PER_S

(the ratio is taken in the same process under the same load as the run). Results are one JSON
line per run in OUT/probe.jsonl; runs already there are skipped (resumable).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xraygan import runs
from xraygan.ablations.scale import QUICK, base_config
from xraygan.ablations.spec import StudyContext
from xraygan.ablations.table1 import cells
from xraygan.config import replace_path
from xraygan.memory.measure import make_batch
from xraygan.metrics.dynamics import find_t0
from xraygan.train import build_trainer, train

REFERENCE_QUIET_IMAGES_PER_S = 438.0  # quick AdaS step, 1 thread, quiet AVX2 EPYC
REFERENCE_BATCH = 64
REFERENCE_S = 4.0  # seconds of reference steps before and after each run
SAMPLE_EVERY = 250  # iterations between reference samples during a run (load changes)
SAMPLE_S = 1.0


def reference_rate(seconds: float = REFERENCE_S) -> float:
    """Images per second of the reference workload, here and now (one thread)."""
    cfg = base_config(QUICK)
    device = torch.device("cpu")
    trainer = build_trainer(cfg.model, cfg.optim, device=device, seed=0)
    real, z = make_batch(cfg.model, REFERENCE_BATCH, device)
    trainer.step(real, z)  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 3:
        trainer.step(real, z)
        n += 1
    return n * REFERENCE_BATCH / (time.perf_counter() - t0)


def t0_by_length(steps: Sequence[int], loss_d: Sequence[float],
                 lengths: Sequence[int]) -> dict[int, float]:
    """T0 a run of each length in ``lengths`` would report (NaN: never left T0)."""
    s = np.asarray(steps)
    x = np.asarray(loss_d, dtype=float)
    return {n: find_t0(s[s < n], x[s < n]) for n in lengths if (s < n).sum() >= 10}


def probe_run(cell: str, seed: int, *, steps: int, batch_size: int, out: Path,
              lengths: Sequence[int]) -> dict[str, Any]:
    scale = QUICK.with_overrides(steps=steps, batch_size=batch_size, fid=False,
                                 sample_every=steps, checkpoint_every=steps)
    cfg = {c.key: c.config for c in cells(StudyContext(scale))}[cell]
    cfg = replace_path(cfg, "train.seed", seed)
    torch.set_num_threads(1)
    before = reference_rate()
    load_before = os.getloadavg()[0]
    samples: list[float] = []
    spent = [0.0, 0.0]  # wall and CPU seconds of the samples, taken out of the run's

    def sample(step: int) -> None:
        if step % SAMPLE_EVERY == 0 and 0 < step < steps:
            w, c = time.perf_counter(), time.process_time()
            samples.append(reference_rate(SAMPLE_S))
            spent[0] += time.perf_counter() - w
            spent[1] += time.process_time() - c

    cpu0, t0 = time.process_time(), time.perf_counter()
    result = train(cfg, runs_root=out / "runs", progress=False, evaluate=False, on_step=sample)
    wall = time.perf_counter() - t0 - spent[0]
    cpu = time.process_time() - cpu0 - spent[1]
    after = reference_rate()
    m = runs.read_metrics(result.run_dir)
    t0s = t0_by_length(m["step"].to_numpy(), m["loss_d"].to_numpy(), lengths)
    rates = [before, *samples, after]
    ref = len(rates) / sum(1 / r for r in rates)  # harmonic mean: time-weighted
    return {
        "cell": cell, "seed": seed, "steps": steps, "batch_size": batch_size,
        "image_size": scale.image_size, "features": scale.features,
        "wall_s": wall, "cpu_s": cpu, "reference_images_per_s": ref,
        "reference_before": before, "reference_after": after, "reference_samples": samples,
        "load_avg": [load_before, os.getloadavg()[0]],
        "avx2_quiet_s": wall * ref / REFERENCE_QUIET_IMAGES_PER_S,
        "t0": {str(k): v for k, v in t0s.items()},
        "d_loss_last_quarter_mean": float(m["loss_d"].iloc[-len(m) // 4:].mean()),
        "run_dir": str(result.run_dir),
    }


ROW_FIELDS = {"cell": str, "seed": int, "steps": int, "batch_size": int, "t0": dict,
              "avx2_quiet_s": (int, float), "wall_s": (int, float), "cpu_s": (int, float),
              "load_avg": list}


def read_log(path: Path, skipped: list[str] | None = None) -> list[dict[str, Any]]:
    """The rows of a probe.jsonl, read bounded (XRAYGAN_MAX_JSON_BYTES); a line that does not
    parse as a row (cut short by a kill mid-write) is left out, and said in ``skipped``: its
    run is simply probed again. UserFileError for a missing or unreadable file."""
    from xraygan.errors import UserFileError
    from xraygan.safeio import read_bounded

    raw = read_bounded(path, "json_bytes", f"probe log {path}", error=UserFileError)
    rows = []
    for i, line in enumerate(raw.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except (ValueError, RecursionError):
            r = None
        if not isinstance(r, dict) or any(not isinstance(r.get(k), t) or isinstance(r.get(k), bool)
                                          for k, t in ROW_FIELDS.items()) or r["steps"] < 1:
            if skipped is not None:
                skipped.append(f"{path}:{i}: not a complete probe row; left out")
            continue
        rows.append(r)
    return rows


def _append(log: Path, row: dict[str, Any]) -> None:
    """One row on its own line, even after a line a kill cut short (no newline at its end)."""
    with log.open("a+b") as f:
        f.seek(0, os.SEEK_END)
        if f.tell():
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")
        f.write((json.dumps(row) + "\n").encode())


def table1_cells() -> list[str]:
    from xraygan.ablations.scale import QUICK
    from xraygan.ablations.spec import StudyContext
    from xraygan.ablations.table1 import cells

    return [c.key for c in cells(StudyContext(QUICK))]


def summary_markdown(logs: Sequence[Path], lengths: Sequence[int] = (1500, 2000, 2500, 3000)) -> str:
    """The probe's results as a markdown table: T0 at each run length (— : the run never left
    T0), the time per 1000 iterations on a quiet AVX2 core, and the load it was measured under."""
    head = ["cell", "seed", "batch", *[f"T0 in a {n}-iteration run" for n in lengths],
            "s / 1000 it. (quiet AVX2)", "wall / CPU s here", "load avg"]
    rows = []
    for log in logs:
        for r in read_log(log):
            t0 = [r["t0"].get(str(n)) for n in lengths]
            rows.append([r["cell"], r["seed"], r["batch_size"],
                         *[("—" if v != v else f"{v:.0f}") if v is not None else "not run"
                           for v in t0],
                         f"{1000 * r['avx2_quiet_s'] / r['steps']:.0f}",
                         f"{r['wall_s']:.0f} / {r['cpu_s']:.0f}",
                         "-".join(f"{x:.1f}" for x in r["load_avg"])])
    rows.sort(key=lambda r: (str(r[0]), int(r[2]), int(r[1])))
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def past_t0_by_length(steps: Sequence[int], loss_d: Sequence[float],
                      lengths: Sequence[int]) -> dict[int, float]:
    """T0 by the claims' criterion (xraygan.metrics.dynamics.t0_phase: entered the low phase,
    left it by 75 % of the run) that a run of each length would report; NaN: not past T0."""
    import numpy as np

    from xraygan.metrics.dynamics import t0_phase

    s = np.asarray(steps)
    x = np.asarray(loss_d, dtype=float)
    return {n: t0_phase(s[s <= n], x[s <= n]).t0 for n in lengths if (s <= n).sum() >= 10}


def derive_length(logs: Sequence[Path], cells: Sequence[str],
                  lengths: Sequence[int]) -> dict[str, Any]:
    """The shortest length at which every probed seed of ``cells`` is past T0 (criterion A of
    ablations/scale.py), from each probed run's own D-loss log (metrics.csv in ``run_dir``),
    with the quiet-AVX2 seconds per 1,000 iterations of those runs (median)."""
    import statistics

    from xraygan import runs

    per_run: dict[tuple[str, int], dict[int, float]] = {}
    s_per_1000: list[float] = []
    for log in logs:
        for line in Path(log).read_text().splitlines():
            r = json.loads(line)
            if r["cell"] not in cells:
                continue
            m = runs.read_metrics(r["run_dir"])
            own = int(r["steps"])
            t0 = past_t0_by_length(m["step"].to_numpy(), m["loss_d"].to_numpy(),
                                   [n for n in lengths if n < own] + [own])
            end = t0.pop(own, float("nan"))
            if own in lengths:
                t0[own] = end
            if end == end:
                # past T0 by the end of the probe: nothing in a step depends on the run's
                # length, so a longer run has the same T0 at a smaller share of it
                t0.update({n: end for n in lengths if n > own})
            per_run[(r["cell"], int(r["seed"]))] = t0  # longer and not past: not judged
            s_per_1000.append(1000 * r["avx2_quiet_s"] / r["steps"])
    missing = [c for c in cells if not any(k[0] == c for k in per_run)]
    probed = [n for n in lengths if per_run and all(n in t for t in per_run.values())]
    ok = [n for n in probed if all(t[n] == t[n] for t in per_run.values())]
    # the shortest length from which on every longer probed length passes too
    shortest = next((n for n in probed if all(m in ok for m in probed if m >= n)), None)
    return {"cells": list(cells), "missing_cells": missing,
            "runs": {f"{c} seed {sd}": t for (c, sd), t in sorted(per_run.items())},
            "shortest_length": None if missing else shortest,
            "avx2_quiet_s_per_1000": statistics.median(s_per_1000) if s_per_1000 else None}


def derive_markdown(result: dict[str, Any], shown: Sequence[int]) -> str:
    head = ["run", *[f"T0 in {n:,}" for n in shown]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, t in result["runs"].items():
        cells = [("—" if t[n] != t[n] else f"{t[n]:.0f}") if n in t else "not run" for n in shown]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    n = result["shortest_length"]
    lines.append("")
    lines.append(f"Shortest length with every probed seed of {', '.join(result['cells'])} past T0: "
                 + (f"{n:,} iterations" if n else "none probed")
                 + (f" (not probed yet: {', '.join(result['missing_cells'])})"
                    if result["missing_cells"] else ""))
    if result["avx2_quiet_s_per_1000"]:
        lines.append(f"Probe speed on a quiet AVX2 core: {result['avx2_quiet_s_per_1000']:.0f} s "
                     "per 1,000 iterations (median of the runs)")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    import sys

    from xraygan.errors import XrayganError

    p = argparse.ArgumentParser(prog="python -m xraygan.ablations.scale_probe",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--cells", nargs="+", default=["adas-elu", "adam-elu", "adas-elu-ttur",
                                                   "adas-dcgan"])
    p.add_argument("--seeds", nargs="+", type=_count, default=[0, 1, 2])
    p.add_argument("--steps", type=_count)
    p.add_argument("--batch-size", type=_count)
    p.add_argument("--summary", nargs="+", type=Path, metavar="PROBE_JSONL",
                   help="print the markdown table of finished probes and exit")
    p.add_argument("--lengths", type=_count, nargs="*", default=None,
                   help="run lengths to report T0 for (default: every 100 iterations)")
    p.add_argument("--out", type=Path)
    p.add_argument("--derive", nargs="+", type=Path, metavar="PROBE_JSONL",
                   help="print T0 by run length for --cells by the claims' criterion and the "
                        "shortest length at which every probed seed is past T0, and exit")
    a = p.parse_args(argv)
    try:
        return _main(a, p)
    except XrayganError as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return 2


def _count(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = -1
    if not 0 <= v <= 10**9:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to 10^9, got {text!r}")
    return v


def _main(a: argparse.Namespace, p: argparse.ArgumentParser) -> int:
    import sys

    if a.summary:
        print(summary_markdown(a.summary), end="")
        return 0
    if a.derive:
        lengths = a.lengths or list(range(1000, 5001, 100))
        result = derive_length(a.derive, a.cells, lengths)
        shown = [n for n in lengths if n % 500 == 0]
        print(derive_markdown(result, shown), end="")
        return 0
    if not (a.steps and a.batch_size and a.out):
        p.error("--steps, --batch-size and --out are needed to probe")
    known = table1_cells()
    unknown = [c for c in a.cells if c not in known]
    if unknown:
        p.error(f"--cells: {', '.join(unknown)} not a Table I cell; expected some of "
                f"{', '.join(known)}")
    lengths = a.lengths or list(range(200, a.steps + 1, 100))
    a.out.mkdir(parents=True, exist_ok=True)
    log = a.out / "probe.jsonl"
    done = set()
    if log.exists():
        skipped: list[str] = []
        for r in read_log(log, skipped):
            done.add((r["cell"], r["seed"], r["steps"], r["batch_size"]))
        for line in skipped:
            print(line, file=sys.stderr)
    for seed in a.seeds:
        for cell in a.cells:
            if (cell, seed, a.steps, a.batch_size) in done:
                continue
            row = probe_run(cell, seed, steps=a.steps, batch_size=a.batch_size, out=a.out,
                            lengths=lengths)
            _append(log, row)  # one line per finished run: a killed probe resumes
            print(json.dumps({k: row[k] for k in ("cell", "seed", "wall_s", "avx2_quiet_s")}),
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
