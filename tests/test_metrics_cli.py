"""run_metrics, `xraygan metrics` on fixture run folders, and `xraygan fid` on small sets."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from gan_core import runs
from gan_core.cli import main
from gan_core.config import DataConfig, ExperimentConfig, ModelConfig, OptimConfig, TrainConfig
from gan_core.data.imageops import to_uint8
from gan_core.data.phantom import generate_phantoms
from gan_core.errors import XrayganError
from gan_core.imageio import save_grid
from gan_core.metrics import METRICS, run_metrics


def make_run(root, name, level, blocky=False, steps=1500, t0=200):
    """A finished run folder without a checkpoint: config, metrics.csv, one sample grid."""
    cfg = ExperimentConfig(
        name=name,
        model=ModelConfig(image_size=32, g_features=8, d_features=8, latent_dim=16),
        data=DataConfig(source="phantom", num_images=16),
        train=TrainConfig(steps=steps, batch_size=8),
    )
    run = runs.new_run_dir(root, name)
    runs.write_config(run, cfg)
    rng = np.random.default_rng(len(name))
    with runs.MetricsLog(run) as log:
        for s in range(steps):
            ld = (0.02 if s < t0 else level) + 0.05 * abs(rng.standard_normal())
            log.write({"step": s, "epoch": s // 2, "loss_d": ld, "loss_g": 2.0 - ld,
                       "d_real": 0.6, "d_fake": 0.4, "images_per_s": 100.0, "time_s": s / 100})
    imgs = to_uint8(generate_phantoms(9, 32, seed=3))
    if blocky:
        imgs = np.kron(imgs[:, ::8, ::8], np.ones((8, 8), np.uint8))
    save_grid(torch.from_numpy(imgs)[:, None], runs.sample_path(run, steps))
    return run


def test_registry_lists_the_metrics():
    assert {"dloss", "collapse_loss", "samples", "fid"} <= set(METRICS.names())


def test_run_metrics_of_a_run_without_checkpoint(tmp_path):
    run = make_run(tmp_path, "a", 0.8, blocky=True)
    m = run_metrics(run)
    assert 200 <= m["t0"] <= 260
    assert m["d_loss_mean"] == pytest.approx(runs.read_metrics(run)["loss_d"].mean())
    assert m["collapse_detected"] == 0.0
    assert m["samples_source"].startswith("step_") and m["samples_n"] == 9
    assert m["blockiness"] > 0.9 and "diversity_ratio" in m
    json.dumps(m)  # flat and JSON-ready
    with pytest.raises(XrayganError, match="checkpoint"):
        run_metrics(run, fid=True)


def test_cli_metrics_table_correlations_and_evaluations(tmp_path, capsys):
    r1 = make_run(tmp_path / "runs", "low", 0.4)
    r2 = make_run(tmp_path / "runs", "high", 1.2, t0=400)
    out_json, out_csv = tmp_path / "m.json", tmp_path / "m.csv"
    assert main(["metrics", str(tmp_path / "runs"), "--json", str(out_json), "--csv", str(out_csv)]) == 0
    text = capsys.readouterr().out
    assert "d_loss_mean" in text and "Pearson correlation" in text and "Spearman" in text
    rows = json.loads(out_json.read_text())
    assert [r["run"] for r in rows] == [r2.name, r1.name] or [r["run"] for r in rows] == [r1.name, r2.name]
    by = {r["run"]: r for r in rows}
    assert by[r2.name]["d_loss_mean"] > by[r1.name]["d_loss_mean"]
    assert by[r2.name]["t0"] > by[r1.name]["t0"]
    assert out_csv.read_text().startswith("run,")
    ev = runs.read_evaluations(r1)
    assert len(ev) == 1 and ev[0]["kind"] == "metrics" and "t0" in ev[0]
    assert main(["metrics", str(tmp_path / "nothing")]) == 2  # not a run folder: one-line error


@pytest.fixture(scope="module")
def weights():
    from gan_core.metrics.weights import ensure_weights

    try:
        return ensure_weights()
    except XrayganError as e:
        if "could not download" in str(e):
            pytest.skip(f"FID weights unavailable offline: {e}")
        raise


def _folder(path, seed, n=3):
    path.mkdir()
    for i, a in enumerate(to_uint8(generate_phantoms(n, 32, seed=seed))):
        Image.fromarray(a).save(path / f"{i:02d}.png")
    return path


def test_cli_fid_on_folders_and_phantoms(weights, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XRAYGAN_FID_STATS", str(tmp_path / "stats"))
    a = _folder(tmp_path / "a", seed=1)
    out = tmp_path / "fid.json"
    rc = main(["fid", str(a), "phantom", "--samples", "3", "--image-size", "32",
               "--json", str(out), "--no-progress"])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["fid"] > 1 and res["fid_n1"] == 3 and res["fid_n2"] == 3 and res["fid_few_samples"]
    captured = capsys.readouterr()
    assert "FID:" in captured.out and "biased upwards" in captured.err
    assert len(list((tmp_path / "stats").glob("*-n3-pool3-v1.npz"))) == 1  # reference cached
    # the same folder against itself: 0 (up to rounding); the cache gives the same number
    assert main(["fid", str(a), str(a), "--json", str(out), "--no-progress"]) == 0
    assert json.loads(out.read_text())["fid"] == pytest.approx(0.0, abs=1e-3)
    assert main(["fid", str(a), "phantom", "--samples", "3", "--image-size", "32",
                 "--json", str(out), "--no-progress"]) == 0
    assert json.loads(out.read_text())["fid"] == pytest.approx(res["fid"], rel=1e-9)


def test_cli_fid_weights_check(weights, capsys):
    assert main(["fid-weights", "--check"]) == 0
    assert "feature check: ok" in capsys.readouterr().out


def test_fid_of_a_trained_run(weights, tmp_path):
    from gan_core.train import train

    cfg = ExperimentConfig(
        name="tiny",
        model=ModelConfig(image_size=16, g_features=8, d_features=8, latent_dim=16),
        optim=OptimConfig(name="adam"),
        data=DataConfig(source="phantom", num_images=16),
        train=TrainConfig(steps=4, batch_size=8, device="cpu", num_samples=16),
    )
    result = train(cfg, runs_root=tmp_path, progress=False, evaluate=False)
    m = run_metrics(result.run_dir, fid=True, fid_samples=16, kid=True)
    assert m["samples_source"] == "generated" and m["fid"] > 0 and np.isfinite(m["kid"])


def test_cli_fid_names_a_missing_source(tmp_path, capsys):
    assert main(["fid", str(tmp_path / "nope"), "phantom"]) == 2
    err = capsys.readouterr().err
    assert "nope: not found; expected an image folder, a run folder, or a dataset spec" in err
