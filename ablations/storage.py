"""Where studies live: an SQLite file per study by default, any SQLAlchemy URL otherwise
(``postgresql+psycopg2://user@host:5432/db`` to share one study across machines).

Killed workers: every running trial sends a heartbeat (a row in the storage, every
``heartbeat`` seconds, from a thread of the worker). A trial whose heartbeat is older than
``grace`` seconds belongs to a dead worker: the next worker that looks
(``optuna.storages.fail_stale_trials``) marks it FAIL and :class:`RetryKilledTrial` enqueues
a copy of it, user attrs included, so the copy finds the killed trial's run folder and
resumes from its last checkpoint.

Storage faults are user errors with one line each (StorageError, exit 2): an unknown URL
scheme names ``--storage`` and the valid ones, an unreachable server its host:port and the
driver's reason (after at most :data:`CONNECT_TIMEOUT_S`), a file that is not an SQLite
database its path.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState, create_trial

from xraygan.errors import ConfigError, StorageError
from xraygan.trials import TrialStatus

from .liveness import GRACE_S, HEARTBEAT_S, MAX_RETRY

DEFAULT_OUT = "studies"
CONNECT_TIMEOUT_S = 10  # a server that does not answer in 10 s is down, not slow
SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg2", "postgresql+psycopg", "mysql",
           "mysql+pymysql")
"""URL schemes a study storage may use (SQLAlchemy dialect[+driver]); sqlite needs nothing
installed, PostgreSQL psycopg2-binary (the dev extra), MySQL PyMySQL."""
_DRIVERS = {"psycopg2": "psycopg2-binary", "psycopg": "psycopg[binary]", "MySQLdb": "mysqlclient",
            "pymysql": "PyMySQL"}  # module -> the package that provides it


def check_worker_options(heartbeat: int, grace: int, max_retry: int) -> None:
    """Heartbeat and grace are positive seconds, retries >= 0; errors name the flag."""
    for flag, value, low in (("--heartbeat", heartbeat, 1), ("--grace", grace, 1),
                             ("--max-retry", max_retry, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            what = "a positive number of seconds" if low else "an integer >= 0"
            raise ConfigError(f"{flag}: expected {what}, got {value!r}")


def default_storage(out: str | Path, study_name: str) -> str:
    """``sqlite:///OUT/STUDY.db``, beside the folder of the study's runs (``OUT/STUDY/``)."""
    return f"sqlite:///{(Path(out) / f'{study_name}.db').resolve()}"


def open_storage(
    url: str, *, heartbeat: int = HEARTBEAT_S, grace: int = GRACE_S, max_retry: int = MAX_RETRY
) -> optuna.storages.RDBStorage:
    """An RDBStorage on ``url`` with heartbeats and the killed-trial retry callback.

    Raises ConfigError for a malformed URL or worker option, StorageError when the storage
    cannot be opened (no traceback: the message is the fix)."""
    check_worker_options(heartbeat, grace, max_retry)
    parsed = _parse_url(url)
    scheme = parsed.drivername
    engine_kwargs: dict[str, Any] = {}
    if scheme.startswith("sqlite"):
        _prepare_sqlite(parsed.database)
        # several worker processes write one file: wait for the lock instead of failing;
        # transactions are begun by _serialize_sqlite, not implicitly by pysqlite
        engine_kwargs["connect_args"] = {"timeout": 300, "isolation_level": None}
    else:
        engine_kwargs["pool_pre_ping"] = True  # a server restart must not kill long sweeps
        # libpq / MySQL drivers otherwise wait for the OS TCP timeout (minutes) on a dead host
        engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    check_not_foreign(url, parsed, engine_kwargs)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat,
                grace_period=grace, heartbeat_stale_trial_callback=RetryKilledTrial(max_retry),
            )
    except ImportError as e:  # optuna re-raises the driver's ModuleNotFoundError as its cause
        missing = getattr(e.__cause__, "name", None) or getattr(e, "name", None) or "its module"
        raise StorageError(
            f"--storage: the {scheme} driver is not installed (no module {missing}); "
            f"pip install {_DRIVERS.get(missing, missing)}"
            + (", or name an installed driver (postgresql+psycopg2://...)"
               if scheme == "postgresql" else "")
        ) from None
    except sqlalchemy.exc.DBAPIError as e:
        raise StorageError(_describe_db_error(parsed, e)) from None
    except sqlalchemy.exc.SQLAlchemyError as e:
        raise StorageError(f"--storage: cannot open {_redacted(parsed)} ({_first_line(e)})") from None
    except RuntimeError as e:  # optuna: the study tables are of another (newer) optuna version
        raise StorageError(f"--storage: {_redacted(parsed)}: {_first_line(e)}") from None
    if scheme.startswith("sqlite"):
        _serialize_sqlite(storage.engine)
    return storage


