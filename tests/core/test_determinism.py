"""The same seed gives the same run on one machine at the default thread policy, with two
threads as well as one: two runs are equal bit for bit, and so are a killed-and-resumed run and
an uninterrupted one. Each run is an `xraygan train` process of its own, as a user starts it
(the policy is applied per process; the tests' own one-thread setting does not reach it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from xraygan import runs

# 32x32, width 8: 72,610 parameters, above the policy's one-thread threshold (SMALL_MODEL_PARAMS)
FLAGS = ["--image-size", "32", "--features", "8", "--batch-size", "16", "--num-images", "64",
         "--device", "cpu", "--no-eval", "--no-progress", "--sample-every", "0", "--seed", "3"]
STEPS = 12


def two_thread_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("XRAYGAN_THREADS", "OMP_NUM_THREADS", "XRAYGAN_ADAPTIVE_THREADS")}
    # the machine running the tests is shared: a busy neighbour must not make these 1-thread runs
    return {**env, "XRAYGAN_DETECT_NEIGHBOURS": "0", **extra}


def train(out: Path, *args: str, env: dict[str, str] | None = None) -> Path:
    proc = subprocess.run([sys.executable, "-m", "xraygan", "train", *FLAGS, "--out", str(out),
                           *args], env=env or two_thread_env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return only_run(out)


def only_run(out: Path) -> Path:
    (run,) = [p for p in out.iterdir() if runs.is_run_dir(p)]
    return run


def trajectory(run: Path) -> tuple[list, dict[str, torch.Tensor]]:
    log = runs.read_metrics(run)
    losses = list(zip(log["step"], log["loss_d"], log["loss_g"], strict=True))
    ckpt = torch.load(runs.checkpoint_path(run), map_location="cpu", weights_only=False)
    return losses, {k: v for k, v in ckpt["G"].items()}


def assert_bit_identical(a: Path, b: Path) -> None:
    la, ga = trajectory(a)
    lb, gb = trajectory(b)
    assert la == lb  # every logged loss, exactly
    assert ga.keys() == gb.keys() and all(torch.equal(ga[k], gb[k]) for k in ga)


@pytest.fixture(scope="module")
def cores():
    from xraygan.process import cores_available

    if cores_available() < 2:
        pytest.skip("one core: the two-thread policy cannot be exercised")
    return 2


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, cores):
    return train(tmp_path_factory.mktemp("ref"), "--steps", str(STEPS), "--checkpoint-every", "4")


def test_two_runs_at_two_threads_are_bit_identical(reference_run, tmp_path):
    summary = runs.read_summary(reference_run)
    assert summary["threads"] == 2 and summary["reproducible"] is True
    assert summary["machine"]["process"]["adaptive"] is False
    again = train(tmp_path, "--steps", str(STEPS), "--checkpoint-every", "4")
    assert_bit_identical(reference_run, again)


def test_killed_and_resumed_run_equals_an_uninterrupted_one(reference_run, tmp_path):
    cmd = [sys.executable, "-m", "xraygan", "train", *FLAGS, "--out", str(tmp_path),
           "--steps", str(STEPS), "--checkpoint-every", "4", "--log-every", "1"]
    proc = subprocess.Popen(cmd, env=two_thread_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:  # kill it between two checkpoints, without warning
            run = next((p for p in tmp_path.iterdir() if runs.is_run_dir(p)), None)
            if run is not None and runs.checkpoint_path(run).is_file():
                step = int(torch.load(runs.checkpoint_path(run), map_location="cpu",
                                      weights_only=False)["step"])
                if step >= 4:
                    break
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
    run = only_run(tmp_path)
    killed_at = runs.read_summary_lenient(run).get("step", 0)
    if proc.returncode == 0:
        pytest.skip("the run finished before it could be killed (a very fast machine)")
    assert 0 < killed_at < STEPS
    resumed = subprocess.run([sys.executable, "-m", "xraygan", "train", "--resume", str(run),
                              "--no-eval", "--no-progress"], env=two_thread_env(),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert runs.read_summary(run)["reproducible"] is True
    assert_bit_identical(reference_run, run)


def test_the_adaptive_governor_is_opt_in_and_recorded(tmp_path, cores):
    run = train(tmp_path, "--steps", "4", env=two_thread_env(XRAYGAN_ADAPTIVE_THREADS="1"))
    s = runs.read_summary(run)
    assert s["reproducible"] is False and "XRAYGAN_ADAPTIVE_THREADS" in s["not_reproducible_because"]


def test_a_resume_at_another_thread_count_is_marked(reference_run, tmp_path):
    import shutil

    run = tmp_path / reference_run.name
    shutil.copytree(reference_run, run)
    proc = subprocess.run([sys.executable, "-m", "xraygan", "train", "--resume", str(run),
                           "--steps", str(STEPS + 2), "--no-eval", "--no-progress"],
                          env=two_thread_env(XRAYGAN_THREADS="1"), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    s = runs.read_summary(run)
    assert s["reproducible"] is False and "resumed at 1" in s["not_reproducible_because"]
