"""xraygan anatomy DIR: the anatomy reader on a folder of PNGs, one CSV row per image, the same
numbers as the Python API; unreadable files and missing folders named in one line."""

import csv

import numpy as np
import pytest
from PIL import Image

from xraygan.cli import main
from xraygan.config import DataConfig
from xraygan.data import load_dataset
from xraygan.metrics.anatomy import MEASURES, measure_anatomy


@pytest.fixture
def pngs(tmp_path):
    images = load_dataset(DataConfig(source="phantom", num_images=4), 64).images
    folder = tmp_path / "gen"
    folder.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img[0].numpy()).save(folder / f"img_{i}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    return folder, images


def test_anatomy_of_a_folder_matches_the_api(pngs, tmp_path, capsys):
    folder, images = pngs
    out = tmp_path / "anatomy.csv"
    assert main(["anatomy", str(folder), "--csv", str(out), "--no-progress"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["file"] for r in rows] == [f"img_{i}.png" for i in range(4)]  # broken.png left out
    want = measure_anatomy(images)
    for k in MEASURES:
        got = np.array([float(r[k]) for r in rows])
        np.testing.assert_allclose(got, want[k], rtol=1e-4, equal_nan=True)
    assert want["plausible"].sum() >= 3  # phantoms show two lungs and a heart
    printed = capsys.readouterr().out
    assert "4 images measured" in printed and "1 unreadable, e.g. broken.png" in printed
    assert "ctr" in printed and "mean" in printed


def test_anatomy_names_a_missing_folder(tmp_path, capsys):
    assert main(["anatomy", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "nope: does not exist (expected a folder of images)" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    assert main(["anatomy", str(tmp_path / "empty")]) == 2
    assert "holds no image file" in capsys.readouterr().err
