"""Run-folder integrity: the writer's lock, failed starts, resume targets, disk full, the NaN
guard over parameters and buffers, corrupt run files and checkpoints."""

import errno
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from xraygan import budget, guard, runs
from xraygan.checkpoint import InvalidCheckpoint, load_checkpoint, save_checkpoint
from xraygan.cli import main
from xraygan.config import DataConfig, ExperimentConfig, ModelConfig, OptimConfig, TrainConfig
from xraygan.errors import (
    CheckpointError,
    ConfigError,
    DiskFullError,
    RunFolderError,
    TrainingDiverged,
    XrayganError,
)
from xraygan.sampling import load_generator
from xraygan.train import begin, run_loop, setup, train

ROOT = Path(__file__).resolve().parents[2]


def tiny(steps=6, **train_kw) -> ExperimentConfig:
    return ExperimentConfig(
        name="tiny",
        model=ModelConfig(image_size=16, g_features=8, d_features=8, latent_dim=16),
        optim=OptimConfig(name="adam"),
        data=DataConfig(source="phantom", num_images=32),
        train=TrainConfig(**{"steps": steps, "batch_size": 8, "device": "cpu", "sample_every": 0,
                             "checkpoint_every": 0, "num_samples": 16, **train_kw}),
    )


def finished_run(tmp_path, steps=6, **kw) -> Path:
    return train(tiny(steps, **kw), runs_root=tmp_path, progress=False, evaluate=False).run_dir


def cli(*argv):
    return main([*argv])


def one_line(err: str) -> bool:
    return "Traceback" not in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- the lock
def test_a_second_writer_is_refused_with_pid_and_host(tmp_path):
    run = tmp_path / "r"
    with runs.lock_run(run) as lock:
        assert lock.held
        assert (run / runs.LOCK).read_text().split() == [str(os.getpid()), socket.gethostname()]
        with pytest.raises(runs.RunInUse) as e:
            runs.lock_run(run)
        assert f"run {run} is in use by PID {os.getpid()} on {socket.gethostname()}" in str(e.value)
        assert isinstance(e.value, RunFolderError)
    with runs.lock_run(run):  # released: free again
        pass
    assert not (run / runs.LOCK).exists()  # a released lock leaves no file behind


def test_a_lock_taken_on_a_removed_lock_file_is_retaken_on_the_new_one(tmp_path, monkeypatch):
    # a writer that opened the lock file just before its holder removed it must not hold a lock
    # on the orphaned inode while a third writer locks the new file
    run = tmp_path / "r"
    run.mkdir()
    opened = []
    real_open = os.open

    def open_then_replace(path, *a, **k):
        fd = real_open(path, *a, **k)
        if str(path).endswith(runs.LOCK):
            opened.append(fd)
            if len(opened) == 1:
                os.unlink(path)  # the holder released between our open and our flock
        return fd

    monkeypatch.setattr(runs.os, "open", open_then_replace)
    with runs.lock_run(run) as lock:
        assert len(opened) == 2  # the orphaned file was dropped and the new one locked
        assert os.fstat(lock._fd).st_ino == os.stat(run / runs.LOCK).st_ino
        with pytest.raises(runs.RunInUse):
            runs.lock_run(run)


def test_lock_takes_away_only_dead_writers_temp_files(tmp_path):
    run = tmp_path / "r"
    (run / runs.CHECKPOINTS).mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)  # exited: its PID is free
    orphan = run / runs.CHECKPOINTS / f".last.pt.{dead_pid}-ab12cd_3.tmp"
    live = run / f".summary.json.{os.getppid()}-zz99.tmp"  # a live process's (our parent)
    legacy_old = run / ".metrics.csv.q1w2e3r4.tmp"
    legacy_new = run / ".config.json.a1b2c3d4.tmp"
    for f in (orphan, live, legacy_old, legacy_new):
        f.write_bytes(b"partial")
    old = time.time() - 2 * 3600
    os.utime(legacy_old, (old, old))
    with runs.lock_run(run) as lock:
        assert sorted(p.name for p in lock.removed) == sorted([orphan.name, legacy_old.name])
    assert not orphan.exists() and not legacy_old.exists()
    assert live.exists() and legacy_new.exists()


