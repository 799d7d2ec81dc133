"""run_metrics, `xraygan metrics` on fixture run folders, and `xraygan fid` on small sets."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from xraygan import runs
from xraygan.cli import main
from xraygan.config import DataConfig, ExperimentConfig, ModelConfig, OptimConfig, TrainConfig
from xraygan.data.imageops import to_uint8
from xraygan.data.phantom import generate_phantoms
from xraygan.errors import XrayganError
from xraygan.imageio import save_grid
from xraygan.metrics import METRICS, run_metrics


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
    runs.update_summary(run, status="completed", step=steps)
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


@pytest.mark.parametrize("damage", ["metrics.csv", "grid"])
def test_cli_metrics_of_a_damaged_run_exits_2_naming_the_file(tmp_path, capsys, damage):
    good = make_run(tmp_path / "runs", "good", 0.4)
    bad = make_run(tmp_path / "runs", "bad", 0.8)
    target = bad / "metrics.csv" if damage == "metrics.csv" else runs.sample_paths(bad)[-1]
    target.write_bytes(b"\x89PNG garbage \xff\xfe" * 50 if damage == "grid" else b"\x00\xff" * 300)
    assert main(["metrics", str(tmp_path / "runs")]) == 2
    out, err = capsys.readouterr()
    assert good.name in out  # the readable run's table is still printed
    line = err.strip().splitlines()[-1]
    assert target.name in line and "1 of 2 runs could not be evaluated" in line
    assert "Traceback" not in err
    assert not runs.read_evaluations(bad)  # nothing recorded for the damaged run
    with pytest.raises(XrayganError, match=target.name):
        run_metrics(bad)


def test_a_run_without_grid_or_checkpoint_is_not_applicable_not_damaged(tmp_path):
    run = make_run(tmp_path, "nogrid", 0.5)
    for p in runs.sample_paths(run):
        p.unlink()
    m = run_metrics(run)
    assert "d_loss_mean" in m
    assert "samples: not applicable (no checkpoint and no sample grid" in m["notes"]


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
    from xraygan.train import train

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


def _tiny_run(root, num_images=32, holdout=0.0):
    from xraygan.train import train

    cfg = ExperimentConfig(
        name="tiny",
        model=ModelConfig(image_size=16, g_features=8, d_features=8, latent_dim=16),
        optim=OptimConfig(name="adam"),
        data=DataConfig(source="phantom", num_images=num_images),
        train=TrainConfig(steps=2, batch_size=min(8, num_images), device="cpu", num_samples=16),
    )
    return train(cfg, runs_root=root, progress=False, evaluate=False).run_dir


def test_every_metric_of_a_trained_run_from_one_pass(weights, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XRAYGAN_FID_STATS", str(tmp_path / "stats"))
    run = _tiny_run(tmp_path)
    from xraygan.metrics import compare as C

    calls = []
    real = C.feature_stats
    monkeypatch.setattr(C, "feature_stats", lambda imgs, *a, **k: calls.append(len(imgs)) or real(imgs, *a, **k))
    m = run_metrics(run, fid=True, kid=True, fid_samples=24, heldout_samples=20)
    # one Inception pass per set: generated 24, training 32 (cached), held-out 20 (cached)
    assert calls == [24] and len(list((tmp_path / "stats").glob("*.npz"))) == 2
    for key in ("fid", "kid", "precision", "recall", "density", "coverage", "mem_ct",
                "mem_px_ct", "mem_copy_fraction", "spectral_distance", "hf_deficit"):
        assert np.isfinite(m[key]), key
    assert 0 <= m["precision"] <= 1 and m["mem_heldout_n"] == 20 and m["mem_copying"] in (0.0, 1.0)
    assert np.isnan(m["kid_std"])  # 24 samples: one KID estimate, no spread to report
    assert (run / "closest_pairs.png").is_file() and (run / "spectrum.json").is_file()
    assert main(["metrics", str(run), "--fid", "--fid-samples", "24", "--heldout-samples", "20"]) == 0
    out = capsys.readouterr().out
    assert "precision" in out and "mem_ct" in out and "hf_deficit" in out


def test_one_training_image_says_not_applicable(weights, tmp_path, monkeypatch):
    monkeypatch.setenv("XRAYGAN_FID_STATS", str(tmp_path / "stats"))
    run = _tiny_run(tmp_path, num_images=1)
    m = run_metrics(run, fid=True, fid_samples=12, heldout_samples=12)
    assert np.isnan(m["fid"]) and np.isnan(m["precision"])
    assert "fid: not applicable (1 image in a set" in m["notes"]
    assert "memorization: not applicable (too few images (1 training" in m["notes"]


def test_statistics_equal_pytorch_fids_own_pipeline(weights, tmp_path):
    """pytorch-fid end to end (its folder loader, its InceptionV3) against `xraygan fid` on the
    same folder: the same statistics, so FIDs compare with published ones."""
    from pytorch_fid.fid_score import save_fid_stats

    a = _folder(tmp_path / "a", seed=1, n=6)
    theirs_a, ours_a = tmp_path / "theirs_a.npz", tmp_path / "ours_a.npz"
    save_fid_stats([str(a), str(theirs_a)], 6, "cpu", 2048, num_workers=0)
    assert main(["fid", str(a), "--save-stats", str(ours_a), "--no-progress"]) == 0
    t, o = np.load(theirs_a), np.load(ours_a)
    assert np.abs(t["mu"] - o["mu"]).max() < 1e-4 * max(1.0, np.abs(t["mu"]).max())
    assert np.abs(t["sigma"] - o["sigma"]).max() < 1e-4 * max(1.0, np.abs(t["sigma"]).max())
    # the distance itself against pytorch-fid's: tests/metrics/test_frechet.py (its scipy sqrtm of a
    # 2048 x 2048 product takes 16-110 s on 2 cores, too slow to repeat here)


def test_save_stats_is_pytorch_fid_format_and_readable_back(weights, tmp_path, capsys):
    from pytorch_fid.fid_score import calculate_frechet_distance

    a, b = _folder(tmp_path / "a", seed=1, n=6), _folder(tmp_path / "b", seed=2, n=6)
    sa, sb, out = tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / "r.json"
    assert main(["fid", str(a), "--save-stats", str(sa), "--no-progress"]) == 0
    assert main(["fid", str(b), str(a), "--save-stats", str(sb), "--json", str(out),
                 "--no-progress"]) == 0
    ours = json.loads(out.read_text())
    za, zb = np.load(sa), np.load(sb)
    assert za["mu"].shape == (2048,) and za["sigma"].shape == (2048, 2048)
    theirs = calculate_frechet_distance(zb["mu"], zb["sigma"], za["mu"], za["sigma"])
    assert ours["fid"] == pytest.approx(theirs, rel=1e-4)
    # a statistics file as either side: FID only, the rest not applicable
    assert main(["fid", str(b), str(sa), "--json", str(out), "--no-progress"]) == 0
    got = json.loads(out.read_text())
    assert got["fid"] == pytest.approx(ours["fid"], rel=1e-6) and got["precision"] is None
    text = capsys.readouterr().out
    assert "precision: not applicable" in text and "KID: not applicable" in text
    assert main(["fid", str(tmp_path / "missing.npz"), str(a)]) == 2
