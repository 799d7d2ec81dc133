"""``xraygan train``: build an ExperimentConfig from a preset and flags, train it."""

from __future__ import annotations

import argparse
import dataclasses
import typing

from ..config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    OptimConfig,
    Param,
    TrainConfig,
    from_dict,
    param_of,
    read_config_file,
    validate,
)
from ..errors import ConfigError
from ..runs import RunStatus
from .argtypes import (
    completer,
    config_file,
    existing_dir,
    field_type,
    out_dir,
    output_file,
    registry_type,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a GAN into a run folder",
        description="Train a DCGAN-family GAN. Flags override the preset (or --config); the "
        "resolved config is written to RUN/config.json before step 0.",
    )
    add_config_arguments(p)
    r = p.add_argument_group("run")
    r.add_argument("--out", type=out_dir, default="runs", metavar="DIR",
                   help="folder of run folders (default: runs)")
    r.add_argument("--name", metavar="NAME", help="run name, the run folder's prefix (default: preset-optimizer)")
    r.add_argument("--resume", metavar="RUN", type=existing_dir,
                   help="continue RUN from its last checkpoint; --steps/--epochs may raise the "
                   "length, nothing else may change (default: a new run)")
    r.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    r.add_argument("--fid", action="store_true", help="also compute FID at the end (needs weights)")
    r.add_argument("--no-eval", action="store_true", help="skip the end-of-run metrics")
    r.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    r.add_argument("--json", type=output_file, metavar="FILE",
                   help="also write the run's summary (folder, status, metrics) as JSON")
    r.add_argument("--tensorboard", action="store_true", default=None,
                   help="also write TensorBoard event files into RUN/tb/ (needs the tensorboard "
                   "package; metrics.csv stays the record; env XRAYGAN_TENSORBOARD=1 also turns "
                   "it on) (default: off)")
    p.set_defaults(func=run)


SECTIONS = (("model", ModelConfig, "model (defaults: the paper-elu preset at 64 px)"),
             ("optim", OptimConfig, "optimizer"),
             ("data", DataConfig, "data"),
             ("train", TrainConfig, "training"))


@dataclasses.dataclass(frozen=True)
class ConfigFlag:
    """One generated flag: the config field it sets and how argparse spells it."""

    section: str
    name: str
    flag: str
    dest: str
    param: Param


def config_flags() -> list[ConfigFlag]:
    """Every config field with a flag, from the field metadata: ``--field-name`` unless the
    metadata names another (``--g-fc``, ``--data``, ``--data-seed``, ``--optimizer``)."""
    out = []
    for section, cls, _ in SECTIONS:
        for f in dataclasses.fields(cls):
            p = param_of(f)
            if p is None or p.flag is None:
                continue
            flag = p.flag or "--" + f.name.replace("_", "-")
            out.append(ConfigFlag(section, f.name, flag, flag[2:].replace("-", "_"), p))
    return out


