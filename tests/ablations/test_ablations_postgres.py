"""Two worker processes sharing one study on a real PostgreSQL server, the way a team shares
a sweep across machines. The test starts its own server (as the postgres user, on a temporary
data folder, listening on 127.0.0.1 only, on a free port) and stops it at the end."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
from optuna.trial import TrialState

from xraygan.ablations import QUICK, StudyContext
from xraygan.ablations.runner import SweepOptions, run_sweep


def _server_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    # Debian keeps the server binaries off PATH
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(*cmd: str) -> list[str]:
    return list(cmd) if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--", *cmd]


@pytest.fixture(scope="module")
def postgres_url():
    bindir = _server_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed; "
                    "apt-get install -y postgresql (.ci/run does)")
    pytest.importorskip("psycopg2", reason="psycopg2-binary (dev extra) is needed")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start the server as postgres")
    root = Path(tempfile.mkdtemp(prefix="xraygan-pg-"))
    data = root / "data"
    if os.geteuid() == 0:  # the server refuses to run as root: hand the folder to postgres
        shutil.chown(root, "postgres")
    port = _free_port()
    subprocess.run(_as_postgres(str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                                "--auth=trust", "-E", "UTF8"),
                   check=True, capture_output=True)
    subprocess.run(_as_postgres(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"),
                                "-w", "-t", "60", "-o",
                                f"-p {port} -c listen_addresses=127.0.0.1 -k {root}", "start"),
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                                    "-w", "stop"), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


TINY = QUICK.with_overrides(
    name="tiny", image_size=16, features=4, steps=10, batch_size=16, num_images=64, fid=False,
    log_every=2, sample_every=5, checkpoint_every=5, device="cpu",
)


def test_two_workers_share_a_postgres_study(postgres_url, tmp_path):
    opts = SweepOptions(study="batchnorm", ctx=StudyContext(TINY), out=tmp_path,
                        storage=postgres_url, workers=2, heartbeat=2, grace=6)
    t0 = time.monotonic()
    study = run_sweep(opts, echo=lambda s: None)
    assert time.monotonic() - t0 < 300
    assert study.study_name == "batchnorm-tiny"
    cells = Counter(t.user_attrs["cell"] for t in study.trials)
    assert cells == Counter({"bn-none": 1, "bn-d": 1, "bn-g": 1, "bn-both": 1})
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert len({t.user_attrs["pid"] for t in study.trials}) == 2
    for t in study.trials:
        assert Path(t.user_attrs["run_dir"]).parent == tmp_path / "batchnorm-tiny"
        assert t.user_attrs["peak_memory_bytes"] > 0
    # nothing is local to the study but the run folders
    assert not list(tmp_path.glob("*.db"))


# --------------------------------------------------------------------------- storage faults
# One line each, exit 2, no traceback; none of these needs a server.

def _closed_port() -> int:
    return _free_port()  # bound then released: nothing listens there


def test_unknown_scheme_names_the_flag_and_the_valid_schemes():
    from xraygan.ablations.storage import open_storage
    from xraygan.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        open_storage("bogus://x")
    assert "--storage: unknown scheme 'bogus'" in str(e.value)
    assert "sqlite" in str(e.value) and "postgresql+psycopg2" in str(e.value)
    with pytest.raises(ConfigError, match="--storage: expected an SQLAlchemy URL"):
        open_storage("studies.db")


def test_unreachable_postgres_is_one_line_with_host_and_port():
    pytest.importorskip("psycopg2")
    from xraygan.ablations.storage import open_storage
    from xraygan.errors import StorageError

    port = _closed_port()
    t0 = time.monotonic()
    with pytest.raises(StorageError) as e:
        open_storage(f"postgresql+psycopg2://u:secret@127.0.0.1:{port}/db")
    msg = str(e.value)
    assert f"cannot connect to 127.0.0.1:{port}" in msg and "refused" in msg.lower()
    assert "\n" not in msg and "secret" not in msg
    assert time.monotonic() - t0 < 30


def test_corrupt_sqlite_study_names_the_file(tmp_path):
    from xraygan.ablations.storage import open_storage
    from xraygan.errors import StorageError

    junk = tmp_path / "study.db"
    junk.write_bytes(b"not a database" * 100)
    with pytest.raises(StorageError, match=f"{junk} is not an SQLite database"):
        open_storage(f"sqlite:///{junk}")
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)
    with pytest.raises(StorageError, match=f"{damaged} is not a usable SQLite study database"):
        open_storage(f"sqlite:///{damaged}")
    folder = tmp_path / "adir.db"
    folder.mkdir()
    with pytest.raises(StorageError, match="is a folder"):
        open_storage(f"sqlite:///{folder}")


def test_worker_options_are_checked():
    from xraygan.ablations.storage import check_worker_options, open_storage
    from xraygan.errors import ConfigError

    with pytest.raises(ConfigError, match="--grace: expected a positive number of seconds, got -1"):
        check_worker_options(30, -1, 2)
    with pytest.raises(ConfigError, match="--heartbeat"):
        open_storage("sqlite:///x.db", heartbeat=0)
    with pytest.raises(ConfigError, match="--max-retry"):
        check_worker_options(30, 120, -1)


def test_cli_storage_faults_are_one_line(tmp_path, capsys):
    from xraygan.cli import main

    for argv, text in (
        (["--storage", "bogus://x"], "unknown scheme 'bogus'"),
        (["--grace", "-1"], "--grace"),
        (["--storage", f"sqlite:///{tmp_path / 'junk.db'}"], "is not an SQLite database"),
    ):
        (tmp_path / "junk.db").write_bytes(b"junk" * 64)
        code = main(["sweep", "batchnorm", "--out", str(tmp_path), *argv])
        err = capsys.readouterr().err
        assert code == 2 and text in err and "Traceback" not in err, (argv, err)
        assert len(err.strip().splitlines()) == 1
