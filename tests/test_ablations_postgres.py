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

from ablations import QUICK, StudyContext
from ablations.runner import SweepOptions, run_sweep


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
