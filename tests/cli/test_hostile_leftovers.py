"""What the previous round left (issue 28, first paragraph), through the CLI: statistics of
another dimension and compressed statistics declaring huge arrays in `fid`, `sample` with a
huge --batch-size, Ctrl-C reaching `data prepare`'s workers, and the two misleading messages."""

from __future__ import annotations

import io
import json
import shutil
import signal
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fuzz_helpers import run_main
from PIL import Image

from xraygan import runs


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from xraygan.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig
    from xraygan.train import train

    root = tmp_path_factory.mktemp("left")
    cfg = ExperimentConfig(
        name="tiny", model=ModelConfig(image_size=16, g_features=4, d_features=4, latent_dim=8),
        data=DataConfig(num_images=8),
        train=TrainConfig(steps=2, batch_size=4, device="cpu", sample_every=0, checkpoint_every=0))
    return Path(train(cfg, runs_root=root / "runs", progress=False, evaluate=False).run_dir)


def test_fid_statistics_of_another_dimension_are_one_line(tmp_path):
    f = tmp_path / "ten.npz"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 10))
    np.savez(f, mu=x.mean(0), sigma=np.cov(x, rowvar=False))
    code, _, err = run_main(["fid", "phantom", str(f), "--samples", "8", "--image-size", "16"])
    assert code == 2 and "array 'mu' has shape (10,), expected 2048" in err
    assert "Inception pool3 statistics have 2048 dimensions" in err


def _npy_header(shape: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False,
                                              "shape": shape})
    return buf.getvalue()


def test_fid_compressed_statistics_declaring_gigabytes_are_refused_unread(tmp_path):
    f = tmp_path / "bomb.npz"
    with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:  # 58 GB declared, bytes stored
        z.writestr("mu.npy", _npy_header((2048,)) + bytes(2048 * 8))
        z.writestr("sigma.npy", _npy_header((88_000, 88_000)) + bytes(1 << 16))
    assert f.stat().st_size < 1 << 20
    code, _, err = run_main(["fid", "phantom", str(f), "--samples", "8", "--image-size", "16"])
    assert code == 2 and "array 'sigma' has shape (88000, 88000), expected 2048x2048" in err


def test_sample_runs_g_on_bounded_batches(tiny_run, tmp_path, monkeypatch):
    from xraygan import sampling
    from xraygan.cli import sample

    seen: list[int] = []
    real = sampling.load_generator

    def spy(*a, **kw):
        g, cfg = real(*a, **kw)
        forward = g.forward
        g.forward = lambda z: (seen.append(len(z)), forward(z))[1]
        return g, cfg

    monkeypatch.setattr(sampling, "load_generator", spy)
    out = tmp_path / "big"
    code, _, _ = run_main(["sample", str(tiny_run), "--n", "1200", "--batch-size", "1000000",
                           "--out", str(out), "--no-progress", "--device", "cpu"])
    assert code == 0 and len(list(out.glob("*.png"))) == 1200
    assert max(seen) == sample.GEN_CHUNK and sum(seen) == 1200
    # the same --batch-size still draws the same noise: images equal an unchunked run's
    small = tmp_path / "small"
    monkeypatch.setattr(sample, "GEN_CHUNK", 10**7)
    code, _, _ = run_main(["sample", str(tiny_run), "--n", "1200", "--batch-size", "1000000",
                           "--out", str(small), "--no-progress", "--device", "cpu"])
    for name in ("000000.png", "000777.png", "001199.png"):
        assert (out / name).read_bytes() == (small / name).read_bytes()


def test_a_million_batch_is_refused_or_bounded_before_allocating(tiny_run, tmp_path):
    code, _, err = run_main(["sample", str(tiny_run), "--n", "1000000000", "--batch-size",
                             "1000000000", "--out", str(tmp_path / "x"), "--device", "cpu"])
    assert code == 2 and "--batch-size" in err


def test_preparation_workers_leave_ctrl_c_to_the_preparing_process():
    from xraygan.data import cache

    with cache._pool(2, json.loads) as ex:
        got = {ex.submit(signal.getsignal, signal.SIGINT).result() for _ in range(4)}
    assert got == {signal.SIG_IGN}
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # ours is restored


def test_a_folder_of_mixed_sizes_gets_advice_that_works_for_fid(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i, side in enumerate((24, 24, 30)):
        Image.fromarray(np.full((side, side), 40 * i, np.uint8)).save(folder / f"{i}.png")
    code, _, err = run_main(["fid", str(folder), "phantom", "--samples", "8", "--image-size", "16"])
    assert code == 2 and f"folder:{folder} with --image-size N" in err
    assert "pass an image size" not in err
    # the advice, followed, works
    code, out, err = run_main(["fid", f"folder:{folder}", str(folder / ".." / "none.npz"),
                               "--samples", "8", "--image-size", "16"])
    assert "images of different sizes" not in err


def test_a_run_that_lost_its_summary_is_not_called_a_failed_start(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / runs.SUMMARY).unlink()
    code, _, err = run_main(["metrics", str(run)])
    assert code == 2 and "a run without its summary.json (it holds a checkpoint" in err
    assert "delete" not in err and f"xraygan train --resume {run}" in err
    code, _, err = run_main(["metrics", str(tmp_path)])  # a folder of runs names it too
    assert code == 2 and "lack their summary.json" in err
