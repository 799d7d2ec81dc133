"""One throughput probe of the quick-scale training step, run in its own process.

``python benchmarks/load_probe.py POLICY SECONDS`` prints one JSON line: images/s of the
quick-scale step (paper-elu 32x32, width 32, batch 64, AdaS) over SECONDS of steady state under
the thread policy POLICY (see POLICIES). Its own process because libgomp reads
OMP_WAIT_POLICY / GOMP_SPINCOUNT once, when torch loads it: policies that differ in them cannot
share an interpreter. test_bench_load.py runs it quiet and next to busy neighbours.
"""

from __future__ import annotations

import json
import os
import sys
import time

# name -> (environment for libgomp, intra-op threads or None for the process policy's choice,
#          adaptive). "cores" means the cores available to the process.
POLICIES: dict[str, tuple[dict[str, str], str | int | None, bool]] = {
    # libgomp's own default spin (xraygan now sets a shorter one unless the user chose: pin it)
    "2t-default": ({"GOMP_SPINCOUNT": "300000"}, "cores", False),
    "2t-active": ({"OMP_WAIT_POLICY": "ACTIVE"}, "cores", False),
    "2t-passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, "cores", False),
    "1t": ({"GOMP_SPINCOUNT": "300000"}, 1, False),
    # xraygan's default: apply_process_policy(role="train"): the thread count chosen once at
    # start from the cores neighbours leave free, and a short spin (GOMP_SPINCOUNT 10,000;
    # libgomp's default is 300,000 iterations before a thread sleeps)
    "start": ({}, None, False),
    # the opt-in governor (XRAYGAN_ADAPTIVE_THREADS=1: not reproducible by seed)
    "adaptive": ({"XRAYGAN_ADAPTIVE_THREADS": "1"}, None, True),
    "adaptive-spin300k": ({"GOMP_SPINCOUNT": "300000", "XRAYGAN_ADAPTIVE_THREADS": "1"}, None,
                          True),  # the governor alone
    "2t-spin10k": ({"GOMP_SPINCOUNT": "10000"}, "cores", False),
}


def main(policy: str, seconds: float, warmup_s: float = 2.0) -> dict:
    env, threads, adaptive = POLICIES[policy]
    for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "XRAYGAN_ADAPTIVE_THREADS"):
        os.environ.pop(k, None)
    os.environ.update(env)
    from xraygan import process

    if threads is None:
        applied = process.apply_process_policy(role="train", model_size_hint=None)
    else:
        applied = process.apply_process_policy(
            role="train", threads=process.cores_available() if threads == "cores" else threads,
            adaptive=False)
    import torch

    from xraygan.config import OptimConfig
    from xraygan.memory.measure import make_batch
    from xraygan.presets import get_preset
    from xraygan.train import build_trainer

    model = get_preset("paper-elu", 32, g_features=32, d_features=32)
    trainer = build_trainer(model, OptimConfig(name="adas"), device=torch.device("cpu"))
    real, z = make_batch(model, 64, torch.device("cpu"))
    tick = process.governor_tick if adaptive else (lambda: None)

    end = time.perf_counter() + warmup_s
    while time.perf_counter() < end:
        trainer.step(real, z).tolist()
        tick()
    steps, t0 = 0, time.perf_counter()
    threads_seen: dict[int, int] = {}
    while True:
        trainer.step(real, z).tolist()
        tick()
        steps += 1
        n = torch.get_num_threads()
        threads_seen[n] = threads_seen.get(n, 0) + 1
        if time.perf_counter() - t0 >= seconds and steps >= 3:
            break
    elapsed = time.perf_counter() - t0
    return {"policy": policy, "images_per_s": steps * 64 / elapsed, "steps": steps,
            "seconds": elapsed, "threads_seen": threads_seen, "applied": applied}


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    print(json.dumps(main(sys.argv[1], float(sys.argv[2]))), flush=True)
