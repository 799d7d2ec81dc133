"""Fuzz the flags of every subcommand (issue 11 item 7): hypothesis draws a few flags per case,
each with a plausible, hostile or malformed value (huge and negative integers, NaN / inf,
odd text, paths that are files, folders, missing or under a file), and runs
``xraygan.cli.main`` in-process. The contract (tests/fuzz_helpers.py): exit 0, 2 or 3; no
traceback; bounded peak RSS; the files of an existing run unchanged.

Cases stay cheap by construction, not by luck: ``train`` and ``sweep`` run with ``--dry-run``,
``memory`` with ``--no-measure``, ``fid`` gets sources that cannot be loaded, plausible sizes
stay small (hostile ones are far beyond every bound, so they must be rejected at parse time),
and the working directory is a temporary folder. ``XRAYGAN_FUZZ=long`` (``nox -s fuzz``) runs
many more examples; a few cases also run as real subprocesses under an address-space limit.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fuzz_helpers import FUZZ, PROFILE, floats, ints, paths, run_main, texts
from hypothesis import given
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A finished tiny run (guarded: no case may change it), a copy for commands that append
    to a run by design (metrics), and a scratch folder used as the working directory."""
    from xraygan.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig
    from xraygan.train import train

    root = tmp_path_factory.mktemp("fuzz")
    cfg = ExperimentConfig(
        name="guarded",
        model=ModelConfig(image_size=16, g_features=4, d_features=4, latent_dim=8),
        data=DataConfig(num_images=8),
        train=TrainConfig(steps=2, batch_size=4, device="cpu", sample_every=0, checkpoint_every=0),
    )
    run = train(cfg, runs_root=root / "runs", progress=False, evaluate=False).run_dir
    copy = root / "copy"
    shutil.copytree(run, copy)
    scratch = root / "scratch"
    scratch.mkdir()
    return {"run": Path(run), "copy": copy, "tmp": scratch}


@pytest.fixture
def in_scratch(world, monkeypatch):
    monkeypatch.chdir(world["tmp"])  # relative defaults (runs/, studies/) land here
    monkeypatch.setenv("XRAYGAN_CACHE_DIR", str(world["tmp"] / "cache"))
    return world


def one_of(*values):
    return st.sampled_from(values)


def draw_flags(data, spec: dict[str, st.SearchStrategy], max_flags: int = 4) -> list[str]:
    """A few flags of ``spec`` with drawn values (a value of None: a switch)."""
    names = data.draw(st.lists(st.sampled_from(sorted(spec)), unique=True, max_size=max_flags))
    argv = []
    for name in names:
        strategy = spec[name]
        if strategy is None:
            argv.append(name)
        else:
            argv += [name, data.draw(strategy, label=name)]
    return argv


def _fix(argv: list[str]) -> list[str]:
    # "--steps=-1" keeps argparse from reading a leading-dash value as a flag
    out, i = [], 0
    while i < len(argv):
        if argv[i].startswith("--") and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


@FUZZ
@given(data=st.data())
def test_fuzz_train(in_scratch, data):
    w = in_scratch
    spec = {
        "--image-size": ints(), "--features": ints(), "--g-features": ints(), "--latent-dim": ints(),
        "--g-fc": ints(), "--d-fc": ints(), "--padding": ints(), "--g-strides": texts(),
        "--d-kernels": one_of("4,4,4", "0", "2,2", "x", "1," * 40), "--lr": floats(),
        "--lr2": floats(), "--beta1": floats(), "--eps": floats(), "--init-std": floats(),
        "--weight-decay": floats(), "--leaky-slope": floats(), "--epochs": floats(),
        "--steps": ints(), "--seed": ints(), "--data-seed": ints(), "--batch-size": ints(),
        "--num-images": ints(), "--num-samples": ints(), "--log-every": ints(),
        "--optimizer": one_of("adam", "adas", "sgd", "adamw", ""), "--momentum": floats(),
        "--preset": one_of("dcgan", "paper-elu", "nope", ""),
        "--g-activation": one_of("relu", "leaky_relu", "elu2", ""), "--batchnorm": texts(),
        "--amp": texts(), "--loss": texts(), "--data": texts(), "--device": texts(),
        "--config": paths(w["tmp"]), "--out": paths(w["tmp"], [w["run"]]), "--name": texts(),
        "--resume": paths(w["tmp"], [w["run"]]), "--ttur": None, "--no-ttur": None,
        "--compile": None,
    }
    argv = ["train", "--dry-run", "--image-size", "16", "--features", "4", "--latent-dim", "8",
            "--steps", "1"] + draw_flags(data, spec)
    run_main(_fix(argv), guarded=[w["run"]])


