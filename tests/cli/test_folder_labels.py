"""Labels for a plain image folder (a CSV of file,label rows): the utility sweep's preflight and
`metrics --utility` accept a labelled folder, refuse the same bad labels in one line (exit 2)
before any training, and the labels file's content keys the utility cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fuzz_helpers import run_main
from PIL import Image

from xraygan.metrics.utility import UTILITY_FILE

N = 48  # images; --holdout 0.5 holds out 24, above the test's minimum of 20


def _rows(n: int = N) -> list[str]:
    return [f"img{i:02d}.png,{'Cardiomegaly' if i % 3 == 0 else 'normal'}" for i in range(n)]


def _write_csv(path: Path, rows: list[str], header: str = "file,label") -> None:
    path.write_text("\n".join([header, *rows]) + "\n")


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("png") / "cxr"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(N):
        Image.fromarray(rng.integers(0, 256, (24, 24), dtype=np.uint8)).save(root / f"img{i:02d}.png")
    return root


@pytest.fixture()
def folder(images, tmp_path) -> Path:
    """A fresh copy of the images with a good labels.csv (tests edit it)."""
    root = tmp_path / "cxr"
    root.mkdir()
    for p in images.iterdir():
        (root / p.name).write_bytes(p.read_bytes())
    _write_csv(root / "labels.csv", _rows())
    return root


SWEEP = ["sweep", "utility", "--image-size", "16", "--features", "4", "--steps", "4",
         "--batch-size", "16", "--no-fid", "--no-estimate", "--no-progress", "--dry-run"]


def _sweep(data: str, out: Path, holdout: str = "0.5") -> tuple[int, str]:
    code, _, err = run_main([*SWEEP, "--data", data, "--holdout", holdout, "--out", str(out)])
    return code, err


def test_a_labelled_folder_passes_the_sweeps_preflight(folder, tmp_path):
    (folder / "sub").mkdir()  # an image in a subfolder, named with a Windows separator
    (folder / "img47.png").rename(folder / "sub" / "img47.png")
    _write_csv(folder / "labels.csv", [*_rows(N - 1), "sub\\img47.png,normal"])
    code, err = _sweep(f"folder:{folder}", tmp_path / "s1")
    assert code == 0, err
    other = tmp_path / "cardio.csv"  # the labels= key, as 0/1, outside the folder
    (folder / "labels.csv").unlink()
    _write_csv(other, [f"img{i:02d}.png,{int(i % 4 == 0)}" for i in range(N - 1)]
               + ["./sub/img47.png,0"], "File, Label ")
    code, err = _sweep(f"folder:{folder},labels={other}", tmp_path / "s2")
    assert code == 0, err


def _edit(case: str, folder: Path) -> tuple[str, str]:
    """Break the folder's labels as ``case`` says; (data spec, expected message)."""
    csv = folder / "labels.csv"
    rows = _rows()
    spec = f"folder:{folder}"
    if case == "no-labels":
        csv.unlink()
        return spec, "has no labels: labels.csv in the folder"
    if case == "missing-file":
        return f"{spec},labels={folder / 'nope.csv'}", "nope.csv does not exist"
    if case == "twice":
        return f"{spec},labels={csv},labels={csv}", "gives labels= twice"
    if case == "unreadable":
        csv.write_bytes(b"file,label\nimg00.png,1\x00\n")
        return spec, "labels.csv:2: not a readable CSV file"
    if case == "open-quote":
        csv.write_text("file,label\nimg00.png,\"normal\n")
        return spec, "not a readable CSV file"
    if case == "no-header":
        _write_csv(csv, rows[1:], rows[0])
        return spec, "labels.csv:1: expected a header row naming the columns file,label"
    if case == "fields":
        _write_csv(csv, [*rows[:5], "img05.png,normal,extra", *rows[6:]])
        return spec, "labels.csv:7: 3 field(s), the header has 2"
    if case == "not-in-folder":
        _write_csv(csv, [*rows, "ghost.png,normal"])
        return spec, f"labels.csv:{N + 2}: ghost.png is no image file of folder"
    if case == "wrong-case":
        _write_csv(csv, ["IMG00.png,normal", *rows[1:]])
        return spec, "IMG00.png is no image file of folder"
    if case == "unlabelled-image":
        _write_csv(csv, rows[:-1])
        return spec, f"no row for 1 image(s) of folder {folder}, e.g. img{N - 1:02d}.png"
    if case == "duplicate":
        _write_csv(csv, [*rows, rows[3]])
        return spec, f"labels.csv:{N + 2}: img03.png is labelled again (first on line 5)"
    if case == "mixed":
        _write_csv(csv, ["img00.png,1", *rows[1:]])
        return spec, "give 0/1 or class names throughout"
    if case == "one-class-names":
        _write_csv(csv, [r.replace("Cardiomegaly", "normal") for r in rows])
        return spec, "no row has the class cardiomegaly"
    if case == "one-class-binary":
        _write_csv(csv, [f"img{i:02d}.png,0" for i in range(N)])
        return spec, "every row is an image without cardiomegaly"
    if case == "tiny-holdout":
        return spec, "the utility test needs at least 20"
    raise AssertionError(case)


