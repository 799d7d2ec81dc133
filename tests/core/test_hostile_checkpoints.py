"""Loaded artifacts checked against each other: a checkpoint against its own config and the
run folder's config.json, weights for finiteness, metric logs for steps that a run can write.

A hypothesis property damages a real checkpoint and run folder (keys, shapes, NaN, a foreign
config, truncation, edited logs) and checks the contract through the CLI: exit 0/2/3, no
traceback, and the other run folder untouched.
"""

from __future__ import annotations

import shutil

import pytest
import torch
from fuzz_helpers import FUZZ, run_main, tree_hash
from hypothesis import given
from hypothesis import strategies as st

from xraygan import runs
from xraygan.checkpoint import InvalidCheckpoint, load_checkpoint, save_checkpoint
from xraygan.config import DataConfig, ExperimentConfig, ModelConfig, OptimConfig, TrainConfig
from xraygan.errors import RunFolderError
from xraygan.sampling import load_generator
from xraygan.train import train


def tiny(size: int = 16) -> ExperimentConfig:
    return ExperimentConfig(
        name=f"tiny{size}",
        model=ModelConfig(image_size=size, g_features=4, d_features=4, latent_dim=8),
        optim=OptimConfig(name="adam"), data=DataConfig(source="phantom", num_images=16),
        train=TrainConfig(steps=2, batch_size=4, device="cpu", sample_every=0,
                          checkpoint_every=0, num_samples=4))


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    a = train(tiny(16), runs_root=root, progress=False, evaluate=False).run_dir
    b = train(tiny(32), runs_root=root, progress=False, evaluate=False).run_dir
    return a, b


def copy_run(run, tmp_path, name="copy"):
    dest = tmp_path / name
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns(".lock"))
    return dest


def test_a_checkpoint_from_another_run_is_refused(two_runs, tmp_path):
    a, b = two_runs
    mixed = copy_run(a, tmp_path)
    shutil.copy(runs.checkpoint_path(b), runs.checkpoint_path(mixed))
    with pytest.raises(InvalidCheckpoint, match=r"not from this run folder's config.*image_size 32 vs 16"):
        load_generator(mixed)
    code, _, err = run_main(["sample", str(mixed), "--n", "2", "--out", str(tmp_path / "s")])
    assert code == 2 and "image_size" in err
    code, _, err = run_main(["train", "--resume", str(mixed), "--steps", "4", "--no-progress"])
    assert code == 2 and "not from this run folder" in err


def test_nan_weights_are_refused_not_sampled(two_runs, tmp_path):
    run = copy_run(two_runs[0], tmp_path)
    ckpt = load_checkpoint(runs.checkpoint_path(run))
    for v in ckpt["G"].values():
        if v.is_floating_point():
            v.fill_(float("nan"))
    save_checkpoint(runs.checkpoint_path(run), {k: v for k, v in ckpt.items() if k != "format"})
    with pytest.raises(InvalidCheckpoint, match="NaN or infinity"):
        load_checkpoint(runs.checkpoint_path(run))
    code, _, err = run_main(["fid", str(run), "phantom", "--fid-samples", "4", "--no-progress"])
    assert code == 2 and "NaN" in err


def test_tensors_that_do_not_fit_their_own_config(two_runs, tmp_path):
    run = copy_run(two_runs[0], tmp_path)
    ckpt = load_checkpoint(runs.checkpoint_path(run))
    ckpt["config"]["model"]["g_features"] = 8  # the tensors were built with 4
    save_checkpoint(runs.checkpoint_path(run), {k: v for k, v in ckpt.items() if k != "format"})
    with pytest.raises(InvalidCheckpoint, match="do not fit the checkpoint's own config"):
        load_checkpoint(runs.checkpoint_path(run))


@pytest.mark.parametrize("rows, match", [
    ("step,loss_d,loss_g\n-5,1,1\n", "step -5 is not a step"),
    ("step,loss_d,loss_g\n1,1,1\n3,1,1\n2,1,1\n", "step 2 follows step 3"),
    ("step,loss_d,loss_g\n1,1,1\n1,1,1\n", "step 1 follows step 1"),
    ("step,loss_d,loss_g\n1.5,1,1\n", "1.5 is not a step"),
])
def test_metric_logs_with_impossible_steps_are_refused(two_runs, tmp_path, rows, match):
    run = copy_run(two_runs[0], tmp_path)
    (run / runs.STEP_LOG).write_text(rows)
    with pytest.raises(RunFolderError, match=match):
        runs.read_metrics(run)
    code, _, err = run_main(["metrics", str(run)])
    assert code == 2 and "metrics.csv" in err


