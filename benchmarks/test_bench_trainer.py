"""The trainer against the pytorch/examples DCGAN loop, in one process, per core.

Two workloads: the quick scale's (paper-elu 32x32, width 32, batch 32) and the paper's size
(64x64, width 64, batch 64). Contenders, each built once and timed in interleaved rounds of
ROUND_S seconds at one intra-op thread (per-core figures, like a sweep worker's):

- ``reference``: benchmarks/reference_dcgan.py's recipe loop (torch's layers, BCELoss on a
  sigmoid, torch's Adam, D's weight gradients computed in the G step);
- ``trainer-adam``: our GANStep (xraygan.train.build_trainer) with Adam, the like-for-like
  comparison; ``trainer-adas``: with AdaS, what the Table I cells run; both channels-last, as
  sweeps train (ablations/scale.py).

Reported per workload: median images/s over rounds, the ratio to the reference (median of the
per-round ratios: both saw the same load), the step's FLOPs per image (FlopCounterMode) and the
share of this process's one-thread sgemm rate the trainer reaches; then the FID Inception
network's images/s (one thread, batch 8). ``extra_info`` holds it all with the machine
fingerprint (conftest.py); the test prints a table and writes it to benchmarks/out/trainer.md.
Target (issue 26): trainer-adam >= 1.3x the reference at the quick workload; reported, not
asserted (a shared machine makes a miss a number to read, not a failure).

``XRAYGAN_BENCH_ROUNDS`` (default 5) and ``XRAYGAN_BENCH_ROUND_S`` (default 3) size it.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import torch
from reference_dcgan import reference_step_fn

from xraygan.config import OptimConfig
from xraygan.costmodel import sgemm_flops_per_s, step_flops
from xraygan.memory.measure import make_batch
from xraygan.presets import get_preset
from xraygan.train import build_trainer

ROUNDS = int(os.environ.get("XRAYGAN_BENCH_ROUNDS", "5"))
ROUND_S = float(os.environ.get("XRAYGAN_BENCH_ROUND_S", "3"))
WORKLOADS = {"quick": (32, 32, 32), "64px": (64, 64, 64)}  # image size, width, batch
TARGET = {"quick": 1.3}
OUT = Path(__file__).with_name("out") / "trainer.md"


def trainer_step_fn(image_size: int, features: int, batch: int, optimizer: str):
    model = get_preset("paper-elu", image_size, g_features=features, d_features=features)
    trainer = build_trainer(model, OptimConfig(name=optimizer), device=torch.device("cpu"),
                            channels_last=True)
    real, _ = make_batch(model, batch, torch.device("cpu"))

    def step() -> float:  # as run_loop: fresh noise, one sync for the logged values
        z = torch.randn(batch, model.latent_dim)
        return trainer.step(real, z).tolist()[0]

    return step


def images_per_s(fn, batch: int, seconds: float) -> float:
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 2:
        fn()
        n += 1
    return n * batch / (time.perf_counter() - t0)


def compare_workload(image_size: int, features: int, batch: int, rounds: int = ROUNDS,
                     round_s: float = ROUND_S) -> dict:
    fns = {"reference": reference_step_fn(batch=batch, image_size=image_size, features=features),
           "trainer-adam": trainer_step_fn(image_size, features, batch, "adam"),
           "trainer-adas": trainer_step_fn(image_size, features, batch, "adas")}
    per_round: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(rounds):
        order = list(fns) if r % 2 == 0 else list(reversed(fns))
        for k in order:
            per_round[k].append(images_per_s(fns[k], batch, round_s))
    ratio = {k: statistics.median(a / b for a, b in zip(v, per_round["reference"], strict=True))
             for k, v in per_round.items() if k != "reference"}
    model = get_preset("paper-elu", image_size, g_features=features, d_features=features)
    flops = step_flops(model, OptimConfig(name="adam"), 1)  # linear in the batch
    return {"image_size": image_size, "features": features, "batch": batch,
            "images_per_s": {k: [round(x, 1) for x in v] for k, v in per_round.items()},
            "median_images_per_s": {k: round(statistics.median(v), 1)
                                    for k, v in per_round.items()},
            "ratio_to_reference": {k: round(v, 3) for k, v in ratio.items()},
            "mflop_per_image": round(flops / 1e6, 1)}


def inception_images_per_s(seconds: float = 8.0, batch: int = 8) -> float:
    from xraygan.metrics.features import InceptionFeatures

    extract = InceptionFeatures("cpu", allow_download=False)
    images = torch.randint(0, 256, (batch, 1, 32, 32), dtype=torch.uint8)
    return images_per_s(lambda: extract(images), batch, seconds)


def run_all() -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sgemm = sgemm_flops_per_s()
        result = {"threads": 1, "sgemm_gflop_per_s": round(sgemm / 1e9, 1), "workloads": {}}
        for name, (size, width, batch) in WORKLOADS.items():
            w = compare_workload(size, width, batch)
            for k in ("trainer-adam", "trainer-adas"):
                w.setdefault("sgemm_share", {})[k] = round(
                    w["median_images_per_s"][k] * w["mflop_per_image"] * 1e6 / sgemm, 3)
            result["workloads"][name] = w
        sgemm_after = sgemm_flops_per_s()  # the load may have changed: say how much
        result["sgemm_gflop_per_s_after"] = round(sgemm_after / 1e9, 1)
        # the share against the faster of the two sgemm figures (the less disturbed one)
        best = max(sgemm, sgemm_after)
        for w in result["workloads"].values():
            for k in w["sgemm_share"]:
                w["sgemm_share"][k] = round(w["median_images_per_s"][k] * w["mflop_per_image"]
                                            * 1e6 / best, 3)
        try:
            result["inception_images_per_s"] = round(inception_images_per_s(), 2)
        except Exception as e:  # weights not installed: the rest still stands
            result["inception_images_per_s"] = None
            result["inception_note"] = f"{type(e).__name__}: {e}"
        result["targets_met"] = {
            name: result["workloads"][name]["ratio_to_reference"]["trainer-adam"] >= t
            for name, t in TARGET.items()}
        return result
    finally:
        torch.set_num_threads(threads)


def markdown(result: dict, machine: str = "") -> str:
    lines = [f"Machine: {machine or 'this one'}; one thread; sgemm "
             f"{result['sgemm_gflop_per_s']} GFLOP/s (after: {result['sgemm_gflop_per_s_after']})",
             "",
             "| workload | contender | images/s (median) | x reference | MFLOP/image | % of sgemm |",
             "|---|---|---|---|---|---|"]
    for name, w in result["workloads"].items():
        label = f"{name} ({w['image_size']} px, width {w['features']}, batch {w['batch']})"
        for k, ips in w["median_images_per_s"].items():
            ratio = w["ratio_to_reference"].get(k)
            share = w.get("sgemm_share", {}).get(k)
            lines.append(f"| {label} | {k} | {ips} | {'1' if ratio is None else ratio} | "
                         f"{w['mflop_per_image']} | {'' if share is None else f'{100 * share:.0f}'} |")
    inc = result["inception_images_per_s"]
    lines += ["", f"Inception (FID features, 299 px, batch 8, one thread): "
                  f"{inc if inc is not None else result.get('inception_note')} images/s"]
    return "\n".join(lines) + "\n"


def test_trainer_against_reference_loop(benchmark):
    from xraygan.fingerprint import fingerprint

    result = benchmark.pedantic(run_all, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    fp = fingerprint("cpu")
    machine = (f"{fp['cpu_model']}, {fp['cpu_capability']}, {fp['cores_available']} cores, "
               f"torch {fp['torch']}, class {fp['machine_class']}")
    table = markdown(result, machine)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(table)
    print("\n" + table)
    for w in result["workloads"].values():
        assert min(min(v) for v in w["images_per_s"].values()) > 0
        assert w["mflop_per_image"] > 0


def test_markdown_names_every_contender_and_the_share():
    w = {"image_size": 32, "features": 32, "batch": 32, "mflop_per_image": 95.5,
         "median_images_per_s": {"reference": 300.0, "trainer-adam": 450.0},
         "ratio_to_reference": {"trainer-adam": 1.5}, "sgemm_share": {"trainer-adam": 0.67}}
    text = markdown({"sgemm_gflop_per_s": 64.0, "sgemm_gflop_per_s_after": 63.0,
                     "workloads": {"quick": w}, "inception_images_per_s": 9.1}, "AMD EPYC")
    assert "| quick (32 px, width 32, batch 32) | trainer-adam | 450.0 | 1.5 | 95.5 | 67 |" in text
    assert "Machine: AMD EPYC" in text and "9.1 images/s" in text