OPTUNA_TABLES = frozenset({"studies", "version_info"})
"""Tables every Optuna RDB storage has; a database with tables but not these belongs to
another application, and Optuna would add its tables to it."""


def check_not_foreign(url: str, parsed: sqlalchemy.engine.URL, engine_kwargs: dict) -> None:
    """Refuse a database that is neither empty nor an Optuna storage, before Optuna creates
    its tables in it (pointing --storage at another application's SQLite file by mistake)."""
    if parsed.drivername.startswith("sqlite"):
        path = Path(parsed.database)
        if not path.is_file() or path.stat().st_size == 0:
            return  # new or empty: Optuna makes it a storage
    try:
        engine = sqlalchemy.create_engine(url, **engine_kwargs)
    except Exception:  # a missing driver or bad URL: RDBStorage says it properly
        return
    try:
        with engine.connect() as conn:
            tables = set(sqlalchemy.inspect(conn).get_table_names())
    except sqlalchemy.exc.SQLAlchemyError:
        return  # cannot connect: RDBStorage reports why
    finally:
        engine.dispose()
    if tables and not OPTUNA_TABLES <= tables:
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise StorageError(f"--storage: {_redacted(parsed)} holds another application's tables "
                           f"({shown}), not an Optuna study storage; it is left unchanged. Name "
                           "a new file or an empty database")


def _parse_url(url: str) -> sqlalchemy.engine.URL:
    """The URL, with its scheme checked against SCHEMES before any driver is imported."""
    example = "sqlite:///studies/x.db or postgresql+psycopg2://user@host:5432/db"
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(f"--storage: expected an SQLAlchemy URL such as {example}, got {url!r}")
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError) as e:
        raise ConfigError(f"--storage: malformed URL {url!r} ({_first_line(e)}); expected e.g. "
                          f"{example}") from None
    if parsed.drivername not in SCHEMES:
        raise ConfigError(f"--storage: unknown scheme {parsed.drivername!r} in {url!r}; valid "
                          f"schemes: {', '.join(SCHEMES)} (e.g. {example})")
    if parsed.drivername == "sqlite" and not parsed.database:
        raise ConfigError("--storage: sqlite needs a file (sqlite:///PATH.db); an in-memory "
                          "database cannot be shared by workers")
    return parsed


def _prepare_sqlite(database: str) -> None:
    """Create the file's folder; a file that exists must be an SQLite database."""
    path = Path(database)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError(f"--storage: cannot create the folder of {path} ({e.strerror})") from None
    if path.is_dir():
        raise StorageError(f"--storage: {path} is a folder, expected an SQLite file")
    if path.is_file() and path.stat().st_size > 0:
        try:
            with open(path, "rb") as f:
                head = f.read(16)
        except OSError as e:
            raise StorageError(f"--storage: cannot read {path} ({e.strerror})") from None
        if head != b"SQLite format 3\x00":
            raise StorageError(f"--storage: {path} is not an SQLite database (corrupt or another "
                               "kind of file); move it away or name another file")


def _describe_db_error(parsed: sqlalchemy.engine.URL, e: sqlalchemy.exc.DBAPIError) -> str:
    reason = _first_line(e.orig) if e.orig is not None else _first_line(e)
    if parsed.drivername.startswith("sqlite"):
        return (f"--storage: {parsed.database} is not a usable SQLite study database "
                f"({reason}); move it away or name another file")
    where = f"{parsed.host or 'localhost'}:{parsed.port or _default_port(parsed.drivername)}"
    if isinstance(e, sqlalchemy.exc.OperationalError):
        return f"--storage: cannot connect to {where} ({reason})"
    return f"--storage: {_redacted(parsed)} at {where}: {reason}"


def _default_port(scheme: str) -> int:
    return 5432 if scheme.startswith("postgresql") else 3306


def _redacted(parsed: sqlalchemy.engine.URL) -> str:
    return parsed.render_as_string(hide_password=True)


def _first_line(e: object) -> str:
    text = str(e).strip()
    return text.splitlines()[0].strip() if text else type(e).__name__


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
             "status": TrialStatus.WAITING}
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