# ------------------------------------------------------------------ property: damaged runs
DAMAGE = ["none", "drop_key", "nan", "inf", "shape", "foreign_config", "truncate", "bytes",
          "step_negative", "config_json_model", "config_json_garbage", "metrics_back",
          "metrics_negative", "summary_garbage", "summary_deep", "wrong_type"]


def damage(run, kind: str, data) -> None:
    ck = runs.checkpoint_path(run)
    if kind in ("drop_key", "nan", "inf", "shape", "foreign_config", "step_negative", "wrong_type"):
        ckpt = load_checkpoint(ck)
        payload = {k: v for k, v in ckpt.items() if k != "format"}
        name = data.draw(st.sampled_from(sorted(payload["G"])))
        if kind == "drop_key":
            del payload[data.draw(st.sampled_from(["G", "D", "config", "rng", "step", "opt_g"]))]
        elif kind in ("nan", "inf") and payload["G"][name].is_floating_point():
            payload["G"][name].view(-1)[0] = float(kind)
        elif kind == "shape":
            payload["G"][name] = torch.zeros(*payload["G"][name].shape, 2)
        elif kind == "foreign_config":
            payload["config"]["model"]["image_size"] = 32
        elif kind == "step_negative":
            payload["step"] = -3
        elif kind == "wrong_type":
            payload["G"] = [1, 2]
        save_checkpoint(ck, payload)
    elif kind == "truncate":
        blob = ck.read_bytes()
        ck.write_bytes(blob[: data.draw(st.integers(0, len(blob) - 1))])
    elif kind == "bytes":
        ck.write_bytes(data.draw(st.binary(max_size=64)))
    elif kind == "config_json_model":
        cfg = runs.read_config(run)
        (run / runs.CONFIG).write_text(tiny(32).to_json().replace("tiny32", cfg.name))
    elif kind == "config_json_garbage":
        (run / runs.CONFIG).write_text(data.draw(st.sampled_from(
            ['{"name": 1}', "[]", '{"model": {"image_size": 16, "image_size": 32}}', "\x00"])))
    elif kind == "metrics_back":
        (run / runs.STEP_LOG).write_text("step,loss_d,loss_g\n2,1,1\n1,1,1\n")
    elif kind == "metrics_negative":
        (run / runs.STEP_LOG).write_text("step,loss_d,loss_g\n-1,1,1\n")
    elif kind == "summary_garbage":
        (run / runs.SUMMARY).write_text(data.draw(st.sampled_from(["[", "3", "{}", '{"step": "x"}'])))
    elif kind == "summary_deep":
        (run / runs.SUMMARY).write_text("[" * 100000 + "]" * 100000)


@FUZZ
@given(data=st.data())
def test_property_damaged_runs_keep_the_contract(two_runs, tmp_path_factory, data):
    a, b = two_runs
    tmp = tmp_path_factory.mktemp("damaged")
    run = copy_run(a, tmp)
    kind = data.draw(st.sampled_from(DAMAGE))
    damage(run, kind, data)
    command = data.draw(st.sampled_from(["sample", "fid", "metrics", "resume"]))
    argv = {"sample": ["sample", str(run), "--n", "2", "--out", str(tmp / "s")],
            "fid": ["fid", str(run), "phantom", "--fid-samples", "3", "--image-size", "16",
                    "--no-progress"],
            "metrics": ["metrics", str(run)],
            "resume": ["train", "--resume", str(run), "--steps", "3", "--no-progress",
                       "--no-eval"]}[command]
    before = tree_hash(b)
    code, _, err = run_main(argv, guarded=[b])
    assert tree_hash(b) == before
    if kind == "none":
        assert code == 0, err
    checkpoint_damage = {"drop_key", "nan", "inf", "shape", "foreign_config", "step_negative",
                         "wrong_type", "truncate", "bytes", "config_json_model",
                         "config_json_garbage"}
    if kind in checkpoint_damage and command in ("sample", "resume"):
        assert code == 2, (kind, err)
    if kind in ("metrics_back", "metrics_negative") and command == "metrics":
        assert code == 2, (kind, err)


def test_oversized_run_files_are_refused_unread(two_runs, tmp_path, monkeypatch):
    run = copy_run(two_runs[0], tmp_path)
    with open(run / runs.STEP_LOG, "ab") as f:
        f.truncate(3 * 2**30)  # sparse: claims 3 GiB
    with pytest.raises(RunFolderError, match="XRAYGAN_MAX_METRICS_BYTES"):
        runs.read_metrics(run)
    monkeypatch.setenv("XRAYGAN_MAX_JSON_BYTES", "100")
    (run / runs.SUMMARY).write_text('{"step": 2, "pad": "' + "x" * 200 + '"}')
    with pytest.raises(RunFolderError, match="XRAYGAN_MAX_JSON_BYTES"):
        runs.read_summary(run)
