"""Progress a log can read (plain lines, never carriage returns) and the TensorBoard view."""

from __future__ import annotations

import io
import os

import pytest

from xraygan import runs
from xraygan.cli import main
from xraygan.progress import Progress, format_duration, is_terminal

TINY = ["--image-size", "16", "--features", "8", "--latent-dim", "16", "--batch-size", "8",
        "--num-images", "32", "--device", "cpu", "--optimizer", "adam", "--sample-every", "3",
        "--num-samples", "4", "--no-eval"]


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_plain_lines_every_interval_with_rate_eta_and_postfix():
    out, clock = io.StringIO(), Clock()
    bar = Progress(100, desc="run", stream=out, interval=30, clock=clock, mode="lines")
    for _ in range(10):  # 10 steps in 10 s: under the interval, no line
        clock.t += 1
        bar.update(1, loss_d=0.6931, img_s=640.0)
    clock.t += 20  # 30 s since the start line
    bar.update(10, loss_d=0.5)
    bar.close()
    bar.close()  # harmless
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines[0] == "[progress] run: step 0/100 (0%) start"
    # 20 steps in 30 s = 0.67 step/s; 80 left -> 120 s
    assert lines[1] == "[progress] run: step 20/100 (20%) 0.67 step/s ETA 0:02:00 loss_d=0.500"
    assert lines[2].startswith("[progress] run: step 20/100 (20%) 0.67 step/s stopped after 0:00:30")
    assert len(lines) == 3


def test_resumed_progress_counts_only_new_steps_and_says_done():
    out, clock = io.StringIO(), Clock()
    bar = Progress(10, desc="r", initial=6, stream=out, interval=0, clock=clock, mode="lines")
    clock.t = 2
    bar.update(4)
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines[1] == "[progress] r: step 10/10 (100%) 2.00 step/s ETA 0:00:00"
    assert "done after 0:00:02" in lines[-1]


def test_disabled_and_off_are_silent(monkeypatch):
    out = io.StringIO()
    Progress(5, stream=out, enabled=False, interval=0).update(5)
    monkeypatch.setenv("XRAYGAN_PROGRESS", "off")
    with Progress(5, stream=out, interval=0) as bar:
        bar.update(5)
    assert out.getvalue() == ""


def test_zero_column_pty_and_files_get_lines_not_a_bar(tmp_path):
    master, slave = os.openpty()  # a fresh pty reports 0 columns: tqdm would draw nothing
    try:
        with os.fdopen(slave, "w", closefd=False) as tty:
            assert tty.isatty() and os.get_terminal_size(slave).columns == 0
            assert not is_terminal(tty)
            assert Progress(3, stream=tty, interval=0).mode == "lines"
    finally:
        os.close(master)
        os.close(slave)
    with open(tmp_path / "log", "w") as f:
        assert Progress(3, stream=f).mode == "lines"
    assert format_duration(3725) == "1:02:05" and format_duration(float("nan")) == "?"


def test_training_without_a_tty_prints_plain_lines_and_no_carriage_return(tmp_path, capfd,
                                                                          monkeypatch):
    monkeypatch.setenv("XRAYGAN_PROGRESS_INTERVAL", "0")
    assert main(["train", "--steps", "6", "--out", str(tmp_path), *TINY]) == 0
    err = capfd.readouterr().err
    assert "\r" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("[progress]")]
    assert lines[0].endswith("step 0/6 (0%) start")
    assert any("step 3/6 (50%)" in ln and "ETA" in ln and "loss_d=" in ln and "img_s=" in ln
               for ln in lines)
    assert "step 6/6 (100%)" in lines[-1] and "done after" in lines[-1]


def test_no_progress_silences_the_lines(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("XRAYGAN_PROGRESS_INTERVAL", "0")
    assert main(["train", "--steps", "2", "--out", str(tmp_path), "--no-progress", *TINY]) == 0
    assert "[progress]" not in capfd.readouterr().err


def test_tensorboard_event_file_has_the_scalars_and_sample_grids(tmp_path, capfd):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert main(["train", "--steps", "6", "--out", str(tmp_path), "--no-progress",
                 "--tensorboard", "--log-every", "2", *TINY]) == 0
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    events = list((run / "tb").glob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    tags = acc.Tags()
    assert {"loss/d", "loss/g", "D/real", "D/fake", "perf/images_per_s",
            "memory/rss_mb"} <= set(tags["scalars"])
    loss_d = acc.Scalars("loss/d")
    assert [e.step for e in loss_d] == [2, 4, 6]
    import pandas as pd

    csv = pd.read_csv(run / "metrics.csv")  # the CSV stays the record; the view repeats it
    assert [e.value for e in loss_d] == pytest.approx(csv["loss_d"].tolist(), rel=1e-6)
    assert all(0 <= e.value <= 1 for e in acc.Scalars("D/fake"))
    assert [e.step for e in acc.Images("samples")] == [3, 6]
    assert acc.Images("samples")[0].width == 2 + 2 * (16 + 2)  # the 2x2 grid of 16 px samples


def test_tensorboard_gets_the_end_of_run_metrics_and_hparams(tmp_path, capfd):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    evaluated = [a for a in TINY if a != "--no-eval"]
    assert main(["train", "--steps", "6", "--out", str(tmp_path), "--no-progress",
                 "--tensorboard", "--log-every", "2", *evaluated]) == 0
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    metrics = runs.read_summary(run)["metrics"]
    (last,) = acc.Scalars("eval/d_loss_mean")
    assert last.step == 6 and last.value == pytest.approx(metrics["d_loss_mean"], rel=1e-6)
    hp = b"".join(acc.PluginTagToContent("hparams").values())
    assert b"eval/d_loss_mean" in hp and b"train.device" in hp and b"auto" not in hp
    from xraygan.config import ExperimentConfig
    from xraygan.tensorboard import hparams_of

    cfg = ExperimentConfig().to_dict()
    cfg["optim"]["name"] = "adam" if cfg["optim"]["name"] != "adam" else "adas"
    got = hparams_of(cfg, {"cell": "x"}, device="cpu")
    # only what differs from the defaults, the extras and the device as resolved
    assert got == {"optim.name": cfg["optim"]["name"], "cell": "x", "train.device": "cpu"}


def test_a_slow_unit_still_gets_a_line_every_interval():
    # one update that takes longer than the interval (a batch of Inception features on a
    # loaded CPU): the heartbeat writes lines meanwhile, with the time so far
    import io
    import time as _time

    from xraygan.progress import Progress

    out = io.StringIO()
    bar = Progress(64, desc="features", unit="img", interval=1.0, stream=out, mode="lines")
    _time.sleep(2.6)
    bar.update(64)
    bar.close()
    lines = out.getvalue().splitlines()
    beats = [ln for ln in lines if "no img done yet" in ln]
    assert len(beats) >= 2 and beats[0].startswith("[progress] features: img 0/64 (0%)")
    assert lines[-1].startswith("[progress] features: img 64/64 (100%)") and "done after" in lines[-1]
    n = len(lines)
    _time.sleep(1.2)
    assert len(out.getvalue().splitlines()) == n  # closed: the heartbeat stops