@FUZZ
@given(data=st.data())
def test_fuzz_presets(in_scratch, data):
    name = data.draw(st.one_of(one_of("dcgan", "paper-elu", "paper-elu-nobn"), texts()))
    argv = ["presets", *([name] if name and not name.startswith("-") else [])]
    argv += draw_flags(data, {"--image-size": ints()})
    run_main(_fix(argv), guarded=[in_scratch["run"]])


@FUZZ
@given(data=st.data())
def test_fuzz_memory(in_scratch, data):
    w = in_scratch
    spec = {
        "--image-size": ints(), "--features": ints(), "--batch-size": ints(),
        "--preset": texts(), "--batchnorm": texts(), "--optimizer": texts(),
        "--momentum": floats(), "--amp": one_of("off", "bf16", "fp8"), "--config": paths(w["tmp"]),
        "--json": paths(w["tmp"]), "--csv": paths(w["tmp"]), "--batchnorm-compare": None,
    }
    argv = ["memory", "--no-measure", "--device", "cpu", "--image-size", "16", "--features", "4",
            "--batch-size", "2"] + draw_flags(data, spec)
    run_main(_fix(argv), guarded=[w["run"]])


@FUZZ
@given(data=st.data())
def test_fuzz_sweep(in_scratch, data):
    w = in_scratch
    study = data.draw(one_of("table1", "table3", "seeds", "batchnorm", "compress-search", "nope"))
    spec = {
        "--steps": ints(), "--epochs": floats(), "--seeds": ints(), "--image-size": ints(),
        "--features": ints(), "--batch-size": ints(), "--fid-samples": ints(), "--grace": ints(),
        "--heartbeat": ints(), "--max-retry": ints(), "--workers": ints(), "--trials": ints(),
        "--num-images": ints(), "--out": paths(w["tmp"]), "--storage": texts(),
        "--study-name": texts(), "--cell": one_of("table1:adas-elu", "table1:nope", "x", ":"),
        "--config": paths(w["tmp"]), "--data": texts(), "--json": paths(w["tmp"]),
        "--full": None, "--no-fid": None, "--sample-every": ints(), "--checkpoint-every": ints(),
    }
    argv = ["sweep", study, "--dry-run", "--no-estimate"] + draw_flags(data, spec)
    run_main(_fix(argv), guarded=[w["run"]])


@FUZZ
@given(data=st.data())
def test_fuzz_fid(in_scratch, data):
    """Sources that cannot be loaded (so no Inception pass): every flag is still parsed and
    checked before the sources are opened."""
    w = in_scratch
    (w["tmp"] / "empty").mkdir(exist_ok=True)
    a = data.draw(one_of(str(w["tmp"] / "missing"), str(w["tmp"] / "empty"),
                         str(w["tmp"] / "a_file.txt"), "folder:", "dicom:/nonexistent"))
    spec = {
        "--fid-samples": ints(), "--samples": ints(), "--image-size": ints(),
        "--batch-size": ints(), "--k": ints(), "--noise-seed": ints(), "--json": paths(w["tmp"]),
        "--out": paths(w["tmp"]), "--save-stats": paths(w["tmp"]), "--device": texts(),
    }
    argv = ["fid", a, str(w["tmp"] / "missing-b")] + draw_flags(data, spec)
    code, _, _ = run_main(_fix(argv), guarded=[w["run"]])
    assert code != 0  # the sources cannot be read


@FUZZ
@given(data=st.data())
def test_fuzz_metrics(in_scratch, data):
    w = in_scratch
    target = data.draw(st.one_of(paths(w["tmp"]), one_of(str(w["copy"]))))
    spec = {"--fid-samples": ints(), "--json": paths(w["tmp"]), "--csv": paths(w["tmp"]),
            "--device": one_of("cpu", "cuda:9", "")}
    argv = ["metrics", target] + draw_flags(data, spec, max_flags=3)
    run_main(_fix(argv), guarded=[w["run"]])


