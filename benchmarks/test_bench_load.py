"""Training throughput under load, per thread policy.

The quick-scale step (paper-elu 32x32, width 32, batch 64, AdaS) runs in a fresh process per
probe (benchmarks/load_probe.py: libgomp reads OMP_WAIT_POLICY only when torch loads it), quiet,
next to one and next to two busy neighbour processes that this file starts itself: pure-Python
spin loops that end on their own and are killed in the fixture's teardown in any case.

Why rounds: on a shared virtual machine one setting's throughput moves by +-20 % from one probe
to the next (per-step times are bimodal, ~490 and ~690 images/s on the 2-core AVX2 EPYC, as the
host moves the vCPUs), so one probe per policy decides nothing. Each load level runs ROUNDS
rounds, every round all policies in a rotated order, and compares medians; the quiet level also
gives the default's ratio to the best static setting round by round (paired: both saw the same
minute of the host), with the median and range of those ratios.

One benchmark per load level; its ``extra_info`` has, per policy, the median images/s, every
round's figure, the ratio to the same policy's quiet median (``ratio_to_quiet``), and for the
quiet level ``default_to_best_static``. Targets: the default ("start": the thread count
chosen once at start from the free cores) >= 0.5x of its quiet throughput next to one busy
neighbour (issue 26), >= 0.3x next to two, quiet within 5 % of the
best static setting; ``targets`` says which were met. ``XRAYGAN_LOAD_STRICT=1`` makes a missed
target fail the benchmark (off by default: a neighbour the suite did not start can miss it).

Run: ``.nox/tests/bin/python -m pytest benchmarks/test_bench_load.py --benchmark-only -s``
(about 8 minutes). ``XRAYGAN_LOAD_PROBE_S`` sets the seconds per probe (default 6: at 4 s the
governor's first probe of the other thread count falls inside the window and costs it ~15 %),
``XRAYGAN_LOAD_ROUNDS`` the rounds per load level (default 3).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from load_probe import POLICIES

PROBE_S = float(os.environ.get("XRAYGAN_LOAD_PROBE_S", "6"))
ROUNDS = int(os.environ.get("XRAYGAN_LOAD_ROUNDS", "3"))
STRICT = os.environ.get("XRAYGAN_LOAD_STRICT") == "1"
LOADS = (0, 1, 2)
DEFAULT = "start"  # what `xraygan train` and sweep workers apply
STATIC = ("2t-default", "2t-passive", "1t")  # the best of these is "today's best setting"
MEASURED = (*STATIC, DEFAULT)
# a probe is ~PROBE_S + 2 s warm-up + ~4 s of torch import and model building
NEIGHBOUR_S = ROUNDS * len(MEASURED) * (PROBE_S + 30.0) + 60.0  # an upper bound; killed anyway
TARGET_TO_QUIET = {1: 0.5, 2: 0.3}
TARGET_QUIET_TO_BEST = 0.95
HERE = Path(__file__).resolve().parent
SPIN = ("import sys, time\n"
        "end = time.monotonic() + float(sys.argv[1])\n"
        "while time.monotonic() < end:\n"
        "    pass\n")

_quiet_median: dict[str, float] = {}


def _probe(policy: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "XRAYGAN_THREADS")}
    out = subprocess.run(
        [sys.executable, str(HERE / "load_probe.py"), policy, str(PROBE_S)],
        capture_output=True, text=True, env=env, timeout=PROBE_S * 20 + 120, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _rounds() -> list[dict[str, dict]]:
    """ROUNDS rounds of every policy, each round in a rotated order (no policy always first)."""
    rounds = []
    for r in range(ROUNDS):
        order = MEASURED[r % len(MEASURED):] + MEASURED[:r % len(MEASURED)]
        rounds.append({p: _probe(p) for p in order})
    return rounds


@pytest.fixture
def neighbours(request):
    """Start N busy processes (the test's ``load``); always killed on teardown."""
    procs = [subprocess.Popen([sys.executable, "-c", SPIN, str(NEIGHBOUR_S)])
             for _ in range(request.param)]
    time.sleep(0.5 if procs else 0)  # let them be running before the probe starts
    try:
        yield len(procs)
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait(timeout=10)


@pytest.mark.parametrize("neighbours", LOADS, indirect=True, ids=lambda n: f"busy{n}")
def test_step_throughput_under_load(benchmark, neighbours):
    rounds = benchmark.pedantic(_rounds, rounds=1, iterations=1)
    per_policy: dict[str, dict] = {}
    for p in MEASURED:
        figures = [r[p]["images_per_s"] for r in rounds]
        med = statistics.median(figures)
        row = {"median_images_per_s": round(med, 1), "rounds": [round(f, 1) for f in figures],
               "threads_seen": [r[p]["threads_seen"] for r in rounds],
               "wait_env": POLICIES[p][0]}
        if neighbours == 0:
            _quiet_median[p] = med
        if p in _quiet_median and neighbours:
            row["ratio_to_quiet"] = round(med / _quiet_median[p], 3)
        per_policy[p] = row
    info: dict = {"busy_neighbours": neighbours, "probe_s": PROBE_S, "rounds": ROUNDS,
                  "policies": per_policy, "default": DEFAULT, "process": rounds[0][DEFAULT]["applied"],
                  "preset": "paper-elu", "image_size": 32, "width": 32, "batch_size": 64,
                  "optimizer": "adas"}
    targets: dict[str, bool] = {}
    if neighbours == 0:
        paired = [r[DEFAULT]["images_per_s"] / max(r[p]["images_per_s"] for p in STATIC)
                  for r in rounds]
        best = max(STATIC, key=lambda p: per_policy[p]["median_images_per_s"])
        info["best_static"] = best
        info["default_to_best_static"] = {
            "ratio_of_medians": round(_quiet_median[DEFAULT] / _quiet_median[best], 3),
            "paired_median": round(statistics.median(paired), 3),
            "paired_range": [round(min(paired), 3), round(max(paired), 3)]}
        # decided on the medians: one disturbed probe (a 148 among 476-511) moves a 3-round
        # paired median by 5 %, the median of each policy's rounds not at all
        targets["quiet_within_5pct_of_best"] = (
            info["default_to_best_static"]["ratio_of_medians"] >= TARGET_QUIET_TO_BEST)
    elif DEFAULT in _quiet_median:  # None when a loaded level runs alone (-k)
        targets[f"busy{neighbours}_at_least_{TARGET_TO_QUIET[neighbours]}x"] = (
            per_policy[DEFAULT]["ratio_to_quiet"] >= TARGET_TO_QUIET[neighbours])
        # what the best policy measured here reached against the default's quiet figure: a busy
        # neighbour that holds a whole core bounds any policy near 1 thread's share
        best = max(MEASURED, key=lambda p: per_policy[p]["median_images_per_s"])
        info["best_policy_here"] = {"policy": best, "ratio_to_default_quiet": round(
            per_policy[best]["median_images_per_s"] / _quiet_median[DEFAULT], 3)}
        if "1t" in _quiet_median:  # one core's worth: what a whole-core neighbour leaves us
            info["one_core_bound"] = round(_quiet_median["1t"] / _quiet_median[DEFAULT], 3)
    info["targets"] = targets
    benchmark.extra_info.update(info)
    print("\nload-bench " + json.dumps({k: info[k] for k in info if k != "process"}), flush=True)
    assert all(r[p]["images_per_s"] > 0 for r in rounds for p in MEASURED)
    if STRICT:
        assert all(targets.values()), f"missed: {[k for k, v in targets.items() if not v]}"
