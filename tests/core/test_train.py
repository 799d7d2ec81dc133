"""The training loop: run folder contract, exact resume, divergence and interruption handling."""

import dataclasses
import os
import re
import signal

import pandas as pd
import pytest
import torch

from xraygan import runs
from xraygan.checkpoint import load_checkpoint
from xraygan.cli import main
from xraygan.config import DataConfig, ExperimentConfig, ModelConfig, OptimConfig, TrainConfig
from xraygan.errors import ConfigError, TrainingDiverged
from xraygan.models import build_models
from xraygan.process import stop_on_signals
from xraygan.train import batch_indices, init_models, run_loop, setup, train

LOSS_COLUMNS = ["loss_d", "loss_g", "d_real", "d_fake"]


def tiny(steps=6, optimizer="adas", **train_kw) -> ExperimentConfig:
    return ExperimentConfig(
        name="tiny",
        model=ModelConfig(image_size=16, g_features=8, d_features=8, latent_dim=16),
        optim=OptimConfig(name=optimizer),
        data=DataConfig(source="phantom", num_images=48),
        train=TrainConfig(**{"steps": steps, "batch_size": 8, "device": "cpu", "sample_every": 0,
                             "checkpoint_every": 0, "num_samples": 16, **train_kw}),
    )


def test_run_folder_holds_config_metrics_samples_checkpoint_summary(tmp_path):
    cfg = tiny(steps=6, sample_every=3)
    result = train(cfg, runs_root=tmp_path, progress=False, evaluate=False)
    run = result.run_dir
    assert run.parent == tmp_path and result.status == "completed" and result.step == 6
    assert runs.read_config(run) == cfg
    df = pd.read_csv(run / "metrics.csv")
    assert df["step"].tolist() == [1, 2, 3, 4, 5, 6]
    assert df[LOSS_COLUMNS].notna().all().all()
    assert ((df["d_real"] > 0) & (df["d_real"] < 1)).all()
    assert (df["images_per_s"] > 0).all()
    assert [p.name for p in runs.sample_paths(run)] == ["step_000003.png", "step_000006.png"]
    ckpt = load_checkpoint(runs.checkpoint_path(run))
    assert ckpt["step"] == 6 and ExperimentConfig.from_dict(ckpt["config"]) == cfg
    summary = runs.read_summary(run)
    assert summary["status"] == "completed" and summary["step"] == 6 and summary["params_g"] > 0


@pytest.mark.parametrize(("optimizer", "channels_last"),
                         [("adas", False), ("adam", False), ("adas", True)])  # sweeps: channels-last
def test_resume_gives_the_same_losses_as_a_straight_run(tmp_path, optimizer, channels_last):
    kw = {"channels_last": channels_last}
    straight = train(tiny(8, optimizer, **kw), runs_root=tmp_path / "a", progress=False,
                     evaluate=False)
    half = train(tiny(4, optimizer, **kw), runs_root=tmp_path / "b", progress=False, evaluate=False)
    resumed = train(tiny(8, optimizer, **kw), run_dir=half.run_dir, resume=True, progress=False,
                    evaluate=False)
    a = runs.read_metrics(straight.run_dir)[LOSS_COLUMNS]
    b = runs.read_metrics(resumed.run_dir)[LOSS_COLUMNS]
    assert len(b) == 8
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_killed_run_resumes_from_last_checkpoint(tmp_path):
    straight = train(tiny(8), runs_root=tmp_path / "a", progress=False, evaluate=False)

    class Killed(Exception):
        pass

    def kill_at_5(row):
        if row["step"] == 5:
            raise Killed

    cfg = dataclasses.replace(tiny(8), train=dataclasses.replace(tiny(8).train, checkpoint_every=2))
    with pytest.raises(Killed):
        train(cfg, runs_root=tmp_path / "b", progress=False, evaluate=False, on_log=kill_at_5)
    run = next((tmp_path / "b").iterdir())
    assert load_checkpoint(runs.checkpoint_path(run))["step"] == 4
    resumed = train(cfg, run_dir=run, resume=True, progress=False, evaluate=False)
    df = runs.read_metrics(resumed.run_dir)
    assert df["step"].tolist() == list(range(1, 9))  # the orphaned row of step 5 was dropped
    pd.testing.assert_frame_equal(
        runs.read_metrics(straight.run_dir)[LOSS_COLUMNS], df[LOSS_COLUMNS], check_exact=True
    )


def test_sigint_checkpoints_and_stops(tmp_path):
    def interrupt_at_3(row):
        if row["step"] == 3:
            os.kill(os.getpid(), signal.SIGINT)

    with stop_on_signals() as stop:  # what the CLI and the sweep worker install
        result = train(tiny(8), runs_root=tmp_path, progress=False, evaluate=False,
                       on_log=interrupt_at_3, should_stop=stop)
    assert stop() == "SIGINT"
    assert result.status == "interrupted" and result.step == 3
    assert load_checkpoint(runs.checkpoint_path(result.run_dir))["step"] == 3
    assert runs.read_summary(result.run_dir)["status"] == "interrupted"
    done = train(tiny(8), run_dir=result.run_dir, resume=True, progress=False, evaluate=False)
    assert done.status == "completed" and len(runs.read_metrics(done.run_dir)) == 8


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    import xraygan.train as train_module
    from xraygan.losses import NonSaturatingLoss

    class NanAfterThree(NonSaturatingLoss):
        calls = 0

        def g_loss(self, fake_logits):
            NanAfterThree.calls += 1
            loss = super().g_loss(fake_logits)
            return loss * float("nan") if NanAfterThree.calls >= 3 else loss

    monkeypatch.setattr(train_module, "build_loss", lambda name: NanAfterThree())
    cfg = dataclasses.replace(tiny(8), train=dataclasses.replace(tiny(8).train, checkpoint_every=2))
    with pytest.raises(TrainingDiverged, match=r"loss_g became nan at step 3; the last good checkpoint \(step 2\)"):
        train(cfg, runs_root=tmp_path, progress=False, evaluate=False)
    run = next(tmp_path.iterdir())
    assert runs.read_summary(run)["status"] == "diverged"
    ckpt = load_checkpoint(runs.checkpoint_path(run))
    assert ckpt["step"] == 2
    assert all(torch.isfinite(t).all() for t in ckpt["G"].values() if t.is_floating_point())


