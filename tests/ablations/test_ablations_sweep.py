"""Sweeps end to end on phantoms at a tiny scale: attrs, idempotence, divergence, workers,
and resuming after a killed worker."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import TrialState

from xraygan import runs
from xraygan.ablations import QUICK, STUDIES, StudyContext, StudySpec, load_studies
from xraygan.ablations.runner import SweepOptions, outcome, run_sweep
from xraygan.ablations.spec import Cell, first_metric, named
from xraygan.ablations.trial import DASHBOARD_METRICS
from xraygan.config import ExperimentConfig, OptimConfig
from xraygan.errors import ConfigError

load_studies()

TINY = QUICK.with_overrides(
    name="tiny", image_size=16, features=4, steps=12, batch_size=16, num_images=64, fid=False,
    log_every=2, sample_every=6, checkpoint_every=6, device="cpu",
)
TINY_FLAGS = ["--image-size", "16", "--features", "4", "--batch-size", "16", "--num-images", "64",
              "--no-fid", "--sample-every", "6", "--device", "cpu"]


def options(tmp_path: Path, study: str, scale=TINY, **kw) -> SweepOptions:
    return SweepOptions(study=study, ctx=StudyContext(scale), out=tmp_path, **kw)


def attrs_of(study: optuna.Study) -> dict[str, dict]:
    return {t.user_attrs["cell"]: t.user_attrs for t in study.trials}


@pytest.fixture(scope="module")
def table1_tiny(tmp_path_factory):
    """One finished tiny Table I study, shared by the tests that only read it."""
    tmp_path = tmp_path_factory.mktemp("table1")
    opts = options(tmp_path, "table1")
    return tmp_path, opts, run_sweep(opts, echo=lambda s: None)


def test_tiny_table1_end_to_end(table1_tiny):
    tmp_path, opts, study = table1_tiny
    assert (tmp_path / "table1-tiny.db").is_file()
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    attrs = attrs_of(study)
    assert set(attrs) == {"adas-elu", "adam-elu", "adas-elu-ttur", "adas-dcgan"}
    for key, a in attrs.items():
        for name in ("study", "scale", "cell_params", "config", "run_dir", "host", "metrics",
                     "peak_memory_bytes", "memory", "wall_time_s", "train_time_s",
                     "images_per_s", "params_g", "params_d", "objective"):
            assert name in a, (key, name)
        assert a["status"] == "completed" and a["study"] == "table1" and a["scale"] == "tiny"
        run = Path(a["run_dir"])
        assert run.parent == tmp_path / "table1-tiny" and runs.is_run_dir(run)
        assert runs.read_summary(run)["trial_status"] == "completed"
        assert ExperimentConfig.from_dict(a["config"]) == runs.read_config(run)
        assert a["peak_memory_bytes"] > 0 and a["wall_time_s"] >= a["train_time_s"] > 0
        assert a["metrics"]["d_loss_mean"] > 0 and "blockiness" in a["metrics"]
        assert a["objective"] == "d_loss_mean"  # no FID at this scale: the fallback
    t = study.trials[0]
    assert t.value == pytest.approx(t.user_attrs["metrics"]["d_loss_mean"])
    # intermediate values: the running D-loss mean at every logged step (12 steps < 50 reports),
    # ending on the trial's d_loss_mean metric itself
    assert list(t.intermediate_values) == [2, 4, 6, 8, 10, 12]
    assert t.intermediate_values[12] == pytest.approx(t.user_attrs["metrics"]["d_loss_mean"])
    assert t.user_attrs["intermediate"] == "d_loss_mean (running)"
    assert ExperimentConfig.from_dict(attrs["adam-elu"]["config"]).optim.name == "adam"
    # finished trials are never redone: a second sweep finds nothing to do
    again = run_sweep(opts, echo=lambda s: None)
    assert len(again.trials) == 4
    # a sweep with other settings under the same name is refused
    other = dataclasses.replace(opts, ctx=StudyContext(TINY.with_overrides(steps=13)))
    with pytest.raises(ConfigError, match="created with other settings"):
        run_sweep(other)


def test_finished_study_is_analysable_by_optuna(table1_tiny):
    """What optuna-dashboard reads: params with categorical distributions over the grid,
    a named objective, and a parameter importance computed from them."""
    tmp_path, opts, _ = table1_tiny
    study = optuna.load_study(study_name=opts.name, storage=opts.url)  # as the dashboard does
    assert study.metric_names == ["d_loss_mean"]
    by_cell = {t.user_attrs["cell"]: t for t in study.trials}
    assert by_cell["adam-elu"].params == {"optimizer": "adam", "g_activation": "elu",
                                          "d_activation": "elu", "ttur": False}
    assert by_cell["adas-dcgan"].params["d_activation"] == "leaky_relu"
    for t in study.trials:
        assert t.params == t.user_attrs["cell_params"]
        dist = t.distributions["optimizer"]
        assert isinstance(dist, optuna.distributions.CategoricalDistribution)
        assert dist.choices == ("adas", "adam")  # the grid's values, in the grid's order
        assert t.distributions["ttur"].choices == (False, True)
        fp = t.user_attrs["fingerprint"]
        assert fp["machine_class"].startswith("cpu-") and fp["device"] == "cpu"
    importance = optuna.importance.get_param_importances(study)
    assert set(importance) <= {"optimizer", "g_activation", "d_activation", "ttur"}
    assert importance and sum(importance.values()) == pytest.approx(1.0)


def test_legacy_waiting_trial_without_params_gets_its_cell(tmp_path):
    """A cell enqueued by an older version (no params) still runs as its own cell."""
    from xraygan.ablations.runner import get_spec, grid_distributions, open_study, suggest_cell

    opts = options(tmp_path, "table1")
    study, storage, _ = open_study(opts)
    cells = get_spec("table1").grid(opts.ctx)
    study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING,
                                              user_attrs={"cell": "adas-elu-ttur"}))
    trial = optuna.Trial(study, study.trials[0]._trial_id)
    cell = next(c for c in cells if c.key == "adas-elu-ttur")
    trial = suggest_cell(study, storage, trial, cell, grid_distributions(cells))
    assert trial.params == {"optimizer": "adas", "g_activation": "elu", "d_activation": "elu",
                            "ttur": True}


def _nan_cells(ctx: StudyContext) -> list[Cell]:
    ok = ctx.config(optimizer="adam")
    # AdaS with every rate at the config's sanity limit (10) overflows within a few steps
    bad = dataclasses.replace(ok, optim=OptimConfig(name="adas", lr_g=10, lr_d=10, lr2=10, lr3=10))
    return [Cell("explodes", named(bad, "explodes")), Cell("fine", named(ok, "fine"))]


STUDIES.add("test-nan", StudySpec(
    name="test-nan", description="a diverging cell and a fine one", cells=_nan_cells,
    score=first_metric("d_loss_mean")))


def test_diverging_trial_fails_with_reason_and_study_goes_on(tmp_path):
    study = run_sweep(options(tmp_path, "test-nan"), echo=lambda s: None)
    by_cell = {t.user_attrs["cell"]: t for t in study.trials}
    bad, fine = by_cell["explodes"], by_cell["fine"]
    assert bad.state == TrialState.FAIL and bad.user_attrs["status"] == "diverged"
    assert any(w in bad.user_attrs["failure"] for w in ("became nan", "became inf", "became non-finite"))
    assert runs.read_summary(bad.user_attrs["run_dir"])["status"] == "diverged"
    assert fine.state == TrialState.COMPLETE
    # divergence is deterministic: the next sweep does not enqueue the cell again
    assert len(run_sweep(options(tmp_path, "test-nan"), echo=lambda s: None).trials) == 2


def test_two_workers_no_duplicated_cells(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("XRAYGAN_PROGRESS_INTERVAL", "0")  # inherited by the spawned workers
    study = run_sweep(options(tmp_path, "batchnorm", workers=2, heartbeat=2, grace=6,
                              tensorboard=True), echo=lambda s: None)
    out, err = capfd.readouterr()
    # per-trial progress: a start line with the sweep position, plain progress lines (two
    # workers share the terminal: no bars), never a carriage return
    assert "\r" not in err and "\r" not in out
    assert sum("[progress]" in ln and "step 12/12 (100%)" in ln and "done" in ln
               for ln in err.splitlines()) == 4
    starts = [ln for ln in out.splitlines() if ": start, cell " in ln]
    assert len(starts) == 4 and all(re.search(r"cell [1-4]/4", ln) for ln in starts)
    # the evaluation after training says it started (it can take minutes with FID)
    assert sum(": evaluating (" in ln for ln in out.splitlines()) == 4
    # one TensorBoard run per trial, in the trial's run folder, with its end-of-run metrics and
    # an HParams record naming its cell
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for t in study.trials:
        acc = EventAccumulator(str(Path(t.user_attrs["run_dir"], "tb")))
        acc.Reload()
        assert {"loss/d", "eval/d_loss_mean"} <= set(acc.Tags()["scalars"])
        assert acc.Scalars("eval/d_loss_mean")[0].value == pytest.approx(
            t.user_attrs["metrics"]["d_loss_mean"], rel=1e-6)
        # the headline metrics also as their own user attrs, which optuna-dashboard can sort
        # and plot; the others only in the nested metrics dict (a readable attribute list)
        assert t.user_attrs["metric.d_loss_mean"] == t.user_attrs["metrics"]["d_loss_mean"]
        flat = [k for k in t.user_attrs if k.startswith("metric.")]
        assert flat and all(k[len("metric."):] in DASHBOARD_METRICS for k in flat)
        assert len(t.user_attrs["metrics"]) > len(flat)
        # the last sample grid is an artifact of the trial
        (meta,) = get_all_artifact_meta(t, storage=study._storage)
        assert meta.artifact_id == t.user_attrs["samples_artifact"]
        assert meta.mimetype == "image/png"
        hp = b"".join(acc.PluginTagToContent("hparams").values())
        assert t.user_attrs["cell"].encode() in hp
        # the grid's varied fields and the device used, not every constant field or "auto"
        assert b"train.device" in hp and b"auto" not in hp and b"model.latent_dim" not in hp
    cells = Counter(t.user_attrs["cell"] for t in study.trials)
    assert cells == Counter({"bn-none": 1, "bn-d": 1, "bn-g": 1, "bn-both": 1})
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert len({t.user_attrs["pid"] for t in study.trials}) == 2  # both workers took cells
    dirs = [t.user_attrs["run_dir"] for t in study.trials]
    assert len(set(dirs)) == 4


def test_killed_worker_is_detected_and_resumed(tmp_path):
    flags = ["sweep", "batchnorm", "--out", str(tmp_path), *TINY_FLAGS, "--steps", "150",
             "--checkpoint-every", "5", "--heartbeat", "1", "--grace", "3", "--no-wait"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "xraygan", *flags], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ckpt = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and ckpt is None:
            found = sorted((tmp_path / "batchnorm-quick").glob("*/checkpoints/last.pt"))
            ckpt = found[0] if found else None
            time.sleep(0.2)
        assert ckpt is not None, "the worker wrote no checkpoint"
    finally:
        proc.send_signal(signal.SIGKILL)  # no chance to clean up: a dead machine
        proc.wait()
    storage = f"sqlite:///{tmp_path / 'batchnorm-quick.db'}"
    killed = optuna.load_study(study_name="batchnorm-quick", storage=storage).trials[0]
    assert killed.state == TrialState.RUNNING  # what a dead worker leaves behind
    run_dir = killed.user_attrs["run_dir"]
    time.sleep(3.5)  # let its heartbeat go stale

    from xraygan.cli import main

    assert main(flags) == 0
    study = optuna.load_study(study_name="batchnorm-quick", storage=storage)
    first = study.trials[0]
    assert first.state == TrialState.FAIL and first.user_attrs["status"] == "running"
    assert outcome(first) == "killed"
    retry = [t for t in study.trials if t.user_attrs.get("retry_of") == 0]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE
    assert retry[0].user_attrs["run_dir"] == run_dir  # same folder, continued
    assert 5 <= retry[0].user_attrs["resumed_from_step"] < 150
    assert runs.read_summary(run_dir)["step"] == 150
    steps = runs.read_metrics(run_dir)["step"].tolist()
    assert steps == sorted(set(steps))  # the log was cut back to the checkpoint, no repeats
    done = Counter(t.user_attrs["cell"] for t in study.trials if t.state == TrialState.COMPLETE)
    assert done == Counter({"bn-none": 1, "bn-d": 1, "bn-g": 1, "bn-both": 1})


def test_compress_search_runs_reference_first_and_records_constraints(tmp_path):
    opts = SweepOptions(study="compress-search", ctx=StudyContext(TINY, trials=3), out=tmp_path)
    study = run_sweep(opts, echo=lambda s: None)
    trials = study.trials
    assert len(trials) == 3
    ref = trials[0]
    assert ref.user_attrs["reference"] is True and ref.state == TrialState.COMPLETE
    assert ref.params == {"g_strides": "2-2", "g_features": 4, "latent_dim": 100, "g_fc_layers": 0}
    assert ref.user_attrs["feasible"] is True  # the reference meets its own bar
    for t in trials:
        assert t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        if t.state == TrialState.COMPLETE:
            assert t.value == t.user_attrs["params_g"]  # the objective: G's size
            assert len(t.user_attrs["constraints"]) == 1  # blockiness only: no FID at this scale
            # what TPE reads (Trial.set_constraint, not the deprecated constraints_func)
            assert list(t.constraints.values()) == t.user_attrs["constraints"]
        else:
            assert t.constraints and all(v > 0 for v in t.constraints.values())  # infeasible
            cfg = ExperimentConfig.from_dict(t.user_attrs["config"])
            assert "-".join(map(str, cfg.model.g_strides)) == t.params["g_strides"]
        assert list(t.intermediate_values) == [6]  # blockiness of the step-6 grid, reported
    # pruning: a trial still blockier than the reference + margin past half its steps stops
    from xraygan.ablations.compress_search import PRUNE_MARGIN, pruner

    p = pruner(StudyContext(TINY), ref.user_attrs)
    ref_block = ref.user_attrs["metrics"]["blockiness"]
    probe = optuna.create_study(pruner=p)
    blocky, clean = probe.ask(), probe.ask()
    for trial, value in ((blocky, ref_block + PRUNE_MARGIN + 0.1), (clean, ref_block)):
        trial.report(value, TINY.steps // 2 + 1)
    assert blocky.should_prune() and not clean.should_prune()


class _FakeTrial:
    def __init__(self, prune_at: int | None = None) -> None:
        self.reported: dict[int, float] = {}
        self.prune_at = prune_at

    def report(self, value: float, step: int) -> None:
        self.reported[step] = value

    def should_prune(self) -> bool:
        return self.prune_at is not None and max(self.reported) >= self.prune_at


def test_loss_reporter_reports_the_running_d_loss_mean_50_times_and_resumes():
    from xraygan.ablations.trial import REPORTS_PER_TRIAL, LossReporter

    losses = [0.5 + 0.01 * (i % 7) for i in range(1, 1501)]
    fake = _FakeTrial()
    rep = LossReporter(fake, prune=False, total_steps=1500)
    for step in range(5, 1501, 5):  # log_every 5, as the quick scale
        rep({"step": step, "loss_d": losses[step - 1]})
    logged = [losses[s - 1] for s in range(5, 1501, 5)]
    assert len(fake.reported) == REPORTS_PER_TRIAL and min(fake.reported) == 30
    assert fake.reported[1500] == pytest.approx(sum(logged) / len(logged))  # = d_loss_mean
    assert fake.reported[600] == pytest.approx(sum(logged[:120]) / 120)
    # resumed at step 600: the rows the checkpoint keeps are counted, later ones come live
    resumed = _FakeTrial()
    rep2 = LossReporter(resumed, prune=False, total_steps=1500)
    rep2.seed({"step": list(range(5, 601, 5)), "loss_d": logged[:120]}, upto=600)
    for step in range(605, 1501, 5):
        rep2({"step": step, "loss_d": losses[step - 1]})
    assert resumed.reported[1500] == pytest.approx(fake.reported[1500])
    assert min(resumed.reported) == 630
    # a pruner that says stop raises TrialPruned with the value in words
    rep3 = LossReporter(_FakeTrial(prune_at=60), prune=True, total_steps=1500)
    with pytest.raises(optuna.TrialPruned, match="running D-loss mean"):
        for step in range(5, 1501, 5):
            rep3({"step": step, "loss_d": 0.5})


def test_sweep_position_counts_the_cells_the_study_holds():
    # a sweep with --cells enqueues part of the grid: its progress says "of 2", not "of 20"
    import optuna

    from xraygan.ablations.runner import sweep_position

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    for key in ("adas-elu-s0", "adas-elu-s1"):
        study.ask().set_user_attr("cell", key)
    assert sweep_position(study, 20) == "cell 2/2"
