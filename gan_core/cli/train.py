"""``xraygan train``: build an ExperimentConfig from a preset and flags, train it."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ..config import ExperimentConfig, OptimConfig, from_dict, read_config_file, validate
from ..errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a GAN into a run folder",
        description="Train a DCGAN-family GAN. Flags override the preset (or --config); the "
        "resolved config is written to RUN/config.json before step 0.",
    )
    add_config_arguments(p)
    r = p.add_argument_group("run")
    r.add_argument("--out", default="runs", help="folder of run folders (default: runs)")
    r.add_argument("--name", help="run name (default: preset-optimizer)")
    r.add_argument("--resume", metavar="RUN", help="continue RUN from its last checkpoint; "
                   "--steps/--epochs may raise the length, nothing else may change")
    r.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    r.add_argument("--fid", action="store_true", help="also compute FID at the end (needs weights)")
    r.add_argument("--no-eval", action="store_true", help="skip the end-of-run metrics")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 2,2,2,2, got {text!r}") from None


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    """Flags shared by every command that builds an experiment (train, memory, sweep)."""
    from ..presets import PRESETS

    m = p.add_argument_group("model")
    m.add_argument("--preset", default=None, help=f"model preset: {', '.join(PRESETS.names())} "
                   "(default: paper-elu)")
    m.add_argument("--config", type=Path, help="an experiment config JSON (e.g. RUN/config.json)")
    m.add_argument("--image-size", type=int, help="image side, a power of two >= 16 (default 64)")
    m.add_argument("--channels", type=int)
    m.add_argument("--latent-dim", type=int)
    m.add_argument("--features", type=int, help="base feature-map width of G and D")
    m.add_argument("--g-features", type=int)
    m.add_argument("--d-features", type=int)
    m.add_argument("--g-activation", help="elu, relu, leaky_relu, ...")
    m.add_argument("--d-activation")
    m.add_argument("--leaky-slope", type=float)
    m.add_argument("--batchnorm", choices=("none", "d", "g", "both"),
                   help="none | d (D hidden layers: the paper) | g | both (DCGAN)")
    m.add_argument("--g-strides", type=_ints, help="e.g. 4,4 (compression study)")
    m.add_argument("--d-strides", type=_ints)
    m.add_argument("--g-kernels", type=_ints, help="default: solved from eq. 5")
    m.add_argument("--d-kernels", type=_ints)
    m.add_argument("--padding", type=int)
    m.add_argument("--g-fc", type=int, dest="g_fc_layers", help="fully connected layers at G's output")
    m.add_argument("--d-fc", type=int, dest="d_fc_layers", help="fully connected layers at D's input")

    o = p.add_argument_group("optimizer")
    o.add_argument("--optimizer", help="adas | adam | sgd (default adas)")
    o.add_argument("--lr", type=float, help="learning rate of G and D")
    o.add_argument("--lr-g", type=float)
    o.add_argument("--lr-d", type=float)
    o.add_argument("--ttur", action="store_true", default=None,
                   help="two time-scale update rule: G at 0.5x, D at 2x the optimizer's default lr")
    o.add_argument("--beta1", type=float)
    o.add_argument("--beta2", type=float)
    o.add_argument("--momentum", type=float)

    d = p.add_argument_group("data")
    d.add_argument("--data", dest="source",
                   help="phantom | folder:PATH | dicom:PATH | cache:PATH (default phantom)")
    d.add_argument("--num-images", type=int, help="images to use (phantoms to generate)")
    d.add_argument("--data-seed", type=int)

    t = p.add_argument_group("training")
    t.add_argument("--steps", type=int, help="iterations (one D and one G update each)")
    t.add_argument("--epochs", type=float, help="passes over the dataset (when --steps is not given)")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    t.add_argument("--loss", choices=("nonsaturating", "saturating"))
    t.add_argument("--log-every", type=int)
    t.add_argument("--sample-every", type=int)
    t.add_argument("--checkpoint-every", type=int)
    t.add_argument("--num-samples", type=int)
    t.add_argument("--amp", choices=("off", "bf16", "fp16", "auto"), help="autocast precision")
    t.add_argument("--channels-last", action="store_true", default=None)
    t.add_argument("--compile", action="store_true", default=None)


_MODEL = ("image_size", "channels", "latent_dim", "g_features", "d_features", "g_activation",
          "d_activation", "leaky_slope", "batchnorm", "g_strides", "d_strides", "g_kernels",
          "d_kernels", "padding", "g_fc_layers", "d_fc_layers")
_OPTIM = ("lr_g", "lr_d", "ttur", "beta1", "beta2", "momentum")
_DATA = ("source", "num_images")
_TRAIN = ("steps", "epochs", "batch_size", "seed", "device", "loss", "log_every", "sample_every",
          "checkpoint_every", "num_samples", "amp", "channels_last", "compile")


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    """Preset (or --config file) first, then every flag that was given."""
    from ..presets import get_preset

    if args.config is not None:
        base = read_config_file(args.config)
        if args.preset:
            base = dataclasses.replace(base, model=get_preset(args.preset, base.model.image_size))
    else:
        preset = args.preset or "paper-elu"
        size = args.image_size or 64
        base = ExperimentConfig(name=preset, model=get_preset(preset, size))

    def pick(names: tuple[str, ...]) -> dict:
        return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}

    model = pick(_MODEL)
    if args.features is not None:
        model.setdefault("g_features", args.features)
        model.setdefault("d_features", args.features)
    optim = pick(_OPTIM)
    if args.lr is not None:
        optim.setdefault("lr_g", args.lr)
        optim.setdefault("lr_d", args.lr)
    optim_cfg = base.optim
    if args.optimizer and args.optimizer != optim_cfg.name:
        optim_cfg = OptimConfig(name=args.optimizer)  # another optimizer: its own defaults
    data = pick(_DATA)
    if args.data_seed is not None:
        data["seed"] = args.data_seed
    train = pick(_TRAIN)
    if "steps" in train and "epochs" not in train:
        train["epochs"] = 0.0
    if "epochs" in train and "steps" not in train:
        train["steps"] = 0

    def merge(section, updates: dict):
        return from_dict(type(section), {**dataclasses.asdict(section), **updates})

    cfg = dataclasses.replace(
        base,
        model=merge(base.model, model),
        optim=merge(optim_cfg, optim),
        data=merge(base.data, data),
        train=merge(base.train, train),
    )
    if getattr(args, "name", None):
        cfg = dataclasses.replace(cfg, name=args.name)
    elif args.config is None:
        cfg = dataclasses.replace(cfg, name=f"{args.preset or 'paper-elu'}-{cfg.optim.name}")
    validate(cfg)
    return cfg


def run(args: argparse.Namespace) -> int:
    from ..models import build_models, count_parameters
    from ..runs import read_config
    from ..train import train

    if args.resume:
        saved = read_config(args.resume)
        # on resume the saved config is the base; only the length flags may change it
        for name in vars(args):
            if name not in ("steps", "epochs", "resume", "no_progress", "fid", "no_eval", "func",
                            "command", "out", "name", "dry_run") and getattr(args, name) not in (None, False):
                raise ConfigError(f"--resume continues {args.resume} as configured; "
                                  f"only --steps/--epochs may be given (got --{name.replace('_', '-')})")
        train_updates = {}
        if args.steps is not None:
            train_updates = {"steps": args.steps, "epochs": 0.0}
        elif args.epochs is not None:
            train_updates = {"epochs": args.epochs, "steps": 0}
        cfg = dataclasses.replace(saved, train=dataclasses.replace(saved.train, **train_updates))
    else:
        cfg = config_from_args(args)
        if cfg.train.steps == 0 and cfg.train.epochs == 0:
            raise ConfigError("give --steps or --epochs")

    if args.dry_run:
        G, D = build_models(cfg.model)
        print(cfg.to_json())
        print(f"# G: {count_parameters(G):,} parameters, D: {count_parameters(D):,} parameters")
        return 0

    result = train(
        cfg, runs_root=args.out, run_dir=args.resume, resume=bool(args.resume),
        progress=not args.no_progress, evaluate=not args.no_eval, fid=args.fid,
    )
    s = result.summary
    print(f"run folder: {result.run_dir}")
    print(f"status: {result.status} at step {result.step}/{s.get('total_steps')}, "
          f"{s.get('images_per_s', 0):.1f} images/s, {s.get('train_time_s', 0):.1f} s")
    metrics = s.get("metrics") or {}
    shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and v is not None}
    if shown:
        print("metrics: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(shown.items())))
    if result.status == "interrupted":
        print(f"resume with: xraygan train --resume {result.run_dir}")
        return 130
    return 0
