"""``xraygan sweep STUDY``: run an ablation study (ablations/) as an Optuna study."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from ..errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="run an ablation study (Optuna): table1, table3, batchnorm, fmaps, ...",
        description="Run an ablation study: every trial is one training run in its own run "
        "folder, scored by the run metrics and recorded in an Optuna storage. Interrupted "
        "sweeps resume where they stopped: run the same command again.",
    )
    p.add_argument("study", nargs="?", help="study name (see --list)")
    p.add_argument("--list", action="store_true", help="list the studies and exit")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="scale", action="store_const", const="quick",
                      help="CPU-sized runs (32x32, 300 steps, FID on 500 samples): the default")
    size.add_argument("--full", dest="scale", action="store_const", const="full",
                      help="the paper's scale for a GPU (64x64, 150 epochs, FID on 10,000 samples)")
    p.add_argument("--trials", type=int, help="search studies: total trials (default: the study's)")
    p.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    p.add_argument("--storage", help="Optuna storage URL (default sqlite:///OUT/STUDY-SCALE.db); "
                   "postgresql+psycopg2://user@host/db shares one study across machines")
    p.add_argument("--study-name", help="name of the study in the storage (default STUDY-SCALE)")
    p.add_argument("--out", type=Path, default=Path("studies"),
                   help="folder of study databases and run folders (default: studies)")
    p.add_argument("--seeds", type=int, default=1,
                   help="repeat every cell over N seeds (the seeds study: N repeats, default 5)")
    p.add_argument("--cell", help="seeds study: repeat this cell of another study (STUDY:KEY)")
    p.add_argument("--config", type=Path, help="seeds study: repeat this experiment config JSON")
    p.add_argument("--dry-run", action="store_true", help="print the cells and exit")
    s = p.add_argument_group("scale overrides (change the study's identity: a new --study-name "
                             "or --out is needed for an existing study)")
    s.add_argument("--data", default="phantom", help="phantom | folder:PATH | dicom:PATH | cache:PATH")
    s.add_argument("--num-images", type=int)
    s.add_argument("--image-size", type=int)
    s.add_argument("--features", type=int, help="base feature-map width")
    s.add_argument("--steps", type=int)
    s.add_argument("--epochs", type=float)
    s.add_argument("--batch-size", type=int)
    s.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    s.add_argument("--fid-samples", type=int)
    s.add_argument("--no-fid", action="store_true", help="skip FID (score by the fallback metric)")
    s.add_argument("--checkpoint-every", type=int)
    s.add_argument("--sample-every", type=int)
    w = p.add_argument_group("workers")
    w.add_argument("--heartbeat", type=int, default=None, help="seconds between heartbeats (30)")
    w.add_argument("--grace", type=int, default=None,
                   help="seconds without heartbeat before a trial counts as killed (120)")
    w.add_argument("--max-retry", type=int, default=None, help="re-runs of a killed trial (2)")
    w.add_argument("--no-wait", action="store_true",
                   help="exit when nothing is waiting, even while other workers' trials run")
    p.set_defaults(func=run)


def build_options(args: argparse.Namespace):
    """SweepOptions from the parsed flags (also used by tests)."""
    from ablations import SCALES, StudyContext
    from ablations.runner import SweepOptions, get_spec
    from ablations.seeds import cell_of
    from ablations.storage import GRACE_S, HEARTBEAT_S, MAX_RETRY

    if not args.study:
        raise ConfigError("name a study (xraygan sweep --list shows them)")
    spec = get_spec(args.study)
    scale = SCALES.get(args.scale or "quick", field="scale").with_overrides(
        num_images=args.num_images, image_size=args.image_size, features=args.features,
        steps=args.steps, epochs=args.epochs, batch_size=args.batch_size, device=args.device,
        fid_samples=args.fid_samples, checkpoint_every=args.checkpoint_every,
        sample_every=args.sample_every, fid=False if args.no_fid else None,
    )
    if (args.cell or args.config) and spec.name != "seeds":
        raise ConfigError("--cell and --config choose the configuration of the seeds study only")
    ctx = StudyContext(scale, data=args.data, seeds=args.seeds, trials=args.trials)
    if args.cell:
        study, _, key = args.cell.partition(":")
        if not key:
            raise ConfigError(f"--cell: expected STUDY:KEY such as table1:adas-elu-ttur, got {args.cell!r}")
        ctx = dataclasses.replace(ctx, base=cell_of(study, key, ctx).config)
    elif args.config:
        from ..config import read_config_file

        ctx = dataclasses.replace(ctx, base=read_config_file(args.config))
    heartbeat = args.heartbeat or HEARTBEAT_S
    return SweepOptions(
        study=spec.name, ctx=ctx, out=args.out, storage=args.storage, study_name=args.study_name,
        workers=args.workers, heartbeat=heartbeat,
        grace=args.grace or max(GRACE_S if args.heartbeat is None else 0, 2 * heartbeat),
        max_retry=MAX_RETRY if args.max_retry is None else args.max_retry, wait=not args.no_wait,
    )


def list_studies() -> str:
    from ablations import QUICK, STUDIES, StudyContext, load_studies

    load_studies()
    lines = []
    for name in STUDIES.names():
        spec = STUDIES.get(name)
        size = (f"{len(spec.grid(StudyContext(QUICK)))} cells (quick)" if spec.is_grid
                else f"search, {spec.default_trials} trials")
        lines.append(f"{name:16s} {size:18s} {spec.description}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.list:
        print(list_studies())
        return 0
    opts = build_options(args)
    import optuna

    from ablations.runner import get_spec, run_sweep, summary_rows

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is ours to print

    spec = get_spec(opts.study)
    if args.dry_run:
        print(f"study {opts.name}: storage {opts.url}, runs in {opts.study_dir}")
        print(json.dumps(opts.ctx.scale.to_dict(), sort_keys=True))
        if spec.is_grid:
            for cell in spec.grid(opts.ctx):
                print(f"{cell.key:24s} {json.dumps(dict(cell.params), sort_keys=True)}")
        return 0
    study = run_sweep(opts, echo=lambda s: print(s, flush=True))
    rows = summary_rows(study)
    print(f"\n{opts.name}: {len(rows)} trials in {opts.url}")
    for r in rows:
        value = f"{r['objective']}={r['value']:.4g}" if r["value"] is not None else ""
        wall = f"{r['wall_time_s']:.0f} s" if r["wall_time_s"] is not None else ""
        print(f"  {r['trial']:3d} {r['cell']:24s} {r['state']:8s} {r['status']:11s} {value:18s} {wall}")
    print(f"runs: {opts.study_dir}")
    return 0
