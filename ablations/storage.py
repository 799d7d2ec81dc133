"""Where studies live: an SQLite file per study by default, any SQLAlchemy URL otherwise
(``postgresql+psycopg2://user@host:5432/db`` to share one study across machines).

Killed workers: every running trial sends a heartbeat (a row in the storage, every
``heartbeat`` seconds, from a thread of the worker). A trial whose heartbeat is older than
``grace`` seconds belongs to a dead worker: the next worker that looks
(``optuna.storages.fail_stale_trials``) marks it FAIL and :class:`RetryKilledTrial` enqueues
a copy of it, user attrs included, so the copy finds the killed trial's run folder and
resumes from its last checkpoint.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState, create_trial

from gan_core.errors import ConfigError

HEARTBEAT_S = 30
GRACE_S = 120  # four missed heartbeats: a busy machine is not a dead one
MAX_RETRY = 2  # a trial killed three times is left failed (something kills it on purpose)
DEFAULT_OUT = "studies"


def default_storage(out: str | Path, study_name: str) -> str:
    """``sqlite:///OUT/STUDY.db``, beside the folder of the study's runs (``OUT/STUDY/``)."""
    return f"sqlite:///{(Path(out) / f'{study_name}.db').resolve()}"


def open_storage(
    url: str, *, heartbeat: int = HEARTBEAT_S, grace: int = GRACE_S, max_retry: int = MAX_RETRY
) -> optuna.storages.RDBStorage:
    """An RDBStorage on ``url`` with heartbeats and the killed-trial retry callback."""
    if "://" not in url:
        raise ConfigError(
            f"--storage: expected an SQLAlchemy URL such as sqlite:///studies/x.db or "
            f"postgresql+psycopg2://user@host:5432/db, got {url!r}"
        )
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        Path(url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        # several worker processes write one file: wait for the lock instead of failing;
        # transactions are begun by _serialize_sqlite, not implicitly by pysqlite
        engine_kwargs["connect_args"] = {"timeout": 300, "isolation_level": None}
    else:
        engine_kwargs["pool_pre_ping"] = True  # a server restart must not kill long sweeps
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(
            url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat, grace_period=grace,
            heartbeat_stale_trial_callback=RetryKilledTrial(max_retry),
        )
    if url.startswith("sqlite"):
        _serialize_sqlite(storage.engine)
    return storage


def _serialize_sqlite(engine: Any) -> None:
    """Make every SQLite transaction take the write lock when it begins.

    pysqlite opens a transaction only at the first write, so optuna's claim of a WAITING trial
    (read the state, then write RUNNING) is not atomic: two workers could both read WAITING and
    both run the same grid cell. ``BEGIN IMMEDIATE`` (SQLAlchemy's documented SQLite recipe)
    serializes read-check-write; PostgreSQL gets the same from optuna's SELECT ... FOR UPDATE.
    """
    @sqlalchemy.event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class RetryKilledTrial:
    """Enqueue a copy of a trial whose worker died (heartbeat stale), at most ``max_retry``
    times per original trial. Like optuna's RetryHeartbeatStaleTrialCallback, but the history
    goes into user attrs (``retry_of``, ``retry_history``) where reports read them."""

    def __init__(self, max_retry: int = MAX_RETRY) -> None:
        self.max_retry = max_retry

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        requeue(study, trial, max_retry=self.max_retry)


def requeue(study: optuna.Study, trial: FrozenTrial, *, max_retry: int | None = None) -> bool:
    """Add a WAITING copy of ``trial`` (params and user attrs). False when retries are used up."""
    history = [*trial.user_attrs.get("retry_history", []), trial.number]
    if max_retry is not None and len(history) > max_retry:
        return False
    attrs = {**trial.user_attrs, "retry_of": trial.number, "retry_history": history,
             "status": "waiting"}
    for stale in ("failure", "metrics"):
        attrs.pop(stale, None)
    study.add_trial(create_trial(
        state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
        user_attrs=attrs,
    ))
    return True


def create_or_load(
    name: str, storage: optuna.storages.BaseStorage, *, direction: str,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> tuple[optuna.Study, bool]:
    """(study, created): creating is atomic in the database (unique study name), so exactly one
    of several workers or machines starting together gets ``created`` True."""
    pruner = pruner or optuna.pruners.NopPruner()
    try:
        study = optuna.create_study(study_name=name, storage=storage, direction=direction,
                                    sampler=sampler, pruner=pruner)
        return study, True
    except optuna.exceptions.DuplicatedStudyError:
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler,
                                 pruner=pruner), False
