"""The GPU check: what a short GPU window must establish, in one command (``nox -s gpu_check``).

    python benchmarks/gpu_check.py [--device cuda] [--out gpu-check] [sizes...]

Writes ``OUT/gpu_check.json`` and ``OUT/gpu_check.md`` (updated after every part, so a window
that closes early keeps what finished) and the shortened Table I's study and report under OUT:

1. ``amp``: training steps at 64x64 with AdaS and Adam in fp32, bf16 autocast and fp16
   autocast with a GradScaler: losses finite, the scaler's scale, ms per step, and the peak
   memory (``torch.cuda.max_memory_allocated`` on CUDA, the profiler's peak on a CPU) beside the
   project's estimate (xraygan.memory.estimate).
2. ``inception``: pool3 features of the same phantoms on the device and on the CPU: the
   largest absolute difference, and FID between two phantom sets from each side's features.
3. ``throughput``: images/s of the pytorch/examples DCGAN loop (benchmarks/reference_dcgan.py)
   and of our GANStep under the same autocast at 64x64 (fp16 + GradScaler on CUDA; bf16 on a
   CPU), interleaved rounds, medians.
4. ``table1``: Table I at the paper's scale (64x64, width 64, batch 128), 2 seeds, a few
   thousand iterations, FID on a reduced sample, then its report.

Budget: at most 8 minutes on one H100 or H200 at the defaults. ``--device cpu`` with tiny sizes
is the dry run the default tests make (tests/core/test_gpu_check.py).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # reference_dcgan beside this file

AMP_MODES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
OPTIMIZERS = ("adas", "adam")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {"device": str(device), "torch": torch.__version__,
                            "python": platform.python_version(), "machine": platform.machine()}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info.update(name=p.name, memory_bytes=p.total_memory, capability=f"{p.major}.{p.minor}",
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    else:
        from xraygan.fingerprint import fingerprint

        info["name"] = fingerprint(device).get("cpu_model", platform.processor())
    return info


# --------------------------------------------------------------------------- 1. AMP steps
def amp_steps(device: torch.device, size: int, features: int, batch: int, steps: int) -> list[dict]:
    from xraygan.config import OptimConfig
    from xraygan.memory.estimate import estimate_step
    from xraygan.memory.measure import build_step, make_batch, measure_step_peak
    from xraygan.presets import get_preset

    cfg = get_preset("paper-elu", size, g_features=features, d_features=features)
    rows = []
    for opt in OPTIMIZERS:
        for mode, dtype in AMP_MODES.items():
            row: dict[str, Any] = {"optimizer": opt, "amp": mode}
            try:
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats(device)
                step = build_step(cfg, OptimConfig(name=opt), device=device, amp_dtype=dtype)
                real, z = make_batch(cfg, batch, device)
                losses = []
                step(real, z)  # warm-up: cuDNN / oneDNN choose their kernels
                _sync(device)
                t = time.perf_counter()
                for _ in range(steps):
                    losses.append([float(v) for v in step(real, z)[:2]])
                _sync(device)
                row["ms_per_step"] = 1e3 * (time.perf_counter() - t) / steps
                row["losses_finite"] = all(math.isfinite(v) for pair in losses for v in pair)
                row["last_loss_d"], row["last_loss_g"] = losses[-1]
                if step.scaler.is_enabled():
                    row["grad_scale"] = float(step.scaler.get_scale())
                est = estimate_step(step.G, step.D, cfg, OptimConfig(name=opt), batch,
                                    amp_dtype=dtype)
                row["estimate_bytes"] = int(est.total)
                if device.type == "cuda":
                    row["peak_bytes"] = int(torch.cuda.max_memory_allocated(device))
                    row["peak_method"] = "torch.cuda.max_memory_allocated"
                else:
                    peak = measure_step_peak(step, real, z)
                    row["peak_bytes"], row["peak_method"] = int(peak.peak_bytes), peak.method
                row["peak_over_estimate"] = row["peak_bytes"] / max(1, row["estimate_bytes"])
                row["ok"] = row["losses_finite"]
            except Exception as e:  # one mode failing is a finding, not the end of the check
                row.update(ok=False, error=f"{type(e).__name__}: {e}")
            rows.append(row)
    return rows


# --------------------------------------------------------------------------- 2. Inception
def inception_agreement(device: torch.device, n: int, size: int) -> dict[str, Any]:
    from xraygan.data.imageops import to_uint8
    from xraygan.data.phantom import generate_phantoms
    from xraygan.metrics.features import FeatureStats, InceptionFeatures
    from xraygan.metrics.frechet import frechet_distance

    sets = [torch.from_numpy(to_uint8(generate_phantoms(n, size, seed=s)))[:, None] for s in (1, 2)]
    feats: dict[str, list] = {}
    took: dict[str, float] = {}
    for dev in (str(device), "cpu"):
        ex = InceptionFeatures(dev)
        t = time.perf_counter()
        feats[dev] = [ex(x) for x in sets]
        took[dev] = time.perf_counter() - t

    def fid(pair: list) -> float:
        a, b = FeatureStats(), FeatureStats()
        a.update(pair[0])
        b.update(pair[1])
        return frechet_distance(a.mean, a.cov, b.mean, b.cov)

    dev = feats[str(device)]
    cpu = feats["cpu"]
    diff = max(float(abs(d - c).max()) for d, c in zip(dev, cpu, strict=True))
    scale = max(float(abs(c).mean()) for c in cpu)
    fid_dev, fid_cpu = fid(dev), fid(cpu)
    return {"images": 2 * n, "image_size": size, "max_abs_diff": diff, "mean_abs_feature": scale,
            "fid_device": fid_dev, "fid_cpu": fid_cpu, "fid_abs_diff": abs(fid_dev - fid_cpu),
            "images_per_s_device": 2 * n / took[str(device)],
            "images_per_s_cpu": 2 * n / took["cpu"]}


# --------------------------------------------------------------------------- 3. throughput
def throughput(device: torch.device, batch: int, steps: int, rounds: int) -> dict[str, Any]:
    import reference_dcgan as ref

    from xraygan.config import OptimConfig
    from xraygan.memory.measure import build_step, make_batch

    amp = torch.float16 if device.type == "cuda" else torch.bfloat16
    cfg, _, _ = ref._models()
    ours_step = build_step(cfg, OptimConfig(name="adam"), device=device, amp_dtype=amp)
    real, _ = make_batch(cfg, batch, device)

    def ours() -> float:
        return float(ours_step(real, torch.randn(batch, cfg.latent_dim, device=device))[0])

    fns: dict[str, Callable[[], float]] = {
        "reference": ref.reference_step_fn(str(device), amp, batch=batch), "ours": ours}
    for fn in fns.values():
        fn()  # warm-up
    rates: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):  # interleaved: a drift of the clock or the load hits both
        for name, fn in fns.items():
            _sync(device)
            t = time.perf_counter()
            for _ in range(steps):
                fn()
            _sync(device)
            rates[name].append(batch * steps / (time.perf_counter() - t))
    med = {k: statistics.median(v) for k, v in rates.items()}
    return {"amp": str(amp).removeprefix("torch."), "image_size": ref.IMAGE_SIZE, "batch": batch,
            "steps_per_round": steps, "rounds": rounds,
            "reference_images_per_s": med["reference"], "ours_images_per_s": med["ours"],
            "ours_over_reference": med["ours"] / med["reference"]}


# --------------------------------------------------------------------------- 4. Table I
def table1(device: str, out: Path, sweep_flags: list[str]) -> dict[str, Any]:
    from xraygan.cli import main

    studies = out / "studies"
    summary = out / "table1.json"
    t = time.perf_counter()
    rc = main(["sweep", "table1", "--full", "--device", device, "--out", str(studies),
               "--study-name", "table1-gpu-check", "--json", str(summary), "--no-progress",
               *sweep_flags])
    sweep_s = time.perf_counter() - t
    res: dict[str, Any] = {"sweep_exit": rc, "sweep_s": sweep_s, "flags": sweep_flags}
    if summary.is_file():
        res["trials"] = json.loads(summary.read_text())["trials"]
    rc = main(["report", "table1-gpu-check", "--storage",
               f"sqlite:///{studies / 'table1-gpu-check.db'}", "--out", str(out / "report")])
    res["report_exit"] = rc
    res["report"] = str(out / "report" / "table1-gpu-check.md")
    return res


# --------------------------------------------------------------------------- summary
def markdown(result: dict[str, Any]) -> str:
    info = result["device"]
    lines = [f"# GPU check: {info.get('name', info['device'])}", "",
             f"device {info['device']}, torch {info['torch']}"
             + (f", CUDA {info['cuda']}" if info.get("cuda") else "")
             + f"; {result.get('total_s', 0):.0f} s in all; settings `{json.dumps(result['args'])}`", ""]
    if "amp" in result:
        lines += ["## AMP steps", "", "| optimizer | amp | ok | ms/step | grad scale | peak MB | "
                  "estimate MB | peak/estimate |", "|---|---|---|---:|---:|---:|---:|---:|"]
        for r in result["amp"]:
            if "error" in r:
                lines.append(f"| {r['optimizer']} | {r['amp']} | error: {r['error'][:80]} |||||||")
                continue
            lines.append(f"| {r['optimizer']} | {r['amp']} | {r['ok']} | {r['ms_per_step']:.2f} "
                         f"| {r.get('grad_scale', '')} | {r['peak_bytes'] / 2**20:.1f} | "
                         f"{r['estimate_bytes'] / 2**20:.1f} | {r['peak_over_estimate']:.2f} |")
        lines.append("")
    if "inception" in result:
        r = result["inception"]
        lines += ["## Inception features: device against CPU", "",
                  f"{r['images']} phantoms at {r['image_size']} px: max abs feature difference "
                  f"{r['max_abs_diff']:.3g} (mean |feature| {r['mean_abs_feature']:.3g}); FID "
                  f"{r['fid_device']:.4f} (device) vs {r['fid_cpu']:.4f} (CPU), difference "
                  f"{r['fid_abs_diff']:.3g}; {r['images_per_s_device']:.0f} vs "
                  f"{r['images_per_s_cpu']:.0f} images/s.", ""]
    if "throughput" in result:
        r = result["throughput"]
        lines += ["## Throughput against the reference DCGAN loop", "",
                  f"{r['amp']} autocast, {r['image_size']}x{r['image_size']}, batch {r['batch']}: "
                  f"reference {r['reference_images_per_s']:.0f} images/s, ours "
                  f"{r['ours_images_per_s']:.0f} images/s ({r['ours_over_reference']:.2f}x; "
                  f"medians of {r['rounds']} interleaved rounds).", ""]
    if "table1" in result:
        r = result["table1"]
        lines += ["## Table I, shortened full scale", "",
                  f"sweep exit {r['sweep_exit']} in {r['sweep_s']:.0f} s, report exit "
                  f"{r['report_exit']}: {r['report']}", "", "| trial | cell | state | value |",
                  "|---:|---|---|---:|"]
        for t in r.get("trials", []):
            v = "" if t["value"] is None else f"{t['value']:.4g}"
            lines.append(f"| {t['trial']} | {t['cell']} | {t['state']} | {v} |")
        lines.append("")
    for part, err in result.get("errors", {}).items():
        lines += [f"## {part}: error", "", "```", err.strip()[-2000:], "```", ""]
    return "\n".join(lines)


def write(out: Path, result: dict[str, Any]) -> None:
    from xraygan.runs import atomic_write_json, atomic_write_text

    atomic_write_json(out / "gpu_check.json", result)
    atomic_write_text(out / "gpu_check.md", markdown(result))


PARTS = ("amp", "inception", "throughput", "table1")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python benchmarks/gpu_check.py",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda | cuda:N | cpu (the dry run)")
    p.add_argument("--out", type=Path, default=Path("gpu-check"), help="output folder")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--image-size", type=int, default=64, help="AMP steps' image side")
    p.add_argument("--features", type=int, default=64, help="AMP steps' base width")
    p.add_argument("--batch", type=int, default=128, help="AMP steps' batch")
    p.add_argument("--steps", type=int, default=20, help="timed AMP steps per mode")
    p.add_argument("--inception-images", type=int, default=256, help="per set (2 sets)")
    p.add_argument("--throughput-batch", type=int, default=64)
    p.add_argument("--throughput-steps", type=int, default=50, help="steps per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seeds", type=int, default=2, help="Table I seeds")
    p.add_argument("--table1-steps", type=int, default=2000, help="Table I iterations")
    p.add_argument("--fid-samples", type=int, default=2048, help="Table I FID sample")
    p.add_argument("--num-images", type=int, default=4096, help="Table I training phantoms")
    p.add_argument("--sweep-args", nargs=argparse.REMAINDER, default=[],
                   help="further flags for the Table I sweep (the dry run: --image-size 16 ...)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from xraygan.errors import XrayganError
    from xraygan.process import apply_process_policy
    from xraygan.train import resolve_device

    apply_process_policy(role="cli")
    try:
        device = resolve_device(args.device)
    except XrayganError as e:
        print(f"gpu_check: error: {e}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"device": device_info(device), "errors": {},
                              "args": {k: (str(v) if isinstance(v, Path) else v)
                                       for k, v in vars(args).items()}}
    t0 = time.perf_counter()
    jobs: dict[str, Callable[[], Any]] = {
        "amp": lambda: amp_steps(device, args.image_size, args.features, args.batch, args.steps),
        "inception": lambda: inception_agreement(device, args.inception_images, 64),
        "throughput": lambda: throughput(device, args.throughput_batch, args.throughput_steps,
                                         args.rounds),
        "table1": lambda: table1(str(device), args.out, [
            "--seeds", str(args.seeds), "--steps", str(args.table1_steps),
            "--fid-samples", str(args.fid_samples), "--num-images", str(args.num_images),
            *args.sweep_args]),
    }
    for part in args.parts:
        t = time.perf_counter()
        print(f"gpu_check: {part} ...", flush=True)
        try:
            result[part] = jobs[part]()
        except Exception:
            result["errors"][part] = traceback.format_exc()
        result.setdefault("seconds", {})[part] = round(time.perf_counter() - t, 2)
        result["total_s"] = round(time.perf_counter() - t0, 2)
        write(args.out, result)
    ok = not result["errors"] and all(r.get("ok") for r in result.get("amp", []))
    if "table1" in result:
        ok = ok and result["table1"]["sweep_exit"] == 0 and result["table1"]["report_exit"] == 0
    print(f"gpu_check: {'ok' if ok else 'FAILED'} in {result['total_s']:.0f} s: "
          f"{args.out / 'gpu_check.md'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
