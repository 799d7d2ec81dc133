"""``xraygan sweep STUDY``: run an ablation study (ablations/) as an Optuna study."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from ..config import COUNT_MAX, DataConfig, ModelConfig, TrainConfig, validate
from ..errors import ConfigError
from .argtypes import (
    DEVICE_HELP,
    add_device_argument,
    config_file,
    field_type,
    float_type,
    int_type,
    out_dir,
    output_file,
)


def _scale_help(name: str, what: str) -> str:
    """The --quick / --full help, read from the Scale itself (it cannot go stale)."""
    from xraygan.ablations.scale import SCALES

    sc = SCALES.get(name, field="scale")
    length = f"{sc.steps:,} steps" if sc.steps else f"{sc.epochs:g} epochs"
    fid = f"FID on {sc.fid_samples:,} samples" if sc.fid else "no FID"
    return (f"{what} ({sc.image_size}x{sc.image_size}, width {sc.features}, {length}, batch "
            f"{sc.batch_size}, {sc.num_images:,} images, {fid})")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from xraygan.ablations.liveness import GRACE_S, HEARTBEAT_S, MAX_RETRY
    from xraygan.ablations.seeds import DEFAULT_SEEDS

    p = sub.add_parser(
        "sweep",
        help="run an ablation study (Optuna): table1, table3, batchnorm, fmaps, ...",
        description="Run an ablation study: every trial is one training run in its own run "
        "folder, scored by the run metrics and recorded in an Optuna storage. Interrupted "
        "sweeps resume where they stopped: run the same command again. Every cell's config is "
        "checked before the first trial starts. Exit status: 0 when at least one trial "
        "completed, 3 when every trial failed, 2 for bad input.",
    )
    p.add_argument("study", nargs="?", help="study name (see --list)")
    p.add_argument("--list", action="store_true", help="list the studies and exit")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="scale", action="store_const", const="quick",
                      help=_scale_help("quick", "CPU-sized runs, the default"))
    size.add_argument("--full", dest="scale", action="store_const", const="full",
                      help=_scale_help("full", "the paper's scale for a GPU"))
    p.add_argument("--trials", type=int_type(1, 100_000), metavar="N",
                   help="search studies: total trials (default: the study's)")
    p.add_argument("--workers", type=int_type(1, 256), default=1, metavar="N",
                   help="worker processes on this machine")
    p.add_argument("--storage", metavar="URL",
                   help="Optuna storage URL (default: sqlite:///OUT/STUDY-SCALE.db); "
                   "postgresql+psycopg2://user@host/db shares one study across machines")
    p.add_argument("--study-name", metavar="NAME",
                   help="name of the study in the storage (default: STUDY-SCALE)")
    p.add_argument("--out", type=out_dir, default=Path("studies"), metavar="DIR",
                   help="folder of study databases and run folders")
    p.add_argument("--seeds", type=int_type(1, 10_000), default=None, metavar="N",
                   help="repeat every cell over seeds 0..N-1 (default: 1; the seeds study: "
                   f"{DEFAULT_SEEDS})")
    p.add_argument("--cell", metavar="STUDY:KEY",
                   help="seeds study: repeat this cell of another study (default: paper-elu "
                   "with AdaS)")
    p.add_argument("--config", type=config_file, metavar="FILE",
                   help="seeds study: repeat this experiment config (.json, .toml, .yaml; "
                   "default: none)")
    p.add_argument("--cells", nargs="+", metavar="KEY", default=(),
                   help="grid studies: run only these cells (a key from --dry-run, or a key "
                   "without its -sN suffix for all its seeds; default: every cell)")
    p.add_argument("--dry-run", action="store_true", help="print the cells and exit")
    p.add_argument("--no-estimate", action="store_true",
                   help="skip the calibration that estimates the sweep's duration (it times a "
                   "few real steps and an Inception batch: tens of seconds on a busy CPU)")
    p.add_argument("--json", type=output_file, metavar="FILE",
                   help="also write the trial summary as JSON (default: none)")
    p.add_argument("--no-progress", action="store_true",
                   help="no per-trial progress bar or progress lines")
    p.add_argument("--tensorboard", action="store_true", default=None,
                   help="each trial also writes TensorBoard event files into its RUN/tb/ "
                   "(off unless given or XRAYGAN_TENSORBOARD=1)")
    s = p.add_argument_group("scale overrides (change the study's identity: a new --study-name "
                             "or --out is needed for an existing study; default: the scale's)")
    s.add_argument("--data", default=None, metavar="SPEC",
                   help="phantom | folder:PATH | dicom:PATH | cache:PATH (default: phantom; "
                   "the utility study: phantom:v2, phantoms with findings)")
    s.add_argument("--holdout", type=field_type(DataConfig, "holdout"), metavar="F",
                   help="fraction of folder/DICOM/cache images held out of training for the "
                   "memorization test (default: 0.1 for real data; phantoms need none)")
    s.add_argument("--num-images", type=field_type(DataConfig, "num_images"), metavar="N",
                   help="training images (default: the scale's)")
    s.add_argument("--image-size", type=field_type(ModelConfig, "image_size"), metavar="N",
                   help="image side, a power of two >= 16 (default: the scale's)")
    s.add_argument("--features", type=field_type(ModelConfig, "g_features"), metavar="N",
                   help="base feature-map width (default: the scale's)")
    # a sweep needs a length: 0 (= "use the other one") is not an override
    s.add_argument("--steps", type=int_type(1, COUNT_MAX), metavar="N",
                   help="iterations per trial (default: the scale's)")
    s.add_argument("--epochs", type=float_type(gt=0.0, max=1e6), metavar="X",
                   help="epochs per trial, instead of --steps (default: the scale's)")
    s.add_argument("--batch-size", type=field_type(TrainConfig, "batch_size"), metavar="N",
                   help="default: the scale's")
    add_device_argument(s, default=None, help=f"{DEVICE_HELP} (default: the scale's, auto)")
    s.add_argument("--fid-samples", type=int_type(2, 10**6), metavar="N",
                   help="generated images for FID (default: the scale's)")
    s.add_argument("--no-fid", action="store_true", help="skip FID (score by the fallback metric)")
    s.add_argument("--checkpoint-every", type=field_type(TrainConfig, "checkpoint_every"),
                   metavar="N", help="default: the scale's")
    s.add_argument("--sample-every", type=field_type(TrainConfig, "sample_every"),
                   metavar="N", help="default: the scale's")
    w = p.add_argument_group("workers")
    w.add_argument("--heartbeat", type=int_type(1, 86_400), default=None, metavar="S",
                   help=f"seconds between heartbeats (default: {HEARTBEAT_S})")
    w.add_argument("--grace", type=int_type(1, 7 * 86_400), default=None, metavar="S",
                   help="seconds without heartbeat before a trial counts as killed "
                   f"(default: {GRACE_S}, at least 2x --heartbeat)")
    w.add_argument("--max-retry", type=int_type(0, 1000), default=None, metavar="N",
                   help=f"re-runs of a killed trial (default: {MAX_RETRY})")
    w.add_argument("--no-wait", action="store_true",
                   help="exit when nothing is waiting, even while other workers' trials run")
    p.set_defaults(func=run)


def build_options(args: argparse.Namespace):
    """SweepOptions from the parsed flags (also used by tests)."""
    from xraygan.ablations import SCALES, STUDIES, StudyContext
    from xraygan.ablations.liveness import GRACE_S, HEARTBEAT_S, MAX_RETRY
    from xraygan.ablations.runner import SweepOptions, get_spec
    from xraygan.ablations.seeds import cell_of

    from ..tensorboard import wanted as tensorboard_wanted

    if not args.study:
        raise ConfigError("name a study (xraygan sweep --list shows them)")
    spec = get_spec(args.study)
    scale = SCALES.get(args.scale or "quick", field="scale").with_overrides(
        num_images=args.num_images, image_size=args.image_size, features=args.features,
        steps=args.steps, epochs=args.epochs, batch_size=args.batch_size, device=args.device,
        fid_samples=args.fid_samples, checkpoint_every=args.checkpoint_every,
        sample_every=args.sample_every, fid=False if args.no_fid else None,
    )
    if getattr(args, "cells", None) and not spec.is_grid:
        raise ConfigError(f"--cells: study {spec.name} is a search, not a grid of cells")
    if (args.cell or args.config) and not spec.takes_base:
        takers = ", ".join(n for n in STUDIES.names() if STUDIES.get(n).takes_base)
        raise ConfigError(f"--cell and --config choose the configuration of the {takers} study only")
    seeds = args.seeds if args.seeds is not None else spec.default_seeds
    data = args.data or spec.data or "phantom"
    holdout = getattr(args, "holdout", None)
    if holdout is not None and data.split(":")[0] == "phantom":
        raise ConfigError("--holdout applies to folder:, dicom: and cache: data; phantoms hold "
                          "out the images after --num-images by themselves")
    ctx = StudyContext(scale, data=data, seeds=seeds, trials=args.trials, holdout=holdout)
    if args.cell:
        study, _, key = args.cell.partition(":")
        if not key:
            raise ConfigError(f"--cell: expected STUDY:KEY such as table1:adas-elu-ttur, got {args.cell!r}")
        ctx = dataclasses.replace(ctx, base=cell_of(study, key, ctx).config)
    elif args.config:
        from ..config import read_config_file

        ctx = dataclasses.replace(ctx, base=read_config_file(args.config))
    heartbeat = args.heartbeat or HEARTBEAT_S
    from xraygan.ablations.registration import study_protocols
    from xraygan.claims.engine import decision_sources
    from xraygan.claims.protocol import registration

    return SweepOptions(
        study=spec.name, ctx=ctx, out=args.out, storage=args.storage, study_name=args.study_name,
        workers=args.workers, heartbeat=heartbeat,
        grace=args.grace or max(GRACE_S if args.heartbeat is None else 0, 2 * heartbeat),
        max_retry=MAX_RETRY if args.max_retry is None else args.max_retry, wait=not args.no_wait,
        progress=not getattr(args, "no_progress", False),
        tensorboard=tensorboard_wanted(getattr(args, "tensorboard", None)),
        # registered before the first trial (the runner adds the time it writes it)
        claims=registration(study_protocols(spec.name), sources=decision_sources()),
        cells=tuple(getattr(args, "cells", ()) or ()),
    )


def list_studies() -> str:
    from xraygan.ablations import QUICK, STUDIES, StudyContext, load_studies
    load_studies()
    lines = []
    for name in STUDIES.names():
        spec = STUDIES.get(name)
        ctx = StudyContext(QUICK, data=spec.data or "phantom",
                           seeds=spec.default_seeds)
        size = (f"{len(spec.grid(ctx))} cells (quick)" if spec.is_grid
                else f"search, {spec.default_trials} trials")
        lines.append(f"{name:16s} {size:18s} {spec.description}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.list:
        print(list_studies())
        return 0
    from .early import check_data_spec, check_device, check_study_identity

    check_data_spec(args.data)  # before torch, data, Inception or the study load
    check_device(args.device)
    opts = build_options(args)
    check_device(opts.ctx.scale.device, "the scale's device")
    from xraygan.ablations.runner import study_attrs

    check_study_identity(opts.url, opts.name, study_attrs(opts))
    import optuna

    from xraygan.ablations.runner import get_spec, run_sweep, selected_cells, summary_rows

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is ours to print

    spec = get_spec(opts.study)
    check_cells(spec, opts.ctx)  # a bad override fails here, before any trial or storage
    from xraygan.ablations.estimate import sweep_estimate
    from xraygan.ablations.preflight import preflight
    from xraygan.ablations.runner import sweep_configs

    checked = preflight(opts)  # data, held-out split, weights: before features or training
    from ..costmodel import describe as describe_estimate
    from ..process import apply_process_policy, model_params

    # in-process trials (one worker) own this process's threads; K workers set their own
    size = max((model_params(cfg.model) for _, cfg in sweep_configs(opts)), default=None)
    apply_process_policy(role="sweep-worker" if opts.workers == 1 else "cli",
                         model_size_hint=size, workers=opts.workers)
    if args.dry_run:
        print(f"study {opts.name}: storage {opts.url}, runs in {opts.study_dir}")
        print(json.dumps(opts.ctx.scale.to_dict(), sort_keys=True))
        if spec.is_grid:
            for cell in selected_cells(opts):
                print(f"{cell.key:24s} {json.dumps(dict(cell.params), sort_keys=True)}")
        if not args.no_estimate:
            for line in checked.datasets:
                print(f"data: {line}")
            print(describe_estimate(*sweep_estimate(opts, checked=checked)))  # seconds
        return 0
    from ..proctree import PeakSampler

    started = time.time()
    with PeakSampler() as sampler:  # parent + workers, from here to the last trial
        if not args.no_estimate:
            print(describe_estimate(*sweep_estimate(opts, checked=checked)), flush=True)
        warm_reference(opts)
        if opts.workers > 1:  # the workers load their own Inception: the parent's goes
            from ..metrics.features import release_models

            release_models()
        study = run_sweep(opts, echo=lambda s: print(s, flush=True))
    memory, fresh = record_memory(study, sampler, opts, since=started)
    rows = summary_rows(study)
    print(f"\n{opts.name}: {len(rows)} trials in {opts.url}")
    if not fresh:
        print(f"peak memory recorded by the sweep that trained (this one trained nothing): "
              f"{memory_line(memory)}")
    else:
        print(f"peak memory of the sweep (parent + {opts.workers} worker(s)): {memory_line(memory)}")
    for r in rows:
        value = f"{r['objective']}={r['value']:.4g}" if r["value"] is not None else ""
        wall = f"{r['wall_time_s']:.0f} s" if r["wall_time_s"] is not None else ""
        print(f"  {r['trial']:3d} {r['cell']:24s} {r['state']:8s} {r['status']:11s} {value:18s} {wall}")
    print(f"runs: {opts.study_dir}")
    from xraygan.ablations.storage import DEFAULT_OUT

    from .summary import sweep_next

    print("\n".join(sweep_next(opts.name, opts.out, opts.url, DEFAULT_OUT)))
    if args.json:
        from ..runs import atomic_write_json

        atomic_write_json(args.json, {"study": opts.name, "storage": opts.url, "trials": rows,
                                      "peak_memory": memory})
    return exit_status(rows)


SWEEP_MEMORY_ATTR = "sweep_memory"  # study user attr: the last sweep's peak (reports show it)


def record_memory(study, sampler, opts, since: float | None = None) -> tuple[dict, bool]:
    """(the sweep's peak memory, True) after storing it in the study (the report's protocol
    reads it). A sweep that started no trial after ``since`` (a rerun of a finished study)
    measured only itself: the recorded peak of the sweep that trained is kept and returned,
    with False."""
    memory = {**sampler.peak(), "workers": opts.workers, "scale": opts.ctx.scale.name}
    kept = study.user_attrs.get(SWEEP_MEMORY_ATTR)
    ran = since is None or any(t.datetime_start is not None and t.datetime_start.timestamp() >= since
                               for t in study.get_trials(deepcopy=False))
    if not ran and isinstance(kept, dict) and all(
            isinstance(kept.get(k), (int, float)) for k in ("peak_rss_bytes", "processes_at_peak")):
        return kept, False
    study.set_user_attr(SWEEP_MEMORY_ATTR, memory)
    return memory, True


def memory_line(m: dict) -> str:
    pss = m.get("peak_pss_bytes")
    head = f"{pss / 1e9:.2f} GB PSS" if pss is not None else "PSS unavailable"
    return (f"{head} (sum of RSS {m['peak_rss_bytes'] / 1e9:.2f} GB, shared pages counted per "
            f"process; {m['processes_at_peak']} processes)")


def warm_reference(opts) -> dict[str, float]:
    """The FID reference statistics once, on every core, before K > 1 workers start: else the
    first K trials to finish extract the same real images at once, each on 1/K of the cores
    (~260 s duplicated in the quick reproduction). One worker fills the cache in its first
    trial with all the cores anyway. A cache hit takes a second."""
    scale = opts.ctx.scale
    if opts.workers <= 1 or not scale.fid:
        return {}
    import torch

    from xraygan.ablations.reference import warm_scale

    from ..process import cores_available
    from ..train import resolve_device

    device = str(resolve_device(scale.device))  # what the trials will use ("auto" included)
    threads = torch.get_num_threads()
    torch.set_num_threads(cores_available())  # this process's share is 1/K: lend it all
    try:
        took = warm_scale(scale, opts.ctx.data, device, holdout=opts.ctx.holdout)
    finally:
        torch.set_num_threads(threads)
    if took:
        print("reference statistics: " + ", ".join(f"{k} {v:.0f} s" for k, v in took.items()),
              flush=True)
    return took


def check_cells(spec, ctx) -> None:
    """validate() every cell's config (a search study: its base config) up front, so a bad
    override is one error now instead of a failed trial per cell later."""
    if spec.is_grid:
        for cell in spec.grid(ctx):
            try:
                validate(cell.config)
            except ConfigError as e:
                raise ConfigError(f"cell {cell.key}: {e}") from None
    else:
        validate(ctx.base if ctx.base is not None else ctx.config())


ALL_FAILED_EXIT = 3


def exit_status(rows: list[dict]) -> int:
    """0 when some trial completed (or there was nothing to run), 3 when every trial failed:
    a script or CI job must not read a sweep of errors as a success."""
    done = [r for r in rows if r["state"] in ("COMPLETE", "PRUNED")]
    failed = [r for r in rows if r["state"] == "FAIL"]
    if failed and not done and len(failed) == len(rows):
        first = next((r["failure"] for r in failed if r["failure"]), "")
        reason = f"; first failure: {' '.join(str(first).split())[:300]}" if first else ""
        print(f"xraygan sweep: error: all {len(rows)} trials failed{reason}", file=sys.stderr)
        return ALL_FAILED_EXIT
    if failed:
        print(f"xraygan sweep: warning: {len(failed)} of {len(rows)} trials failed",
              file=sys.stderr)
    return 0
