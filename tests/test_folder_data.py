"""``folder:PATH`` loader: formats, bit depths, square crop, skipped files, errors, limits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gan_core.config import DataConfig
from gan_core.data import load_dataset
from gan_core.errors import ConfigError, DataError


def load(path, size=16, num_images=0, channels=1):
    return load_dataset(DataConfig(source=f"folder:{path}", num_images=num_images), size, channels)


def gray(value: int, shape=(32, 32)) -> Image.Image:
    return Image.fromarray(np.full(shape, value, np.uint8), mode="L")


def test_png8_png16_jpeg_bmp_tiff_and_rgb(tmp_path):
    gray(200).save(tmp_path / "a.png")
    Image.fromarray(np.full((32, 32), 40000, np.uint16)).save(tmp_path / "b16.png")  # I;16
    Image.fromarray(np.full((32, 32), 3000, np.uint16)).save(tmp_path / "c12.png")  # 12-bit data
    gray(100).save(tmp_path / "d.jpg", quality=95)
    gray(50).save(tmp_path / "e.bmp")
    gray(25).save(tmp_path / "f.tiff")
    Image.new("RGB", (32, 32), (255, 0, 0)).save(tmp_path / "g.png")
    data = load(tmp_path)
    assert data.images.shape == (7, 1, 16, 16) and data.images.dtype == torch.uint8
    means = data.images.float().mean(dim=(1, 2, 3)).tolist()
    assert means[0] == pytest.approx(200, abs=0.5)
    assert means[1] == pytest.approx(40000 / 65535 * 255, abs=1)  # full 16-bit scale
    assert means[2] == pytest.approx(3000 / 4095 * 255, abs=1)  # 12 bits fill the range
    assert means[3] == pytest.approx(100, abs=3)
    assert means[4] == pytest.approx(50, abs=0.5) and means[5] == pytest.approx(25, abs=0.5)
    assert means[6] == pytest.approx(76, abs=1.5)  # ITU-R 601 luminance of pure red
    assert data.skipped == []


def test_16bit_gradient_keeps_its_order(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (64, 1))
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    row = load(tmp_path, size=32).images[0, 0, 16].numpy().astype(int)
    assert row[0] < 10 and row[-1] > 245 and (np.diff(row) >= 0).all()


def test_non_square_is_centre_cropped(tmp_path):
    arr = np.zeros((40, 80), np.uint8)
    arr[:, 20:60] = 255  # the central square is white, the side strips black
    Image.fromarray(arr).save(tmp_path / "wide.png")
    img = load(tmp_path, size=20).images[0, 0]
    assert img.shape == (20, 20) and img.float().mean() > 250


def test_corrupt_file_is_skipped_and_listed(tmp_path):
    gray(128).save(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (tmp_path / "notes.txt").write_text("ignored: not an image extension")
    data = load(tmp_path)
    assert len(data) == 1
    assert [p.endswith("broken.png") for p, _ in data.skipped] == [True]
    assert data.skipped[0][1]  # a reason is given


def test_recursive_sorted_subset_and_channels(tmp_path):
    (tmp_path / "sub").mkdir()
    for i, v in enumerate((10, 20, 30)):
        gray(v).save(tmp_path / f"{i}.png")
    gray(40).save(tmp_path / "sub" / "z.png")
    assert len(load(tmp_path)) == 4  # recursive
    two = load(tmp_path, num_images=2, channels=3)
    assert two.images.shape == (2, 3, 16, 16)
    assert two.images[:, :, 0, 0].tolist() == [[10] * 3, [20] * 3]  # first in sorted order
    assert two.fingerprint != load(tmp_path).fingerprint


def test_fingerprint_changes_with_file_content_and_size(tmp_path):
    gray(10).save(tmp_path / "a.png")
    first = load(tmp_path).fingerprint
    assert load(tmp_path).fingerprint == first
    assert load(tmp_path, size=8).fingerprint != first
    gray(11, shape=(33, 33)).save(tmp_path / "a.png")
    assert load(tmp_path).fingerprint != first


def test_empty_missing_and_unusable_folders_raise_data_errors(tmp_path):
    with pytest.raises(DataError, match=r"holds no image file.*\.png"):
        load(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load(tmp_path / "nope")
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"none of 1 files.*\.jpeg.*bad\.jpg"):
        load(tmp_path)
    with pytest.raises(ConfigError, match="needs a path"):
        load_dataset(DataConfig(source="folder"), 16)