@FUZZ
@given(data=st.data())
def test_fuzz_report(in_scratch, data):
    w = in_scratch
    corrupt = w["tmp"] / "corrupt.db"  # rewritten every case: other cases may write a_file.txt
    corrupt.write_bytes(b"SQLite format 2\x00" + bytes(range(256)) * 4)
    spec = {"--storage": one_of("bogus://x", f"sqlite:///{corrupt}", f"sqlite:///{w['tmp']}",
                                "postgresql+psycopg2://u@127.0.0.1:1/db", "sqlite://", ""),
            "--out": paths(w["tmp"]), "--runs": paths(w["tmp"], [w["run"]]),
            "--memory": paths(w["tmp"]), "--no-figures": None}
    study = data.draw(one_of("table1-quick", "nosuch", ""))
    argv = ["report", *([study] if study else []), "--no-figures"] + draw_flags(data, spec, 3)
    run_main(_fix(argv), guarded=[w["run"]])


@FUZZ
@given(data=st.data())
def test_fuzz_data(in_scratch, data):
    w = in_scratch
    action = data.draw(one_of("preview", "prepare", "phantom-dicom"))
    if action == "preview":
        argv = ["data", "preview", data.draw(texts()), "--png", data.draw(paths(w["tmp"])),
                "--image-size", "16", "--count", "2"]
        argv += draw_flags(data, {"--image-size": ints(), "--data-seed": ints(),
                                  "--count": one_of("0", "-1", "3", "x")})
    elif action == "prepare":
        (w["tmp"] / "nodicom").mkdir(exist_ok=True)
        src = data.draw(one_of(str(w["tmp"] / "nodicom"), str(w["tmp"] / "missing"),
                               str(w["tmp"] / "a_file.txt")))
        argv = ["data", "prepare", src, "--no-progress"]
        argv += draw_flags(data, {"--image-size": ints(), "--limit": ints(),
                                  "--subset-seed": ints(), "--workers": one_of("0", "-1", "1"),
                                  "--max-pixels": ints(), "--cache": paths(w["tmp"]),
                                  "--labels": texts(), "--square": texts()})
    else:
        argv = ["data", "phantom-dicom", data.draw(paths(w["tmp"])), "--count", "1",
                "--size", "32", "--codec", "raw"]
        argv += draw_flags(data, {"--count": one_of("0", "-1", "2"), "--data-seed": ints(),
                                  "--size": one_of("0", "-5", "16", "x"),
                                  "--codec": texts()})
    run_main(_fix(argv), guarded=[w["run"]])


# ------------------------------------------------------------------ real processes
SUBPROCESS_CASES = [
    ["train", "--image-size", "4096", "--features", "4096", "--steps", "1", "--dry-run"],
    ["train", "--epochs", "nan"],
    ["train", "--seed", "18446744073709551616"],
    ["presets", "--image-size", "1048576"],
    ["memory", "--batch-size", "1000000000"],
    ["sweep", "seeds", "--steps=-1"],
    ["fid", "/nonexistent", "phantom"],
    ["train", "--config", "/dev/zero", "--dry-run"],
    ["fid", "phantom", "phantom", "--batch-size", "100000000"],
    ["sample", ".", "--n", "1000000000", "--batch-size", "1000000000", "--out", "s"],
]


# each costs a Python + torch start (~5 s idle, ~20 s on a busy machine): 1 by default
@pytest.mark.parametrize("argv", SUBPROCESS_CASES if PROFILE == "long" else SUBPROCESS_CASES[:1],
                         ids=lambda a: " ".join(a)[:40])
def test_fuzz_subprocess_under_an_address_space_limit(world, argv):
    """The console entry point as a user runs it, with RLIMIT_AS at 6 GiB: a memory bomb
    becomes a MemoryError (a traceback, exit 1) instead of a swapping machine."""
    limit = 6 * 2**30

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-m", "xraygan", *argv], cwd=world["tmp"], env=env,
                          capture_output=True, text=True, timeout=300, preexec_fn=cap)
    assert proc.returncode in (0, 2, 3), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