BAD = ["no-labels", "missing-file", "twice", "unreadable", "open-quote", "no-header", "fields", "not-in-folder",
       "wrong-case", "unlabelled-image", "duplicate", "mixed", "one-class-names",
       "one-class-binary", "tiny-holdout"]


@pytest.mark.parametrize("case", BAD)
def test_bad_labels_are_refused_before_any_training(folder, tmp_path, case):
    spec, says = _edit(case, folder)
    out = tmp_path / "studies"
    code, err = _sweep(spec, out, holdout="0.1" if case == "tiny-holdout" else "0.5")
    assert code == 2 and says in err, err
    assert len(err.strip().splitlines()) == 1, err  # one line
    assert not list(out.rglob("config.json"))  # no GAN trained


TINY = ["--image-size", "16", "--features", "4", "--steps", "4", "--batch-size", "16",
        "--sample-every", "4", "--checkpoint-every", "4", "--no-eval", "--no-progress"]


def _utility(run: Path) -> tuple[int, str, str, dict]:
    code, out, err = run_main(["metrics", str(run), "--utility"])
    kept = json.loads((run / UTILITY_FILE).read_text()) if (run / UTILITY_FILE).is_file() else {}
    return code, out, err, kept


def test_metrics_utility_accepts_a_labelled_folder_and_keys_the_cache_by_the_file(folder,
                                                                                 tmp_path):
    code, _, err = run_main(["train", "--data", f"folder:{folder}", "--holdout", "0.5", *TINY,
                             "--out", str(tmp_path / "runs"), "--name", "f"])
    assert code == 0, err
    run = next((tmp_path / "runs").glob("*-f"))
    code, out, err, kept = _utility(run)
    assert code == 0, err
    assert "utility: real:" in out
    assert 0.2 < kept["metrics"]["util_real_positive"] < 0.5  # 1 in 3 is Cardiomegaly
    digest = kept["key"]["labels_file_sha256"]
    assert len(digest) == 64

    # the same labels in other words: only the file's content hash can tell the cache
    csv = folder / "labels.csv"
    csv.write_text(csv.read_text().replace("normal", "No finding"))
    code, out, err, again = _utility(run)
    assert code == 0, err
    assert "computed for other inputs" in out
    assert again["key"]["labels_file_sha256"] != digest
    assert again["key"]["labels_sha256"] == kept["key"]["labels_sha256"]

    # metrics --utility refuses what the sweep refuses, in one line, before any classifier
    _write_csv(csv, [*_rows(), "ghost.png,normal"])
    code, out, err, _ = _utility(run)
    assert code == 2 and "ghost.png is no image file of folder" in err, err
    assert "utility: real:" not in out and "Traceback" not in err


def test_a_report_names_a_labelled_folder_without_its_local_paths():
    from xraygan.reports.protocol import public_name, redact_paths

    src = "folder:/home/ada/scans/train,labels=/home/ada/private/cardio.csv"
    name = public_name(src)
    assert name.startswith("folder:train #") and name != public_name("folder:/home/ada/scans/train")
    text = redact_paths(f"data {src}; 40 images from /home/ada/scans/train; labels "
                        "/home/ada/private/cardio.csv", [src])
    assert "/home/ada" not in text and "cardio.csv" in text


def test_a_labels_file_over_the_limit_is_not_read(folder, tmp_path, monkeypatch):
    monkeypatch.setenv("XRAYGAN_MAX_LABELS_BYTES", "100")  # the good labels.csv is ~1 kB
    code, err = _sweep(f"folder:{folder}", tmp_path / "studies")
    assert code == 2 and "XRAYGAN_MAX_LABELS_BYTES" in err and "labels.csv" in err, err
    assert len(err.strip().splitlines()) == 1
