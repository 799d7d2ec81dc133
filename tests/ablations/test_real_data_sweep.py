"""Sweeps and reports on a user's own images: an image folder (8- and 16-bit PNGs) and a DICOM
folder, at a tiny scale with FID on, so the held-out split, the memorization test, the
reference statistics and the report all run on real-data paths; and the checks that stop a
sweep before any expensive work."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xraygan.cli import main
from xraygan.data.imageops import to_uint8
from xraygan.data.phantom import generate_phantoms
from xraygan.reports.protocol import public_name

N_IMAGES = 40
# A tiny scale with FID on: 16x16, width 4, 4 steps; held out 0.25 of 40 = 10 images, and 10
# FID samples: the fewest the memorization test accepts
TINY = ["--image-size", "16", "--features", "4", "--batch-size", "8", "--steps", "4",
        "--fid-samples", "10", "--sample-every", "4", "--checkpoint-every", "4",
        "--device", "cpu", "--no-estimate", "--no-progress", "--holdout", "0.25"]


def png_folder(root: Path, n: int = N_IMAGES, size: int = 40) -> Path:
    """Half 8-bit, half 16-bit (12-bit detector data in a 16-bit PNG, as radiographs export)."""
    root.mkdir(parents=True, exist_ok=True)
    imgs = generate_phantoms(n, size, seed=7)
    for i, a in enumerate(imgs):
        if i % 2:
            arr = np.round(np.clip(a, 0, 1) * 4095).astype(np.uint16)
            Image.fromarray(arr).save(root / f"img{i:03d}.png")  # mode I;16
        else:
            Image.fromarray(to_uint8(a)).save(root / f"img{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def real_folders(tmp_path_factory):
    from xraygan.data.dicom_writer import write_phantom_dicoms

    root = tmp_path_factory.mktemp("real")
    folder = png_folder(root / "pngs")
    dicom = root / "dicoms"
    write_phantom_dicoms(dicom, N_IMAGES, 40, seed=3, codec="raw")
    return {"folder": folder, "dicom": dicom}


@pytest.fixture()
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("XRAYGAN_FID_STATS", str(tmp_path / "stats"))
    monkeypatch.setenv("XRAYGAN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


@pytest.mark.parametrize("kind,study,extra", [
    ("folder", "table1", []),
    ("dicom", "seeds", ["--seeds", "2"]),  # another study
    # the quick start's own path, 2 spawned workers (each loads torch and Inception: slow)
    pytest.param("folder", "table1", ["--workers", "2"], marks=pytest.mark.slow),
])
def test_sweep_and_report_on_real_data(weights, real_folders, isolated, kind, study, extra):
    tmp = isolated
    spec = f"{kind}:{real_folders[kind]}"
    args = ["sweep", study, "--data", spec, "--out", str(tmp / "studies"), *TINY, *extra,
            "--json", str(tmp / "sweep.json")]
    assert main(args) == 0
    summary = json.loads((tmp / "sweep.json").read_text())
    rows = summary["trials"]
    assert summary["peak_memory"]["peak_rss_bytes"] > 0  # measured by the sweep itself
    assert rows and all(r["state"] == "COMPLETE" for r in rows), rows
    import optuna

    name = f"{study}-quick"
    st = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp / 'studies' / name}.db")
    assert st.user_attrs["holdout"] == 0.25
    for t in st.trials:
        m = t.user_attrs["metrics"]
        assert t.user_attrs["objective"] == "fid" and np.isfinite(m["fid"])
        assert m["mem_heldout_n"] == 10, m.get("notes")  # the held-out quarter of 40 images
        cfg = t.user_attrs["config"]["data"]
        assert cfg["source"] == spec and cfg["holdout"] == 0.25
    out = tmp / "report"
    assert main(["report", name, "--storage", f"sqlite:///{tmp / 'studies' / name}.db",
                 "--out", str(out), "--no-figures"]) == 0
    page = (out / f"{name}.md").read_text()
    # named by its short name and a fingerprint, never by the local path (a shared report)
    assert public_name(spec) in page and str(real_folders[kind]) not in page
    assert "| Sweep peak memory |" in page and "GB" in page.split("| Sweep peak memory |")[1][:80]
    assert "fid" in page.lower()


def test_default_holdout_for_real_data_and_none_for_phantoms(real_folders):
    from xraygan.ablations import QUICK, StudyContext
    from xraygan.ablations.scale import REAL_DATA_HOLDOUT

    real = StudyContext(QUICK, data=f"folder:{real_folders['folder']}").config()
    assert real.data.holdout == REAL_DATA_HOLDOUT == 0.1
    assert StudyContext(QUICK).config().data.holdout == 0.0
    chosen = StudyContext(QUICK, data=f"dicom:{real_folders['dicom']}", holdout=0.3).config()
    assert chosen.data.holdout == 0.3


def _fail_fast(args, capsys, monkeypatch):
    """Run a sweep that must stop at its checks: no Inception features, no training."""
    from xraygan.ablations import trial
    from xraygan.metrics import compare, features

    def boom(*a, **k):
        raise AssertionError("expensive work started before the checks")

    monkeypatch.setattr(features, "feature_stats", boom)
    monkeypatch.setattr(compare, "feature_stats", boom)
    monkeypatch.setattr(trial, "train", boom)
    assert main(args) == 2
    return capsys.readouterr().err


def test_zero_holdout_on_real_data_stops_before_any_feature(real_folders, isolated, capsys,
                                                            monkeypatch):
    tiny = [a for a in TINY if a not in ("--holdout", "0.25")]
    err = _fail_fast(["sweep", "table1", "--data", f"folder:{real_folders['folder']}",
                      "--out", str(isolated / "s"), *tiny, "--holdout", "0", "--workers", "2"],
                     capsys, monkeypatch)
    assert "--holdout is 0 for --data folder:" in err and "--no-fid" in err
    assert not (isolated / "s").exists() or not list((isolated / "s").glob("*.db"))


def test_a_holdout_too_small_for_the_dataset_stops_before_any_feature(real_folders, isolated,
                                                                      capsys, monkeypatch):
    tiny = [a for a in TINY if a not in ("--holdout", "0.25")]
    err = _fail_fast(["sweep", "table1", "--data", f"folder:{real_folders['folder']}",
                      "--num-images", "8", "--out", str(isolated / "s"), *tiny,
                      "--holdout", "0.05"], capsys, monkeypatch)
    assert "data.holdout" in err or "--holdout" in err


def test_estimate_counts_only_uncached_reference_sets(real_folders, isolated):
    """The start estimate checks the cache file of each reference set of the data at hand."""
    from xraygan.ablations.preflight import preflight
    from xraygan.cli import build_parser
    from xraygan.cli.sweep import build_options
    from xraygan.metrics.features import stats_path

    args = build_parser().parse_args(
        ["sweep", "table1", "--data", f"folder:{real_folders['folder']}", *TINY])
    opts = build_options(args)
    checked = preflight(opts)
    assert [r.name for r in checked.references] == ["training", "held-out"]
    assert [r.n for r in checked.references] == [30, 10]
    assert checked.uncached_images == 40
    first = checked.references[0]
    path = stats_path(first.fingerprint, first.n)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")  # presence is what the estimate checks
    assert checked.uncached_images == 10 and checked.reference_images == 40


def test_holdout_with_phantoms_is_refused(tmp_path, capsys):
    assert main(["sweep", "table1", "--holdout", "0.2", "--dry-run", "--no-estimate",
                 "--out", str(tmp_path)]) == 2
    assert "--holdout applies to folder:, dicom: and cache: data" in capsys.readouterr().err
