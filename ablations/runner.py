"""Run a study: create or join it in the storage, enqueue its grid, run K worker processes.

Grid studies are idempotent: every cell is enqueued once as a WAITING trial carrying its key
(user attr ``cell``), and workers claim WAITING trials atomically in the database (a trial
moves WAITING -> RUNNING for exactly one claimer, optuna's own queue mechanism), so K workers
on one machine or many never run a cell twice. A cell that already has a trial (waiting,
running, complete, pruned, or failed by divergence, which would only diverge again) is not
enqueued again; cells that failed with an error are, on the next ``sweep``. Search studies ask
the sampler for new trials until the study holds ``trials`` of them.

Optuna's own analyses (optuna-dashboard's importance, slice and parallel-coordinate plots,
``optuna.importance``) read trial ``params``: each grid cell is enqueued with the factors it
sets (``Cell.params``) as params with a ``CategoricalDistribution`` over the grid's values of
that factor, and the claiming worker calls ``trial.suggest_categorical`` with the same choices
(optuna's fixed-params path: it returns the enqueued value and records it). The objective's
name is set with ``study.set_metric_names`` when the first trial completes.
"""

from __future__ import annotations

import dataclasses
import datetime
import multiprocessing
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from xraygan.errors import ConfigError, XrayganError
from xraygan.process import apply_process_policy
from xraygan.safeio import tolerant_std_streams
from xraygan.trials import FAILED_ON_PURPOSE, TrialStatus

from . import load_studies
from .liveness import GRACE_S, HEARTBEAT_S, MAX_RETRY
from .scale import holdout_for
from .spec import STUDIES, Cell, StudyContext, StudySpec
from .storage import (
    DEFAULT_OUT,
    create_or_load,
    default_storage,
    open_storage,
)
from .trial import TrialEnv, execute

CLAIMS_ATTR = "claims_protocol"  # = xraygan.claims.protocol.REGISTRATION_ATTR
REGISTERED_AT = "registered_at"  # = xraygan.claims.protocol.REGISTERED_AT
TAKEN = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)


@dataclass(frozen=True)
class SweepOptions:
    study: str
    ctx: StudyContext
    out: Path = Path(DEFAULT_OUT)
    storage: str | None = None  # None: sqlite:///OUT/NAME.db
    study_name: str | None = None  # None: STUDY-SCALE (table1-quick)
    workers: int = 1
    heartbeat: int = HEARTBEAT_S
    grace: int = GRACE_S
    max_retry: int = MAX_RETRY
    wait: bool = True  # keep polling while other workers' trials run, to take over dead ones
    progress: bool = True  # per-trial progress (a bar for one worker on a TTY, else plain lines)
    tensorboard: bool = False  # each trial's run folder gets RUN/tb/ event files
    # the claims' protocols (reports.claim_protocol.registration), stored in the study before
    # its first trial and never replaced: the report decides with what was registered
    claims: Mapping[str, Any] | None = None
    cells: tuple[str, ...] = ()  # grid studies: enqueue only these cells (empty: all)

    @property
    def name(self) -> str:
        return self.study_name or f"{self.study}-{self.ctx.scale.name}"

    @property
    def url(self) -> str:
        return self.storage or default_storage(self.out, self.name)

    @property
    def study_dir(self) -> Path:
        return (self.out / self.name).resolve()


def get_spec(name: str) -> StudySpec:
    load_studies()
    return STUDIES.get(name, field="study")


def selected_cells(opts: SweepOptions) -> list[Cell]:
    """The grid cells a sweep enqueues: all, or those ``opts.cells`` names (a key, or a key
    without its ``-sN`` seed suffix for all its seeds); an unknown name lists the valid ones."""
    spec = get_spec(opts.study)
    cells = spec.grid(opts.ctx)
    if not opts.cells:
        return cells

    def wanted(key: str, name: str) -> bool:
        return key == name or (key.startswith(f"{name}-s") and key[len(name) + 2:].isdigit())

    unknown = [n for n in opts.cells if not any(wanted(c.key, n) for c in cells)]
    if unknown:
        raise ConfigError(f"--cells: {', '.join(unknown)} not in study {spec.name} at this "
                          f"scale; its cells: {', '.join(c.key for c in cells)}")
    return [c for c in cells if any(wanted(c.key, n) for n in opts.cells)]


