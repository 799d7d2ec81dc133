"""Our training step against the canonical pytorch/examples DCGAN loop, side by side.

paper-elu at 64x64, batch 64, Adam, on the CPU. Each contender runs in a fresh process
(benchmarks/reference_dcgan.py) so each has the allocator state it would have alone; rounds
interleave the contenders so that load from other processes hits all of them alike, and the
ratios of medians over rounds are reported. Targets: the recommended fast CPU mode
(bf16 autocast + channels-last) >= 1.5x the reference, fp32 >= 1.1x.

``extra_info`` holds every contender's images/s per round, the medians and the ratios, the
autocast mode each contender used (``amp``) and the machine fingerprint; the test prints a
table. It asserts only that every contender ran, not the targets: on a shared machine a target
miss is a number to read, not a flaky failure.

bf16 contenders run only on a CPU with native bf16 (avx512_bf16 / AMX): elsewhere oneDNN
emulates bf16 about ten times slower than fp32 (xraygan.precision), which measures the
emulation, not the mode. They are then listed under ``skipped`` with the reason;
``XRAYGAN_BENCH_BF16=1`` runs them anyway.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from xraygan.fingerprint import has_native_bf16

SCRIPT = Path(__file__).with_name("reference_dcgan.py")
ALL_CONTENDERS = ("reference", "ours-fp32", "ours-fp32-cl", "ours-bf16-cl")
# the autocast mode of each contender (reference_dcgan.MODES; the recipe itself is fp32)
AMP = {"reference": "off", "ours-fp32": "off", "ours-fp32-cl": "off", "ours-bf16-cl": "bf16"}
TARGETS = {"ours-fp32": 1.1, "ours-fp32-cl": 1.1, "ours-bf16-cl": 1.5}
ROUNDS = int(os.environ.get("XRAYGAN_BENCH_ROUNDS", "3"))


def skipped_contenders(native_bf16: bool | None = None) -> dict[str, str]:
    """Contenders this machine cannot run fast, with the reason."""
    native_bf16 = has_native_bf16() if native_bf16 is None else native_bf16
    if native_bf16 or os.environ.get("XRAYGAN_BENCH_BF16") == "1":
        return {}
    return {m: "CPU without native bf16 (no avx512_bf16/AMX): bf16 is emulated, 8-16x slower "
               "than fp32; XRAYGAN_BENCH_BF16=1 runs it anyway"
            for m in ALL_CONTENDERS if AMP[m] == "bf16"}


CONTENDERS = tuple(m for m in ALL_CONTENDERS if m not in skipped_contenders())


def run_contender(mode: str, steps: int = 4, warmup: int = 2) -> float:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")}
    out = subprocess.run(
        [sys.executable, str(SCRIPT), mode, "--steps", str(steps), "--warmup", str(warmup)],
        capture_output=True, text=True, env=env, check=True,
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["images_per_s"])


def compare(rounds: int = ROUNDS) -> dict:
    per_round: dict[str, list[float]] = {m: [] for m in CONTENDERS}
    for r in range(rounds):
        order = CONTENDERS if r % 2 == 0 else tuple(reversed(CONTENDERS))
        for mode in order:
            per_round[mode].append(run_contender(mode))
    median = {m: statistics.median(v) for m, v in per_round.items()}
    # Ratio per round (same load), then the median of those: robust to a slow round.
    ratios = {m: statistics.median(o / r for o, r in zip(per_round[m], per_round["reference"],
                                                          strict=True))
              for m in CONTENDERS if m != "reference"}
    return {"images_per_s": per_round, "median_images_per_s": median, "ratio_to_reference": ratios,
            "amp": {m: AMP[m] for m in CONTENDERS}, "skipped": skipped_contenders(),
            "targets": {m: t for m, t in TARGETS.items() if m in CONTENDERS},
            "targets_met": {m: ratios[m] >= t for m, t in TARGETS.items() if m in CONTENDERS}}


def format_result(result: dict) -> str:
    lines = [f"{'contender':14s} {'amp':>4s} {'img/s (median)':>14s} {'x reference':>12s} "
             f"{'target':>7s}"]
    for m in CONTENDERS:
        ratio = result["ratio_to_reference"].get(m)
        lines.append(f"{m:14s} {AMP[m]:>4s} {result['median_images_per_s'][m]:14.1f} "
                     f"{'' if ratio is None else f'{ratio:12.2f}'} "
                     f"{'' if m not in TARGETS else TARGETS[m]:>7}")
    lines += [f"{m:14s} skipped: {why}" for m, why in result.get("skipped", {}).items()]
    return "\n".join(lines)


def test_against_reference_dcgan(benchmark):
    result = benchmark.pedantic(compare, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    print("\n" + format_result(result))
    assert all(len(v) == ROUNDS and min(v) > 0 for v in result["images_per_s"].values())


def test_contender_modes_match_the_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("reference_dcgan", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    names = {None: "off", mod.torch.bfloat16: "bf16", mod.torch.float16: "fp16"}
    assert {m: names[mod.MODES[m][0]] for m in ALL_CONTENDERS if m != "reference"} == {
        m: a for m, a in AMP.items() if m != "reference"}


def test_bf16_contenders_skipped_without_native_bf16(monkeypatch):
    monkeypatch.delenv("XRAYGAN_BENCH_BF16", raising=False)
    skipped = skipped_contenders(native_bf16=False)
    assert set(skipped) == {"ours-bf16-cl"} and "native bf16" in skipped["ours-bf16-cl"]
    assert skipped_contenders(native_bf16=True) == {}


if __name__ == "__main__":
    print(format_result(compare()))
