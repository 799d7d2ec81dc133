"""``xraygan memory``: the paper's memory analysis (Fig. 7, 8) with measured peaks beside it."""

from __future__ import annotations

import argparse
import dataclasses

from ..config import OptimConfig, read_config_file
from ..errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..config import ModelConfig, TrainConfig
    from ..optim import OPTIMIZERS
    from ..presets import PRESETS
    from .argtypes import add_device_argument, config_file, field_type, output_file, registry_type

    p = sub.add_parser(
        "memory",
        help="parameters, torchinfo and own memory estimates, measured peak of a training step",
        description="For each image size x feature-map width (x batch-norm placement): "
        "parameters, torchinfo's per-image forward/backward size x batch (the paper's method), "
        "the project's estimate (adds gradients, optimizer state, saved activations, workspace) "
        "and the measured peak of one real training step, with estimate/measured ratios, the "
        "batch-norm saving in %% and a growth-law fit against width.",
    )
    p.add_argument("--preset", default="paper-elu", type=registry_type(PRESETS, "preset"), metavar="NAME",
                   help=f"model preset: {', '.join(PRESETS.names())}")
    p.add_argument("--config", type=config_file, metavar="FILE",
                   help="an experiment config (.json, .toml, .yaml; its model and "
                   "optimizer are the base; --preset is ignored; default: none)")
    p.add_argument("--image-size", "--image-sizes", dest="image_sizes", nargs="+", default=[64],
                   type=field_type(ModelConfig, "image_size"), metavar="N",
                   help="one or more image sides")
    p.add_argument("--features", type=field_type(ModelConfig, "g_features"), nargs="+", metavar="N",
                   help="feature-map widths of G and D (default: the preset's)")
    p.add_argument("--batchnorm", choices=("none", "d", "g", "both"),
                   help="batch-norm placement (default: the preset's)")
    p.add_argument("--batchnorm-compare", action="store_true",
                   help="every placement (both, g, d, none) and the saving of each vs both")
    p.add_argument("--batch-size", type=field_type(TrainConfig, "batch_size"), default=64,
                   metavar="N", help="images per training step (default: 64)")
    p.add_argument("--optimizer", type=registry_type(OPTIMIZERS, "optimizer"), metavar="NAME",
                   help=f"{' | '.join(OPTIMIZERS.names())} (default: the config's, adas)")
    p.add_argument("--momentum", type=field_type(OptimConfig, "momentum"), metavar="X",
                   help="SGD momentum (adds a state buffer; default: 0)")
    add_device_argument(p)
    p.add_argument("--amp", choices=("off", "bf16", "fp16", "auto"), default="off",
                   help="mixed precision of the measured step (default: off)")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    p.add_argument("--measure", action=argparse.BooleanOptionalAction, default=True,
                   help="measure the peak of a real training step (default: on)")
    p.add_argument("--csv", type=output_file, metavar="FILE", help="write the rows as CSV")
    p.add_argument("--json", type=output_file, metavar="FILE",
                   help="write rows, BN savings and growth fits as JSON")
    p.add_argument("--update-baselines", action="store_true",
                   help="rewrite benchmarks/baselines/memory.json (the CI regression check) "
                   "from the current code: the machine-independent figures and this machine "
                   "class's measured peaks (other classes' entries are kept), and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..memory import format_table, memory_table, write_csv, write_json
    from ..memory.report import bn_savings, growth_fits
    from ..precision import resolve_amp
    from ..presets import get_preset
    from ..train import resolve_device

    if args.update_baselines:
        from ..fingerprint import describe, machine_class
        from ..memory.baselines import write_baselines

        print(f"wrote {write_baselines()} (measured peaks for {machine_class()}: {describe()})")
        return 0
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size: expected a positive integer, got {args.batch_size}")
    for size in args.image_sizes:
        if size < 16 or size & (size - 1):
            raise ConfigError(f"--image-sizes: expected powers of two >= 16, got {size}")
    if args.config is not None:
        exp = read_config_file(args.config)
        base, optim, name = exp.model, exp.optim, exp.name
    else:
        base, optim, name = get_preset(args.preset, args.image_sizes[0]), OptimConfig(), args.preset
    if args.optimizer:
        optim = dataclasses.replace(optim, name=args.optimizer, beta1=None, beta2=None)
    if args.momentum is not None:
        optim = dataclasses.replace(optim, momentum=args.momentum)
    device = resolve_device(args.device)
    amp_dtype = resolve_amp(args.amp, device)
    for w in args.features or []:
        if w < 1:
            raise ConfigError(f"--features: expected positive widths, got {w}")
    if args.batchnorm_compare:
        placements = ["both", "g", "d", "none"]
    else:
        placements = [args.batchnorm or base.batchnorm]
    from ..guard import check_step

    for size in args.image_sizes:  # before any model is built: the largest case must fit
        for w in args.features or [base.g_features]:
            for bn in placements:
                m = dataclasses.replace(base, image_size=size, g_features=w, d_features=w,
                                        batchnorm=bn)
                check_step(m, optim, args.batch_size, device=str(device),
                           what=f"the memory table's step at {size}px width {w} bn={bn}",
                           flags={"model": "--features or --image-sizes",
                                  "activations": "--batch-size (or --features, --image-sizes)"})

    if args.measure:
        print("measured peak: " + ("torch.cuda.max_memory_allocated" if device.type == "cuda" else
              "torch.profiler allocation events of the c10 CPU allocator (peak live bytes, "
              "not RSS)") + f"; one training step after warm-up, batch {args.batch_size}")
    rows = memory_table(
        base, optim, image_sizes=args.image_sizes, features=args.features or [base.g_features],
        batchnorms=placements, batch_size=args.batch_size, preset=name, device=device,
        measure=args.measure, amp_dtype=amp_dtype, channels_last=args.channels_last,
        progress=lambda r: print(f"  done: {r.image_size}px width {r.features} bn={r.batchnorm}",
                                 flush=True),
    )
    print(format_table(rows))
    savings = bn_savings(rows)
    if savings:
        print("\nbatch-norm saving vs BN in G and D (%; both -> d is the paper's Fig. 8):")
        for s in savings:
            figs = ", ".join(f"{k.removeprefix('saving_pct_')} {v:.2f}" for k, v in s.items()
                             if k.startswith("saving_pct_") and v is not None)
            print(f"  {s['image_size']}px width {s['features']}: remove {s['removed']:7s} {figs}")
    for g in growth_fits(rows):
        print(f"\ngrowth of {g['figure']} ({g['image_size']}px, bn={g['batchnorm']}): "
              f"m = a w^k + c with k = {g['power_exponent']:.3f} (R^2 {g['power_r2']:.5f}); "
              f"log-log slope {g['loglog_slope']:.3f} (R^2 {g['loglog_r2']:.5f}); "
              f"exponential a e^(b w) + c: R^2 {g['exp_r2']:.5f}", end="")
        if g["doubling_ratios"]:
            print("; m(2w)/m(w): " + ", ".join(f"{k} {v:.2f}" for k, v in g["doubling_ratios"].items()),
                  end="")
        if "power_extrapolation_err" in g:
            print(f"; error at the largest width fitted without it: power "
                  f"{100 * g['power_extrapolation_err']:+.1f}%, exponential "
                  f"{100 * g['exp_extrapolation_err']:+.1f}%", end="")
        print()
    if args.csv:
        print(f"wrote {write_csv(args.csv, rows)}")
    if args.json:
        print(f"wrote {write_json(args.json, rows)}")
    return 0
