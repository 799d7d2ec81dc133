"""Readers and writers at the boundary: signals, closed or broken stdout, OS errors a user
causes, a study without a completed trial, a sweep whose dead worker was recovered.

Contract: exit 0 (done), 2 (the user's input or machine), 3 (diverged / every trial failed),
129/130/143 (stopped by SIGHUP/SIGINT/SIGTERM, checkpoint and summary written); never a
traceback; nothing finished lost.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fuzz_helpers import run_main

from xraygan import runs
from xraygan.errors import from_os_error

TINY_TRAIN = ["train", "--image-size", "16", "--features", "4", "--batch-size", "4",
              "--num-images", "16", "--no-eval", "--no-progress", "--sample-every", "0"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "XRAYGAN_THREADS": "1"}


# ------------------------------------------------------------------ signals
def signal_after_checkpoint(argv: list[str], root: Path, pattern: str,
                            sig: int) -> tuple[int, str, str]:
    """Run ``xraygan ARGV``, send ``sig`` once a checkpoint matching ``root/pattern`` exists;
    (exit code, stdout, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "xraygan", *argv], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not list(root.glob(pattern)):
            time.sleep(0.2)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=180)
    finally:
        proc.kill()
    return proc.returncode, out, err


@pytest.mark.parametrize("sig, code", [(signal.SIGHUP, 129), (signal.SIGTERM, 143)])
def test_hangup_and_term_checkpoint_and_exit_128_plus_signal(tmp_path, sig, code):
    got, out, err = signal_after_checkpoint(
        [*TINY_TRAIN, "--steps", "100000", "--checkpoint-every", "5", "--out", str(tmp_path)],
        tmp_path, "*/checkpoints/last.pt", sig)
    assert got == code, err[-2000:]
    assert "Traceback" not in err
    run = next(tmp_path.glob("0*"))
    summary = runs.read_summary(run)
    assert summary["status"] == "interrupted" and summary["step"] > 0
    assert runs.checkpoint_path(run).is_file() and f"xraygan train --resume {run}" in out