def sweep_configs(opts: SweepOptions) -> list[tuple[str, Any]]:
    """(key, ExperimentConfig) of every trial of a sweep; a search study's trials as its base
    configuration."""
    spec = get_spec(opts.study)
    ctx = opts.ctx
    if spec.is_grid:
        return [(c.key, c.config) for c in selected_cells(opts)]
    base = ctx.base if ctx.base is not None else ctx.config()
    return [(f"trial{i}", base) for i in range(ctx.trials or spec.default_trials)]


# --------------------------------------------------------------------------- study setup
def study_attrs(opts: SweepOptions) -> dict[str, Any]:
    """What defines the study; a later sweep of the same name must match it."""
    ctx = opts.ctx
    attrs = {"study": opts.study, "scale": ctx.scale.to_dict(), "data": ctx.data,
             "seeds": ctx.seeds, "base_config": ctx.base.to_dict() if ctx.base else None}
    if holdout_for(ctx.data) > 0:  # real data: the split is part of what the study trains on
        attrs["holdout"] = holdout_for(ctx.data, ctx.holdout)
    return attrs


def open_study(opts: SweepOptions) -> tuple[optuna.Study, optuna.storages.RDBStorage, bool]:
    spec = get_spec(opts.study)
    storage = open_storage(opts.url, heartbeat=opts.heartbeat, grace=opts.grace,
                           max_retry=opts.max_retry)
    sampler = spec.sampler(opts.ctx) if spec.sampler else None
    study, created = create_or_load(opts.name, storage, direction=spec.direction, sampler=sampler)
    want = study_attrs(opts)
    if opts.claims is not None and CLAIMS_ATTR not in study.user_attrs:
        # first, before any trial can exist; a study that has trials but no registration
        # (made by an older version) is not registered after the fact
        if created or not study.get_trials(deepcopy=False):
            # the time it was written: the report checks it against the first trial's start
            at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            study.set_user_attr(CLAIMS_ATTR, {**opts.claims, REGISTERED_AT: at})
    if created:
        for k, v in want.items():
            study.set_user_attr(k, v)
    else:
        have = {k: study.user_attrs.get(k) for k in want}
        if have.get("study") is None:  # created by a process that died before writing attrs
            for k, v in want.items():
                study.set_user_attr(k, v)
        elif have != want:
            diff = [k for k in want if have[k] != want[k]]
            raise ConfigError(
                f"study {opts.name!r} in {opts.url} was created with other settings "
                f"({', '.join(diff)} differ); use the same flags, or another --study-name / --out"
            )
    return study, storage, created


def param_value(value: Any) -> Any:
    """A cell factor as an Optuna categorical choice (None, bool, int, float or str)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)  # e.g. a stride tuple: optuna stores choices as JSON scalars


def cell_params(cell: Cell) -> dict[str, Any]:
    return {k: param_value(v) for k, v in cell.params.items()}


def grid_distributions(cells: list[Cell]) -> dict[str, CategoricalDistribution]:
    """One categorical distribution per factor, its choices in the grid's order of appearance
    (a GridSampler-style search space: every analysis sees the full grid of each factor)."""
    choices: dict[str, list[Any]] = {}
    for cell in cells:
        for k, v in cell_params(cell).items():
            seen = choices.setdefault(k, [])
            if not any(type(c) is type(v) and c == v for c in seen):
                seen.append(v)
    return {k: CategoricalDistribution(v) for k, v in choices.items()}


def sync_cells(study: optuna.Study, cells: list[Cell], grid: list[Cell] | None = None) -> list[str]:
    """Enqueue the cells that have no trial yet, with their factors as params; return their keys.
    ``grid``: the whole grid when ``cells`` is a part of it (the params' distributions span
    the grid, as the workers' suggestions do)."""
    taken = {
        t.user_attrs.get("cell") for t in study.get_trials(deepcopy=False)
        if t.state in TAKEN or t.user_attrs.get("status") == TrialStatus.DIVERGED
    }
    dists = grid_distributions(grid or cells)
    added = []
    for cell in cells:
        if cell.key not in taken:
            params = cell_params(cell)
            study.add_trial(create_trial(
                state=TrialState.WAITING, params=params,
                distributions={k: dists[k] for k in params},
                system_attrs={"fixed_params": params},  # what study.enqueue_trial stores
                user_attrs={"cell": cell.key, "cell_params": dict(cell.params),
                            "reference": cell.reference, "status": TrialStatus.WAITING}))
            added.append(cell.key)
    return added


def suggest_cell(study: optuna.Study, storage: optuna.storages.BaseStorage, trial: optuna.Trial,
                 cell: Cell, dists: dict[str, CategoricalDistribution]) -> optuna.Trial:
    """Record the cell's factors through ``trial.suggest_categorical`` (the enqueued values come
    back; a trial enqueued by an older version without params gets them fixed first)."""
    params = cell_params(cell)
    fixed = storage.get_trial_system_attrs(trial._trial_id).get("fixed_params")
    if any(k not in trial.params for k in params) and not fixed:
        storage.set_trial_system_attr(trial._trial_id, "fixed_params", params)
        trial = optuna.Trial(study, trial._trial_id)  # re-reads the fixed params
    for name, value in params.items():
        got = trial.suggest_categorical(name, dists[name].choices)
        if got != value:
            raise XrayganError(f"trial {trial.number}: param {name}={got!r} does not match "
                               f"its cell {cell.key} ({value!r})")
    return trial


def prepare(opts: SweepOptions, echo: Callable[[str], None] = print) -> optuna.Study:
    """Create or join the study and enqueue what is missing (grid cells, the reference)."""
    spec = get_spec(opts.study)
    study, _, created = open_study(opts)
    fail_stale(study)
    if spec.is_grid:
        cells = selected_cells(opts)
        added = sync_cells(study, cells, spec.grid(opts.ctx))
        echo(f"{opts.name}: {len(cells)} cells, {len(added)} enqueued now, "
             f"{len(cells) - len(added)} already in {opts.url}")
    elif spec.reference is not None:
        refs = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("reference")]
        if not refs:
            study.enqueue_trial(spec.reference(opts.ctx),
                                user_attrs={"reference": True, "cell": "reference"})
        echo(f"{opts.name}: search, {len(study.trials)} trials so far in {opts.url}")
    return study


