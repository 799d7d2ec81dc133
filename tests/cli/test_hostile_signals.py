"""SIGHUP (the terminal closed) while a sweep's trial is being evaluated (issue 28 class 8):
handled as during training: the trial is recorded as interrupted with its checkpoint kept,
queued again, the sweep exits 129, and the next sweep finishes it at once without training.
A last rerun that trains nothing keeps the study's recorded sweep memory (class 9)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import optuna

SWEEP = ["sweep", "table1", "--cells", "adas-elu", "--image-size", "16", "--features", "4",
         "--steps", "4", "--batch-size", "8", "--num-images", "16", "--no-fid",
         "--sample-every", "4", "--checkpoint-every", "4", "--no-estimate", "--no-progress"]

HANG_UP_IN_EVALUATION = textwrap.dedent("""
    import os, signal, sys
    import xraygan.ablations.trial as trial
    real = trial.evaluate
    def evaluate(*a, **kw):
        if os.environ.get("HANG_UP") == "1":
            os.kill(os.getpid(), signal.SIGHUP)  # the terminal closes mid-evaluation
        return real(*a, **kw)
    trial.evaluate = evaluate
    from xraygan.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def _sweep(out, hang_up: bool) -> subprocess.CompletedProcess:
    env = {**__import__("os").environ, "HANG_UP": "1" if hang_up else "0", "XRAYGAN_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", HANG_UP_IN_EVALUATION, *SWEEP, "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=600)


def test_sighup_during_evaluation_requeues_and_resumes_at_once(tmp_path):
    out = tmp_path / "studies"
    first = _sweep(out, hang_up=True)
    assert first.returncode == 129, first.stderr[-2000:]
    assert "Traceback" not in first.stderr
    study = optuna.load_study(study_name="table1-quick",
                              storage=f"sqlite:///{out / 'table1-quick.db'}")
    states = [(t.state.name, t.user_attrs.get("status")) for t in study.trials]
    assert states == [("FAIL", "interrupted"), ("WAITING", "waiting")]
    assert "interrupted by SIGHUP while evaluating" in study.trials[0].user_attrs["failure"]

    again = _sweep(out, hang_up=False)  # no heartbeat grace to wait out: the trial says why
    assert again.returncode == 0, again.stderr[-2000:]
    study = optuna.load_study(study_name="table1-quick",
                              storage=f"sqlite:///{out / 'table1-quick.db'}")
    done = study.trials[-1]
    assert done.state.name == "COMPLETE" and done.user_attrs["retry_of"] == 0
    assert done.user_attrs["resumed_from_step"] == 4  # the trained checkpoint, not a new run

    recorded = study.user_attrs["sweep_memory"]
    rerun = _sweep(out, hang_up=False)  # every cell done: nothing trains
    assert rerun.returncode == 0 and "this one trained nothing" in rerun.stdout
    study = optuna.load_study(study_name="table1-quick",
                              storage=f"sqlite:///{out / 'table1-quick.db'}")
    assert study.user_attrs["sweep_memory"] == recorded