# ------------------------------------------------------------------ stdout
def test_broken_pipe_finishes_the_command_quietly(tmp_path):
    """The reader went away before the first line (``| head -n 0``): the command still does
    its work, writes its files, exits 0, and prints no BrokenPipeError."""
    proc = subprocess.Popen([sys.executable, "-m", "xraygan", "data", "preview", "phantom", "--image-size",
                             "16", "--count", "4", "--png", str(tmp_path / "p.png")],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the pipe's reader is gone: every write gets EPIPE
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert (tmp_path / "p.png").stat().st_size > 0


def test_closed_stdout_does_not_hand_fd_1_to_a_file(tmp_path):
    """Started with descriptor 1 closed, the first file opened would become stdout and take
    every print: the run folder's files must hold only their own contents."""
    cmd = " ".join([sys.executable, "-m", "xraygan", *TINY_TRAIN, "--steps", "3", "--out",
                    str(tmp_path), "--json", str(tmp_path / "r.json")]) + " >&-"
    done = subprocess.run(["bash", "-c", cmd], env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    run = next(tmp_path.glob("0*"))
    json.loads((run / "config.json").read_text())
    assert runs.read_summary(run)["status"] == "completed"
    assert json.loads((tmp_path / "r.json").read_text())["status"] == "completed"


def test_tolerant_stream_drops_output_after_epipe():
    from xraygan.safeio import TolerantStream

    class Pipe:
        encoding = "utf-8"

        def __init__(self):
            self.calls = 0

        def write(self, text):
            self.calls += 1
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    pipe = Pipe()
    s = TolerantStream(pipe)
    assert s.write("a\n") == 2 and s.broken
    s.write("b\n")
    s.flush()
    assert pipe.calls == 1  # nothing more was tried after the reader left


def test_unencodable_names_are_escaped_not_raised():
    import io

    from xraygan.safeio import TolerantStream

    raw = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    s = TolerantStream(raw)
    s.write("run folder: /data/out\udcff\n")  # a surrogate-escaped byte from a Latin-1 name
    raw.flush()
    assert b"out\\udcff" in raw.buffer.getvalue()


# ------------------------------------------------------------------ OS errors
@pytest.mark.parametrize("code, words", [
    (errno.EROFS, "read-only file system"), (errno.ENOSPC, "disk full"),
    (errno.EDQUOT, "quota"), (errno.EACCES, "permission denied"), (errno.EIO, "input/output"),
    (errno.ENAMETOOLONG, "too long"), (errno.EMFILE, "ulimit"),
])
def test_os_errors_a_user_causes_name_the_file(code, words):
    e = OSError(code, os.strerror(code), "/runs/0001/summary.json")
    if code == errno.EACCES:
        e = PermissionError(code, os.strerror(code), "/runs/0001/summary.json")
    user = from_os_error(e)
    assert user is not None and user.exit_code == 2
    assert "/runs/0001/summary.json" in str(user) and words in str(user)


def test_read_only_run_folder_is_exit_2_naming_the_file(tmp_path, monkeypatch):
    real = os.open

    def read_only(path, flags, *a, **k):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and str(tmp_path) in str(path):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", read_only)
    code, _, err = run_main([*TINY_TRAIN, "--steps", "2", "--out", str(tmp_path)])
    assert code == 2 and "read-only file system" in err and str(tmp_path) in err, err


def test_non_utf8_file_names_exit_2_or_0_without_traceback(tmp_path):
    bad = os.fsdecode(bytes(tmp_path) + b"/c\xff.json")  # a Latin-1 name on a UTF-8 system
    with open(os.fsencode(bad), "wb") as f:
        f.write(b"{")
    code, _, err = run_main(["train", "--config", bad, "--dry-run"])
    assert code == 2 and "not valid JSON" in err
    out = bytes(tmp_path) + b"/out\xff"  # stdout is strict UTF-8: the run folder must print
    done = subprocess.run([os.fsencode(sys.executable), b"-m", b"xraygan",
                           *(a.encode() for a in TINY_TRAIN), b"--steps", b"1", b"--out", out],
                          env=ENV, capture_output=True, timeout=300)
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr[-2000:]
    assert re.search(rb"run folder +" + re.escape(out), done.stdout)
    assert runs.read_summary(next(Path(os.fsdecode(out)).glob("0*")))["status"] == "completed"


# ------------------------------------------------------------------ reports and sweeps
@pytest.mark.parametrize("kind", ["table1", "table3", "memory", "seeds", "none"])
def test_report_on_a_study_without_a_completed_trial_says_so(tmp_path, kind):
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from report_fixtures import make_study

    url = f"sqlite:///{tmp_path / 's.db'}"
    trials = [] if kind == "none" else [
        {"cell": "adas-elu-s0", "status": "diverged"},
        {"cell": "adam-elu-s0", "status": "error", "failure": "DataError: no images"}]
    make_study(url, "s", "table1" if kind == "none" else kind, trials)
    code, out, err = run_main(["report", "s", "--storage", url, "--out", str(tmp_path / "r"),
                               "--no-figures"])
    assert code == 0, err
    page = (tmp_path / "r" / "s.md").read_text()
    assert "none completed" in page
    if trials:
        assert "DataError: no images" in page and "diverged" in page


def test_recovered_sweep_whose_cells_all_completed_exits_0(tmp_path, monkeypatch, capsys):
    import optuna
    from optuna.trial import TrialState, create_trial

    from xraygan.ablations import QUICK, StudyContext, load_studies, runner

    load_studies()
    opts = runner.SweepOptions(study="batchnorm", ctx=StudyContext(QUICK), out=tmp_path, workers=2)
    keys = [c.key for c in runner.get_spec("batchnorm").grid(opts.ctx)]

    def prepare(o, echo):
        study = optuna.create_study(study_name=o.name, storage=o.url)
        study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={"cell": keys[0],
                                                                        "status": "running"}))
        for k in keys:  # the dead worker's cell was retried by the other worker
            study.add_trial(create_trial(state=TrialState.COMPLETE, value=1.0,
                                         user_attrs={"cell": k, "status": "completed"}))

    class DeadWorker:
        def __init__(self, target, args, name):
            self.exitcode = -9 if args[1] == 0 else 0

        def start(self):
            pass

        def join(self):
            pass

    class Ctx:
        Process = DeadWorker

    monkeypatch.setattr(runner, "prepare", prepare)
    monkeypatch.setattr(runner.multiprocessing, "get_context", lambda _: Ctx)
    study = runner.run_sweep(opts, echo=lambda s: None)
    assert "warning" in capsys.readouterr().err
    assert len(study.trials) == len(keys) + 1
    assert runner.unfinished_cells(study, opts) == []

    # one cell missing: still an error naming it
    opts2 = runner.SweepOptions(study="batchnorm", ctx=StudyContext(QUICK), out=tmp_path / "b",
                                workers=2)

    def prepare_partial(o, echo):
        study = optuna.create_study(study_name=o.name, storage=o.url)
        for k in keys[1:]:
            study.add_trial(create_trial(state=TrialState.COMPLETE, value=1.0,
                                         user_attrs={"cell": k, "status": "completed"}))

    (tmp_path / "b").mkdir()
    monkeypatch.setattr(runner, "prepare", prepare_partial)
    from xraygan.errors import XrayganError

    with pytest.raises(XrayganError, match=keys[0]):
        runner.run_sweep(opts2, echo=lambda s: None)