# --------------------------------------------------------------------------- workers
def fail_stale(study: optuna.Study) -> None:
    """Fail trials of dead workers (stale heartbeat); the storage's callback re-enqueues them."""
    with warnings.catch_warnings():
        # marked experimental in optuna, but the documented way to survive killed workers
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def ask(study: optuna.Study) -> optuna.Trial:
    """study.ask() without optuna's warning that storage heartbeats belong to
    Study.optimize: the workers drive trials with ask/tell and record each trial's heartbeat
    themselves (ablations/trial.py Heartbeat), which is what that loop would do."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used",
                                category=UserWarning)
        return study.ask()


def claim(study: optuna.Study, storage: optuna.storages.BaseStorage,
          only: Callable[[FrozenTrial], bool] | None = None) -> optuna.Trial | None:
    """Take the lowest-numbered WAITING trial (that ``only`` accepts), atomically."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        if only is not None and not only(t):
            continue
        try:
            if storage.set_trial_state_values(t._trial_id, state=TrialState.RUNNING):
                return optuna.Trial(study, t._trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


def duplicate_of(study: optuna.Study, trial: optuna.Trial, key: str) -> int | None:
    """Another trial that already covers cell ``key`` (only possible when two machines
    enqueued the same grid at the same moment): the lower-numbered one wins."""
    for t in study.get_trials(deepcopy=False):
        if t.number == trial.number or t.user_attrs.get("cell") != key:
            continue
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) or t.user_attrs.get("status") == TrialStatus.DIVERGED:
            return t.number
        if t.state == TrialState.RUNNING and t.number < trial.number:
            return t.number
    return None


