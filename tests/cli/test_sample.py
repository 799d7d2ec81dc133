"""``xraygan sample``: single PNGs at the run's size that pytorch-fid / torch-fidelity read."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from xraygan.cli import main
from xraygan.config import DataConfig, ExperimentConfig, ModelConfig, OptimConfig, TrainConfig
from xraygan.imageio import to_uint8
from xraygan.sampling import generate_images, load_generator
from xraygan.train import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    cfg = ExperimentConfig(
        name="tiny",
        model=ModelConfig(image_size=16, g_features=8, d_features=8, latent_dim=16),
        optim=OptimConfig(name="adam"),
        data=DataConfig(source="phantom", num_images=32),
        train=TrainConfig(steps=2, batch_size=8, device="cpu", sample_every=0,
                          checkpoint_every=0, num_samples=4),
    )
    return train(cfg, runs_root=tmp_path_factory.mktemp("runs"), progress=False,
                 evaluate=False).run_dir


def test_sample_writes_n_single_pngs_fid_tools_read(run_dir, tmp_path):
    out = tmp_path / "samples"
    assert main(["sample", str(run_dir), "--n", "10", "--out", str(out), "--batch-size", "4",
                 "--no-progress"]) == 0
    files = sorted(out.glob("*.png"))
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(10)]
    for f in files:
        im = Image.open(f)
        assert im.size == (16, 16) and im.mode == "L"  # the run's size, 8-bit grayscale
    # exactly what pytorch-fid's ImagePathDataset (and torch-fidelity) do with each file
    from pytorch_fid.fid_score import IMAGE_EXTENSIONS, ImagePathDataset

    listed = sorted(p for ext in IMAGE_EXTENSIONS for p in out.glob(f"*.{ext}"))
    assert listed == files  # samples.json is not picked up as an image
    rgb = ImagePathDataset(listed)[3]
    assert rgb.mode == "RGB" and rgb.size == (16, 16)
    # the same images as the generator's own uint8 path, batched: nothing lost in the file
    g, cfg = load_generator(run_dir)
    want = generate_images(g, 10, cfg.model.latent_dim, batch_size=4, seed=12345)
    got = np.stack([np.asarray(Image.open(f)) for f in files])
    assert np.array_equal(got, want[:, 0].numpy())
    assert np.array_equal(np.asarray(rgb)[..., 0], got[3])
    info = json.loads((out / "samples.json").read_text())
    assert info["n"] == 10 and info["bits"] == 8 and info["noise_seed"] == 12345


def test_sample_16_bit_keeps_the_extra_precision(run_dir, tmp_path):
    out = tmp_path / "s16"
    assert main(["sample", str(run_dir), "--n", "3", "--out", str(out), "--bits", "16",
                 "--no-progress"]) == 0
    files = sorted(out.glob("*.png"))
    assert len(files) == 3
    im = Image.open(files[0])
    assert im.mode == "I;16" and im.size == (16, 16)
    px16 = np.asarray(im).astype(np.int64)
    assert px16.max() > 255  # really 16-bit values, not 8-bit ones in a wide container
    g, cfg = load_generator(run_dir)
    with torch.inference_mode():
        z = torch.randn(3, cfg.model.latent_dim, generator=torch.Generator().manual_seed(12345))
        u8 = to_uint8(g(z))[0, 0].numpy().astype(np.int64)
    assert np.abs(px16 / 257.0 - u8).max() <= 0.51  # the same image at 257x finer steps
    # why FID tools get the 8-bit default: PIL's convert("RGB") saturates 16-bit values
    assert np.asarray(im.convert("RGB")).max() == 255 and (np.asarray(im.convert("RGB")) == 255).mean() > 0.9


def test_sample_refuses_a_folder_with_pngs_and_a_missing_run(run_dir, tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "old.png").write_bytes(b"")
    assert main(["sample", str(run_dir), "--n", "2", "--out", str(out), "--no-progress"]) == 2
    assert "already holds PNG files" in capsys.readouterr().err
    assert main(["sample", str(tmp_path), "--n", "2", "--out", str(tmp_path / "x"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint" in err and "Traceback" not in err