def test_storage_of_another_application_is_refused_unchanged(tmp_path):
    import hashlib
    import sqlite3

    from xraygan.ablations.storage import open_storage
    from xraygan.errors import StorageError

    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table users (id integer primary key, name text)")
        conn.execute("insert into users (name) values ('alice')")
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    with pytest.raises(StorageError, match=r"another application's tables \(users\)"):
        open_storage(f"sqlite:///{db}")
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    code, _, err = run_main(["sweep", "batchnorm", "--storage", f"sqlite:///{db}", "--out",
                             str(tmp_path / "o"), "--steps", "1", "--no-estimate"])
    assert code == 2 and "another application's tables" in err
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    # an empty file and an Optuna storage still open
    (tmp_path / "empty.db").write_bytes(b"")
    open_storage(f"sqlite:///{tmp_path / 'empty.db'}")
    open_storage(f"sqlite:///{tmp_path / 'empty.db'}")


@pytest.mark.parametrize("name, text", [
    ("m.csv", "x,y\n1,2\n"),
    ("m.json", '{"rows": [{"a": 1}]}'),
    ("m.json", '{"rows": [{"image_size": "x", "features": 8, "batch_size": 4, '
               '"batchnorm": "d", "optimizer": "adam"}]}'),
    ("m.json", '{"rows": [{"image_size": 16, "features": 8, "batch_size": 4, '
               '"batchnorm": "d", "optimizer": "adam", "estimate_bytes": -5}]}'),
    ("m.json", '{"rows": [7]}'),
    ("m.json", "\udcff"),
    ("m.csv", '"unclosed\n'),
])
def test_memory_files_of_the_wrong_shape_are_exit_2(tmp_path, name, text):
    f = tmp_path / name
    f.write_bytes(text.encode("utf-8", "surrogateescape"))
    code, _, err = run_main(["report", "--memory", str(f), "--out", str(tmp_path / "r"),
                             "--no-figures"])
    assert code == 2 and name in err, err


@pytest.mark.slow
def test_sweep_started_with_stdout_closed_completes_its_trials(tmp_path):
    """Two spawned workers inherit a closed descriptor 1: no trial may be left RUNNING."""
    import optuna

    flags = ["sweep", "batchnorm", "--out", str(tmp_path), "--image-size", "16", "--features",
             "4", "--batch-size", "16", "--num-images", "64", "--no-fid", "--sample-every", "6",
             "--device", "cpu", "--steps", "4", "--no-estimate", "--workers", "2"]
    cmd = " ".join([sys.executable, "-m", "xraygan", *flags]) + " >&-"
    done = subprocess.run(["bash", "-c", cmd], env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    study = optuna.load_study(study_name="batchnorm-quick",
                              storage=f"sqlite:///{tmp_path / 'batchnorm-quick.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4


def test_disk_full_names_the_file_being_written(tmp_path, monkeypatch):
    real = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    target = tmp_path / "summary.json"
    with pytest.raises(OSError) as e:
        runs.atomic_write_json(target, {"a": 1})
    monkeypatch.setattr(os, "fsync", real)
    user = from_os_error(e.value)
    assert "disk full while writing" in str(user) and str(target) in str(user)
    assert list(tmp_path.iterdir()) == []  # no temp file left behind


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sweep_stopped_by_a_signal_requeues_and_exits_128_plus_signal(tmp_path, sig, code):
    import optuna

    flags = ["sweep", "batchnorm", "--out", str(tmp_path), "--image-size", "16", "--features",
             "4", "--batch-size", "16", "--num-images", "64", "--no-fid", "--sample-every", "0",
             "--device", "cpu", "--steps", "100000", "--checkpoint-every", "5", "--no-estimate"]
    got, _, err = signal_after_checkpoint(flags, tmp_path, "*/*/checkpoints/last.pt", sig)
    assert got == code and "Traceback" not in err, err[-2000:]
    study = optuna.load_study(study_name="batchnorm-quick",
                              storage=f"sqlite:///{tmp_path / 'batchnorm-quick.db'}")
    states = [t.state.name for t in study.trials]
    assert "RUNNING" not in states and "WAITING" in states  # checkpointed and queued again