def sweep_position(study: optuna.Study, n_cells: int) -> str:
    """``cell 3/8, sweep ETA 0:12:30``: the cells started or done, and the remaining cells'
    time at the mean wall time of the finished trials, shared by the running workers."""
    trials = study.get_trials(deepcopy=False)
    started = {t.user_attrs.get("cell") for t in trials
               if t.state in (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
               or t.user_attrs.get("status") == TrialStatus.DIVERGED}
    walls = [t.user_attrs["wall_time_s"] for t in trials
             if t.state == TrialState.COMPLETE and t.user_attrs.get("wall_time_s")]
    # the cells this study holds (a sweep with --cells enqueues part of the grid), not the grid
    n_cells = len({t.user_attrs.get("cell") for t in trials} - {None}) or n_cells
    text = f"cell {len(started)}/{n_cells}"
    if walls:
        from xraygan.progress import format_duration

        running = max(1, sum(t.state == TrialState.RUNNING for t in trials))
        left = (n_cells - len(started) + 1) * sum(walls) / len(walls) / running
        text += f", sweep ETA {format_duration(left)}"
    return text


def others_running(study: optuna.Study) -> bool:
    return bool(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def worker(opts: SweepOptions, index: int = 0, echo: Callable[[str], None] = print) -> int:
    """Run trials until the study has none left for this worker; return how many it ran."""
    spec = get_spec(opts.study)
    study, storage, _ = open_study(opts)
    opts.study_dir.mkdir(parents=True, exist_ok=True)
    tag = f"[{opts.name} w{index}]"
    env = TrialEnv(spec, opts.ctx, opts.study_dir, storage, opts.heartbeat,
                   echo=lambda s: echo(f"{tag} {s}"),
                   # K workers' bars would overwrite each other on one terminal: lines then
                   progress=(True if opts.workers == 1 else "lines") if opts.progress else False,
                   tensorboard=opts.tensorboard)
    poll = min(opts.heartbeat, 10)
    done = 0
    if spec.is_grid:
        grid = spec.grid(opts.ctx)
        cells = {c.key: c for c in grid}
        dists = grid_distributions(grid)
        while True:
            fail_stale(study)
            trial = claim(study, storage)
            if trial is None:
                if opts.wait and others_running(study):
                    time.sleep(poll)
                    continue
                break
            key = trial.user_attrs.get("cell")
            if key not in cells:
                trial.set_user_attr("status", TrialStatus.ERROR)
                trial.set_user_attr("failure", f"cell {key!r} is not in study {opts.study}")
                study.tell(trial, state=TrialState.FAIL)
                continue
            if (dup := duplicate_of(study, trial, key)) is not None:
                trial.set_user_attr("status", TrialStatus.DUPLICATE)
                trial.set_user_attr("failure", f"cell {key} is covered by trial {dup}")
                study.tell(trial, state=TrialState.FAIL)
                continue
            trial = suggest_cell(study, storage, trial, cells[key], dists)
            env.echo(f"trial {trial.number} {key}: start, {sweep_position(study, len(cells))}")
            done += _run(study, trial, cells[key], env)
        return done

    # search: the reference first (every worker waits for it), then the sampler
    env.reference = reference_attrs(study, storage, spec, env, poll)
    if spec.pruner is not None:
        study.pruner = spec.pruner(opts.ctx, env.reference)
    target = opts.ctx.trials or spec.default_trials
    while True:
        fail_stale(study)
        trials = study.get_trials(deepcopy=False)
        waiting = any(t.state == TrialState.WAITING for t in trials)
        counted = [t for t in trials if t.state in TAKEN
                   or t.user_attrs.get("status") in (TrialStatus.DIVERGED, TrialStatus.ERROR)]
        if not waiting and len(counted) >= target:
            if opts.wait and others_running(study):
                time.sleep(poll)
                continue
            break
        trial = ask(study)  # pops a WAITING trial (a retry) first, else samples a new one
        try:
            cell = spec.suggest(trial, opts.ctx)
        except XrayganError as e:  # a sampled geometry that cannot be built
            trial.set_user_attr("status", TrialStatus.ERROR)
            trial.set_user_attr("failure", f"{type(e).__name__}: {e}")
            study.tell(trial, state=TrialState.FAIL)
            continue
        done += _run(study, trial, cell, env)
    return done


def reference_attrs(study: optuna.Study, storage: optuna.storages.BaseStorage, spec: StudySpec,
                    env: TrialEnv, poll: float) -> dict[str, Any] | None:
    """Attrs of the finished reference trial; runs it when it is waiting, waits while another
    worker runs it."""
    if spec.reference is None:
        return None
    while True:
        fail_stale(study)
        refs = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("reference")]
        for t in refs:
            if t.state == TrialState.COMPLETE:
                return dict(t.user_attrs)
        if any(t.state == TrialState.WAITING for t in refs):
            trial = claim(study, storage, only=lambda t: bool(t.user_attrs.get("reference")))
            if trial is not None:
                cell = dataclasses.replace(spec.suggest(trial, env.ctx), key="reference",
                                           reference=True)
                _run(study, trial, cell, env)
            continue
        if any(t.state == TrialState.RUNNING for t in refs):
            time.sleep(poll)
            continue
        last = refs[-1] if refs else None
        why = last.user_attrs.get("failure", "unknown") if last else "it was never enqueued"
        raise XrayganError(f"{study.study_name}: the reference trial failed ({why}); "
                           "fix the cause and run the sweep again with another --study-name")


def _run(study: optuna.Study, trial: optuna.Trial, cell: Cell, env: TrialEnv) -> int:
    t0 = time.perf_counter()
    status = execute(study, trial, cell, env)
    ft = study.get_trials(deepcopy=False)[trial.number]
    value = f" {ft.user_attrs.get('objective')}={ft.value:.4g}" if ft.value is not None else ""
    why = f" ({ft.user_attrs.get('failure')})" if status != TrialStatus.COMPLETED else ""
    env.echo(f"trial {trial.number} {cell.key}: {status} in {time.perf_counter() - t0:.0f} s"
             f"{value}{why}")
    return 1


def _worker_main(opts: SweepOptions, index: int) -> None:
    tolerant_std_streams()  # a closed or broken stdout must not end a worker mid-trial
    # K workers share the machine's cores: workers x threads = cores (gan_core/process.py)
    apply_process_policy(role="sweep-worker", workers=opts.workers)
    try:
        worker(opts, index, echo=lambda s: print(s, flush=True))
    except KeyboardInterrupt as e:
        from xraygan.process import signal_exit_code

        sys.exit(signal_exit_code(getattr(e, "signal", "SIGINT")))


def run_sweep(opts: SweepOptions, echo: Callable[[str], None] = print) -> optuna.Study:
    """Prepare the study, run ``opts.workers`` workers on it, return the study."""
    if opts.workers < 1:
        raise ConfigError(f"--workers: expected >= 1, got {opts.workers}")
    prepare(opts, echo)
    if opts.workers == 1:
        worker(opts, 0, echo)
    else:
        # spawn, not fork: torch's thread pools do not survive a fork
        mp = multiprocessing.get_context("spawn")
        procs = [mp.Process(target=_worker_main, args=(opts, i), name=f"sweep-w{i}")
                 for i in range(opts.workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        bad = [p.exitcode for p in procs if p.exitcode not in (0, None)]
        stopped = {129: "SIGHUP", 130: "SIGINT", 143: "SIGTERM"}
        for code in (143, 129, 130):  # a worker stopped by a signal: the sweep stops the same way
            if code in bad:
                from xraygan.process import StopRequested

                raise StopRequested(stopped[code])
        if bad:
            study = optuna.load_study(study_name=opts.name, storage=opts.url)
            missing = unfinished_cells(study, opts)
            if missing:
                raise XrayganError(f"{len(bad)} worker(s) exited with codes {bad} and "
                                   f"{len(missing)} cell(s) did not finish ({', '.join(missing[:5])}); "
                                   "see their output, then run the sweep again to finish them")
            # another worker recovered the dead one's trials: the study is whole
            print(f"xraygan sweep: warning: {len(bad)} worker(s) exited with codes {bad}; their "
                  "trials were recovered and every cell finished", file=sys.stderr)
            return study
    return optuna.load_study(study_name=opts.name, storage=opts.url)


def unfinished_cells(study: optuna.Study, opts: SweepOptions) -> list[str]:
    """Cells of the study without a finished trial (a grid's keys; a search counts trials),
    plus any trial still RUNNING or WAITING: empty when the study is whole."""
    trials = study.get_trials(deepcopy=False)
    left = [f"trial {t.number} ({t.state.name.lower()})" for t in trials
            if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    spec = get_spec(opts.study)
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
            or t.user_attrs.get("status") in (TrialStatus.DIVERGED, TrialStatus.ERROR)]
    if spec.is_grid:
        finished = {t.user_attrs.get("cell") for t in done}
        left += [c.key for c in spec.grid(opts.ctx) if c.key not in finished]
    elif len(done) < (opts.ctx.trials or spec.default_trials):
        left.append("trials of the search")
    return left


def outcome(trial: FrozenTrial) -> str:
    """What happened to a trial, in one word: its ``status`` attr, except that a FAIL trial
    without a failure status was killed (heartbeat stale; the attrs could not be updated)."""
    status = trial.user_attrs.get("status", "")
    if trial.state == TrialState.FAIL and status not in FAILED_ON_PURPOSE:
        return "killed"
    if trial.state == TrialState.WAITING:
        return TrialStatus.WAITING
    return status or trial.state.name.lower()


def summary_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per trial: number, cell, state, status, objective, value, wall time, run folder."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        rows.append({"trial": t.number, "cell": a.get("cell", ""), "state": t.state.name,
                     "status": outcome(t), "objective": a.get("objective", ""),
                     "value": t.value, "wall_time_s": a.get("wall_time_s"),
                     "run_dir": a.get("run_dir", ""), "failure": a.get("failure", "")})
    return rows