def _default_text(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(map(str, value)) if value else "empty"
    if value is None:
        return "the optimizer's"
    return str(value)


def _metavar(hint) -> str:
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    return {int: "N", float: "X", str: "TEXT"}.get(args[0], "VALUE")


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    """Flags shared by every command that builds an experiment (train; sweep and memory take
    a subset), generated from the config fields' metadata: names, types, ranges, help and
    defaults cannot drift from what validate() accepts."""
    from ..presets import PRESETS

    shown_defaults = {
        "model": PRESETS.get("paper-elu")(64), "optim": OptimConfig(), "data": DataConfig(),
        "train": TrainConfig(),
    }
    groups = {}
    for section, _cls, title in SECTIONS:
        groups[section] = p.add_argument_group(title)
    m = groups["model"]
    m.add_argument("--preset", default=None, type=registry_type(PRESETS, "preset"), metavar="NAME",
                   help=f"model preset: {', '.join(PRESETS.names())} (default: paper-elu)"
                   ).completer = completer(PRESETS.names())
    m.add_argument("--config", type=config_file, metavar="FILE",
                   help="an experiment config (.json, .toml, .yaml; e.g. RUN/config.json): the "
                   "base the other flags override (default: none)")
    m.add_argument("--features", type=field_type(ModelConfig, "g_features"), metavar="N",
                   help="base width of G and D (sets --g-features and --d-features; "
                   "default: 64)")
    groups["optim"].add_argument(
        "--lr", type=field_type(OptimConfig, "lr_g"), metavar="LR",
        help="learning rate of G and D (sets --lr-g and --lr-d; default: the optimizer's)")
    for cf in config_flags():
        cls = dict((s, c) for s, c, _ in SECTIONS)[cf.section]
        default = getattr(shown_defaults[cf.section], cf.name)
        help_text = cf.param.help
        if "default" not in help_text:
            help_text += f" (default: {_default_text(default)})"
        kw: dict = {"dest": cf.dest, "default": None, "help": help_text}
        hint = typing.get_type_hints(cls)[cf.name]
        names = None
        if hint is bool:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = field_type(cls, cf.name)  # choices too: the field's own message
            kw["metavar"] = cf.param.metavar or _metavar(hint)
            names = cf.param.choice_names()
            if names is not None:
                if cf.param.metavar:  # a long list: named in the help, not the usage line
                    kw["help"] = f"{cf.param.help}: {', '.join(names)}" + kw["help"][len(cf.param.help):]
                else:
                    kw["metavar"] = "{" + ",".join(names) + "}"
        action = groups[cf.section].add_argument(cf.flag, **kw)
        if names is not None:
            action.completer = completer(names)


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    """Preset (or --config file) first, then every flag that was given."""
    from ..presets import get_preset

    if args.config is not None:
        base = read_config_file(args.config)
        if args.preset:
            base = dataclasses.replace(base, model=get_preset(args.preset, base.model.image_size))
    else:
        preset = args.preset or "paper-elu"
        size = getattr(args, "image_size", None) or 64
        base = ExperimentConfig(name=preset, model=get_preset(preset, size))

    updates: dict[str, dict] = {section: {} for section, _, _ in SECTIONS}
    for cf in config_flags():
        value = getattr(args, cf.dest, None)
        if value is not None:
            updates[cf.section][cf.name] = value
    if getattr(args, "features", None) is not None:
        updates["model"].setdefault("g_features", args.features)
        updates["model"].setdefault("d_features", args.features)
    if getattr(args, "lr", None) is not None:
        updates["optim"].setdefault("lr_g", args.lr)
        updates["optim"].setdefault("lr_d", args.lr)
    optim_cfg = base.optim
    new_name = updates["optim"].get("name")
    if new_name and new_name != optim_cfg.name:
        optim_cfg = OptimConfig(name=new_name)  # another optimizer: its own defaults
    train = updates["train"]
    if "steps" in train and "epochs" not in train:
        train["epochs"] = 0.0
    if "epochs" in train and "steps" not in train:
        train["steps"] = 0

    def merge(section, changes: dict):
        return from_dict(type(section), {**dataclasses.asdict(section), **changes})

    cfg = dataclasses.replace(
        base,
        model=merge(base.model, updates["model"]),
        optim=merge(optim_cfg, updates["optim"]),
        data=merge(base.data, updates["data"]),
        train=merge(base.train, train),
    )
    if getattr(args, "name", None):
        cfg = dataclasses.replace(cfg, name=args.name)
    elif args.config is None:
        cfg = dataclasses.replace(cfg, name=f"{args.preset or 'paper-elu'}-{cfg.optim.name}")
    validate(cfg)
    return cfg


def run(args: argparse.Namespace) -> int:
    from .early import check_data_spec, check_device

    check_data_spec(getattr(args, "data", None))  # before torch and the data load
    check_device(getattr(args, "device", None))
    from ..models import build_models, count_parameters
    from ..runs import read_config
    from ..train import train

    if args.resume:
        saved = read_config(args.resume)
        # on resume the saved config is the base; only the length flags may change it
        for name in vars(args):
            if name not in ("steps", "epochs", "resume", "no_progress", "tensorboard", "fid", "no_eval", "func",
                            "command", "out", "name", "dry_run", "json") and getattr(args, name) not in (None, False):
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

    from ..guard import check_training

    check_training(cfg)  # before anything is built: a memory bomb is a one-line error (exit 2)
    if args.dry_run:
        G, D = build_models(cfg.model)
        print(cfg.to_json())
        print(f"# G: {count_parameters(G):,} parameters, D: {count_parameters(D):,} parameters")
        return 0

    from ..process import apply_process_policy, governor_tick, model_params, stop_on_signals
    from ..runs import read_summary_lenient
    from ..tensorboard import wanted as wanted_tensorboard

    # this command owns the process: threads, allocator (gan_core/process.py), signals
    # a resumed run keeps the thread count it recorded: same seed, same count, same run
    recorded = read_summary_lenient(args.resume).get("threads") if args.resume else None
    apply_process_policy(role="train", model_size_hint=model_params(cfg.model),
                         resume_threads=recorded if isinstance(recorded, int) else None)
    with stop_on_signals() as stop:  # Ctrl-C / SIGTERM / SIGHUP: checkpoint, then stop
        result = train(
            cfg, runs_root=args.out, run_dir=args.resume, resume=bool(args.resume),
            progress=not args.no_progress, evaluate=not args.no_eval, fid=args.fid,
            should_stop=stop, tensorboard=wanted_tensorboard(args.tensorboard),
            on_step=governor_tick,
        )
    from .summary import run_summary

    s = result.summary
    if s.get("skipped_files"):  # unreadable files were left out of the dataset: say so
        print(f"data: {s.get('num_images')} images from {s.get('dataset')}; skipped "
              f"{s['skipped_files']} unreadable files (xraygan data prepare lists them by reason)")
    print("\n".join(run_summary(result.run_dir, result.status, result.step, s)))
    if args.json:
        from ..runs import atomic_write_json

        atomic_write_json(args.json, {**s, "run_dir": str(result.run_dir), "status": result.status,
                                      "step": result.step})
    if result.status == RunStatus.INTERRUPTED:
        from ..process import signal_exit_code

        return signal_exit_code(stop.raised)
    return 0