def test_resume_rejects_a_changed_config(tmp_path):
    first = train(tiny(2), runs_root=tmp_path, progress=False, evaluate=False)
    other = dataclasses.replace(tiny(4), optim=OptimConfig(name="adam"))
    with pytest.raises(ConfigError, match="changed: optim.name"):
        train(other, run_dir=first.run_dir, resume=True, progress=False, evaluate=False)


def test_batch_larger_than_dataset_is_a_config_error(tmp_path):
    cfg = dataclasses.replace(tiny(2), data=DataConfig(num_images=4))
    with pytest.raises(ConfigError, match="train.batch_size: 8 is larger than the dataset"):
        train(cfg, runs_root=tmp_path, progress=False, evaluate=False)


def test_batches_cover_each_epoch_once():
    seen = torch.cat([batch_indices(s, 40, 8, seed=3) for s in range(5)])
    assert sorted(seen.tolist()) == list(range(40))
    assert not torch.equal(batch_indices(0, 40, 8, 3), batch_indices(5, 40, 8, 3))  # new epoch, new order


def test_cli_train_and_dry_run(tmp_path, capsys):
    args = ["train", "--image-size", "16", "--features", "8", "--latent-dim", "16", "--num-images", "32",
            "--batch-size", "8", "--steps", "3", "--device", "cpu", "--out", str(tmp_path), "--no-progress",
            "--no-eval", "--optimizer", "adam", "--ttur"]
    assert main(args + ["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert '"ttur": true' in out and "parameters" in out and not any(tmp_path.iterdir())
    assert main(args) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  status +completed at step 3/3$", out, re.M)
    assert re.search(r"^  xraygan train --resume \S+ --steps 6 +train it longer$", out, re.M)
    cfg = runs.read_config(next(tmp_path.iterdir()))
    assert cfg.optim.name == "adam" and cfg.optim.ttur and cfg.model.g_features == 8


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--image-size", "48"], "model.image_size: expected a power of two >= 16, got 48"),
        (["--optimizer", "adamw"], "got 'adamw'"),
        (["--preset", "nope"], "unknown preset 'nope'"),
        (["--data", "nowhere"], "unknown dataset 'nowhere'"),
    ],
)
def test_cli_bad_input_is_one_line_not_a_traceback(tmp_path, capsys, flags, message):
    code = main(["train", "--steps", "1", "--out", str(tmp_path), "--no-progress", *flags])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_train_installs_no_signal_handlers_and_leaves_the_global_rng_alone(tmp_path):
    before_handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    seen = []
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    train(tiny(2), runs_root=tmp_path, progress=False, evaluate=False,
          on_log=lambda row: seen.append({s: signal.getsignal(s) for s in before_handlers}))
    assert seen and all(h == before_handlers for h in seen)
    assert torch.equal(torch.get_rng_state(), rng)


def test_init_models_gives_the_weights_of_a_global_seed():
    model = tiny().model
    torch.manual_seed(11)
    G_ref, D_ref = build_models(model)
    G, D = init_models(model, 11)
    for ref, new in ((G_ref, G), (D_ref, D)):
        a, b = ref.state_dict(), new.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    G2, _ = init_models(model, 12)
    assert not all(torch.equal(G.state_dict()[k], G2.state_dict()[k]) for k in G.state_dict())


def test_should_stop_and_hooks_in_the_split_loop(tmp_path):
    cfg = dataclasses.replace(tiny(8), train=dataclasses.replace(tiny(8).train, sample_every=2,
                                                                checkpoint_every=3))
    session = setup(cfg, runs_root=tmp_path)
    logged, ckpts, samples = [], [], []
    loop = run_loop(
        session, progress=False,
        on_log=[lambda row: logged.append(row["step"]), lambda row: None],
        on_checkpoint=ckpts.append,
        on_sample=lambda step, images: samples.append((step, tuple(images.shape))),
        should_stop=lambda: "enough" if logged and logged[-1] == 5 else None,
    )
    assert loop.status == "interrupted" and loop.step == 5 and loop.stopped_by == "enough"
    assert logged == [1, 2, 3, 4, 5]
    assert ckpts == [3, 5]  # every 3 steps, and the stop's own checkpoint
    assert samples == [(2, (16, 1, 16, 16)), (4, (16, 1, 16, 16))]
    assert load_checkpoint(runs.checkpoint_path(session.run_dir))["step"] == 5


def test_summary_carries_the_machine_fingerprint(tmp_path):
    result = train(tiny(2), runs_root=tmp_path, progress=False, evaluate=False)
    machine = runs.read_summary(result.run_dir)["machine"]
    assert machine["cores_available"] >= 1 and machine["machine_class"].startswith("cpu-")