def test_atomic_writes_name_their_writer(tmp_path, monkeypatch):
    seen = []
    real = os.replace

    def spy(src, dst):
        seen.append(Path(src).name)
        return real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    runs.atomic_write_text(tmp_path / "x.json", "{}")
    assert runs._TEMP_NAME.match(seen[0]) and f".{os.getpid()}-" in seen[0]


def _wait_for(predicate, timeout, what):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_writers_and_kill_9_never_lose_a_row(tmp_path, capsys):
    """A second `train --resume` on a run being trained is refused (exit 2, PID of the holder);
    the holder killed with SIGKILL leaves the lock free and its temp files are cleaned; the
    resumed log holds every step exactly once."""
    run = finished_run(tmp_path, steps=2, checkpoint_every=10)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    writer = subprocess.Popen(
        [sys.executable, "-m", "xraygan", "train", "--resume", str(run), "--steps", "100000",
         "--no-progress", "--no-eval"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        lock_file = run / runs.LOCK
        _wait_for(lambda: lock_file.is_file() and lock_file.read_text().split()[:1] == [str(writer.pid)],
                  180, "the writer to take the lock")
        code = cli("train", "--resume", str(run), "--steps", "100000", "--no-progress", "--no-eval")
        err = capsys.readouterr().err
        assert code == 2 and one_line(err)
        assert f"is in use by PID {writer.pid} on {socket.gethostname()}" in err
        # summary.json follows every checkpoint
        _wait_for(lambda: (runs.read_summary_lenient(run).get("last_checkpoint_step") or 0) >= 20,
                  240, "two checkpoints of the writer")
        orphan = run / runs.CHECKPOINTS / f".last.pt.{writer.pid}-dead99.tmp"
        orphan.write_bytes(b"half a checkpoint")
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=60)
    ckpt_step = load_checkpoint(runs.checkpoint_path(run))["step"]
    assert ckpt_step >= 20 and ckpt_step % 10 == 0
    result = train(tiny(ckpt_step + 5, checkpoint_every=10), run_dir=run, resume=True,
                   progress=False, evaluate=False)
    assert result.status == "completed" and not orphan.exists()
    steps = runs.read_metrics(run)["step"].tolist()
    assert steps == list(range(1, ckpt_step + 6))


# --------------------------------------------------------------------------- failed starts
@pytest.mark.parametrize("bad", ["batch", "optimizer", "bomb"])
def test_failed_starts_leave_no_run_folder(tmp_path, monkeypatch, bad):
    cfg = tiny()
    if bad == "batch":
        cfg = tiny(batch_size=64)  # 32 images
    elif bad == "optimizer":
        cfg = ExperimentConfig(**{**cfg.__dict__, "optim": OptimConfig(name="nope")})
    else:
        monkeypatch.setenv(budget.MEMORY_CAP_ENV, "1MiB")
    with pytest.raises(XrayganError):
        train(cfg, runs_root=tmp_path / "runs", progress=False, evaluate=False)
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


def test_metrics_cli_skips_folders_with_only_a_config(tmp_path, capsys):
    run = finished_run(tmp_path)
    runs.write_config(tmp_path / "0099-failed", tiny())  # what older versions left behind
    skipped = []
    assert runs.find_runs([tmp_path], skipped) == [run]
    assert skipped == [tmp_path / "0099-failed"]


# --------------------------------------------------------------------------- resume targets
def test_resume_to_fewer_steps_than_done_is_an_error_and_changes_nothing(tmp_path, capsys):
    run = finished_run(tmp_path, steps=6)
    config = run / runs.CONFIG
    before = (config.read_bytes(), config.stat().st_mtime_ns)
    summary = (run / runs.SUMMARY).read_bytes()
    code = cli("train", "--resume", str(run), "--steps", "3", "--no-progress", "--no-eval")
    err = capsys.readouterr().err
    assert code == 2 and one_line(err) and "already at step 6" in err and "--steps 3" in err
    assert (config.read_bytes(), config.stat().st_mtime_ns) == before
    assert (run / runs.SUMMARY).read_bytes() == summary
    # a resume to the same target is a no-op that leaves config.json alone too
    assert cli("train", "--resume", str(run), "--no-progress", "--no-eval") == 0
    assert (config.read_bytes(), config.stat().st_mtime_ns) == before
    # an explicit new target is the one change allowed
    assert cli("train", "--resume", str(run), "--steps", "8", "--no-progress", "--no-eval") == 0
    assert runs.read_config(run).train.steps == 8
    assert runs.read_metrics(run)["step"].tolist() == list(range(1, 9))


# --------------------------------------------------------------------------- disk full
def _fill_disk_at_checkpoint(monkeypatch, nth: int):
    """ENOSPC from the nth checkpoint write on (temp file + rename, as a full disk fails)."""
    real = runs.atomic_write_bytes
    calls = {"n": 0}

    def write(path, data):
        if Path(path).name == runs.LAST_CHECKPOINT:
            calls["n"] += 1
            if calls["n"] >= nth:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(runs, "atomic_write_bytes", write)


def test_disk_full_marks_the_run_failed_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    _fill_disk_at_checkpoint(monkeypatch, nth=2)
    with pytest.raises(DiskFullError) as e:
        train(tiny(6, checkpoint_every=2), runs_root=tmp_path, progress=False, evaluate=False)
    run = next(tmp_path.iterdir())
    assert "disk full" in str(e.value) and "last.pt" in str(e.value) and "step 2" in str(e.value)
    summary = runs.read_summary(run)
    assert summary["status"] == "failed" and "disk full" in summary["reason"]
    assert summary["last_good_step"] == 2
    assert load_checkpoint(runs.checkpoint_path(run))["step"] == 2
    with runs.lock_run(run):  # the lock was released
        pass
    monkeypatch.undo()
    assert train(tiny(6, checkpoint_every=2), run_dir=run, resume=True, progress=False,
                 evaluate=False).status == "completed"
    assert runs.read_metrics(run)["step"].tolist() == list(range(1, 7))


def test_cli_disk_full_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    _fill_disk_at_checkpoint(monkeypatch, nth=1)
    code = cli("train", "--steps", "2", "--image-size", "16", "--features", "8",
               "--batch-size", "8", "--num-images", "16", "--out", str(tmp_path), "--no-progress",
               "--no-eval")
    err = capsys.readouterr().err
    assert code == 2 and one_line(err) and "disk full" in err


# --------------------------------------------------------------------------- NaN guard
def test_nonfinite_buffer_stops_the_run_before_a_bad_checkpoint(tmp_path):
    cfg = ExperimentConfig(**{**tiny(8, checkpoint_every=2).__dict__,
                              "model": ModelConfig(image_size=16, g_features=8, d_features=8,
                                                   latent_dim=16, batchnorm="d")})
    session = setup(cfg, runs_root=tmp_path)
    name = "net.layer1.bn.running_var"

    def poison(row):
        if row["step"] == 3:
            session.trainer.D.get_buffer(name).fill_(float("inf"))

    try:
        begin(session)
        with pytest.raises(TrainingDiverged) as e:
            run_loop(session, progress=False, on_log=poison)
    finally:
        session.close()
    assert f"D.{name} became non-finite" in str(e.value) and "step 4" in str(e.value)
    assert "last good checkpoint (step 2)" in str(e.value)
    ckpt = load_checkpoint(runs.checkpoint_path(session.run_dir))
    assert ckpt["step"] == 2
    assert all(torch.isfinite(t).all() for t in ckpt["D"].values() if t.is_floating_point())
    summary = runs.read_summary(session.run_dir)
    assert summary["status"] == "diverged" and f"D.{name}" in summary["reason"]


def test_parameters_are_checked_between_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setattr(guard, "FINITE_CHECK_EVERY", 2)
    session = setup(tiny(20), runs_root=tmp_path)

    def poison(row):  # train-mode BN ignores running stats: the losses stay finite
        if row["step"] == 5:
            session.trainer.D.get_buffer("net.layer1.bn.running_mean").fill_(float("nan"))

    try:
        with pytest.raises(TrainingDiverged,
                           match=r"D\.net\.layer1\.bn\.running_mean became non-finite .* at step 6"):
            run_loop(session, progress=False, on_log=poison)
    finally:
        session.close()
    assert session.current_step == 6


# --------------------------------------------------------------------------- corrupt run files
def test_corrupt_run_files_name_the_file(tmp_path, capsys):
    run = finished_run(tmp_path)
    (run / runs.SUMMARY).write_bytes(b"{\"status\": \"compl")
    with pytest.raises(RunFolderError, match="summary.json: corrupt summary"):
        runs.read_summary(run)
    runs.update_summary(run, status="completed")  # the writer replaces a corrupt one
    assert runs.read_summary(run)["status"] == "completed"

    (run / runs.STEP_LOG).write_bytes(bytes(range(256)) * 8)
    with pytest.raises(RunFolderError, match="metrics.csv: not a metrics log"):
        runs.read_metrics(run)
    (run / runs.STEP_LOG).write_text("")
    with pytest.raises(RunFolderError, match="metrics.csv: empty file"):
        runs.read_metrics(run)
    (run / runs.STEP_LOG).write_text("step,loss_d,loss_g\n1,0.5,0.7\n2,0.4,0.8\n3,0.")
    assert runs.read_metrics(run)["step"].tolist() == [1, 2, 3]  # cut row keeps its step
    (run / runs.STEP_LOG).write_text("step,loss_d,loss_g\n1,0.5,0.7\n2,0.4,0.8\nx")
    assert runs.read_metrics(run)["step"].tolist() == [1, 2]

    (run / runs.CONFIG).write_text('{"model": {"image_size": "big"}}')
    with pytest.raises(RunFolderError, match="config.json: .*image_size"):
        runs.read_config(run)


# --------------------------------------------------------------------------- checkpoints
def _write(path, obj):
    buf = __import__("io").BytesIO()
    torch.save(obj, buf)
    path.write_bytes(buf.getvalue())


def test_bad_checkpoints_name_the_file_and_the_keys(tmp_path):
    run = finished_run(tmp_path)
    path = runs.checkpoint_path(run)
    good = load_checkpoint(path)
    assert {"step", "config", "G", "D", "opt_g", "opt_d", "rng"} <= set(good)

    _write(path, {k: v for k, v in good.items() if k not in ("config", "opt_d")})
    with pytest.raises(InvalidCheckpoint) as e:
        load_checkpoint(path)
    assert str(path) in str(e.value) and "missing key(s) config, opt_d" in str(e.value)
    assert isinstance(e.value, RunFolderError) and isinstance(e.value, CheckpointError)
    with pytest.raises(InvalidCheckpoint, match="missing key"):  # not KeyError: 'config'
        load_generator(run)

    _write(path, {**good, "step": "ten"})
    with pytest.raises(InvalidCheckpoint, match=r"wrong key\(s\) step \(str, expected int\)"):
        load_checkpoint(path)
    _write(path, {**good, "config": {**good["config"], "model": {"image_size": 48.5}}})
    with pytest.raises(InvalidCheckpoint, match="config is invalid"):
        load_checkpoint(path)
    _write(path, [1, 2, 3])
    with pytest.raises(InvalidCheckpoint, match="not an xraygan checkpoint"):
        load_checkpoint(path)

    save_checkpoint(path, {k: v for k, v in good.items() if k != "format"})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidCheckpoint, match="cannot read the checkpoint"):
        load_checkpoint(path)
    path.write_text("not a checkpoint at all\n")
    with pytest.raises(InvalidCheckpoint, match="cannot read the checkpoint"):
        load_checkpoint(path)


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {_Evil.marker}",))


def test_checkpoint_loading_never_runs_code(tmp_path):
    _Evil.marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"format": 1, "x": _Evil()}, protocol=2))
    with pytest.raises(InvalidCheckpoint):
        load_checkpoint(path)
    assert not _Evil.marker.exists()


def test_resume_from_an_incomplete_checkpoint_is_one_line(tmp_path, capsys):
    run = finished_run(tmp_path)
    good = load_checkpoint(runs.checkpoint_path(run))
    _write(runs.checkpoint_path(run), {k: v for k, v in good.items() if k != "config"})
    code = cli("train", "--resume", str(run), "--steps", "8", "--no-progress", "--no-eval")
    err = capsys.readouterr().err
    assert code == 2 and one_line(err) and "missing key(s) config" in err
    with runs.lock_run(run):  # the failed resume released the lock
        pass


def test_resume_of_a_missing_run_is_an_error_not_a_new_folder(tmp_path):
    with pytest.raises((RunFolderError, ConfigError)):
        train(tiny(), run_dir=tmp_path / "nowhere", resume=True, progress=False, evaluate=False)
