"""``folder:PATH`` loader: formats, bit depths, square crop, skipped files, errors, limits."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from xraygan.config import DataConfig
from xraygan.data import load_dataset
from xraygan.errors import ConfigError, DataError


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
    # one scale per dataset: the 12-bit image shares the 16-bit one its folder needs
    assert means[2] == pytest.approx(3000 / 65535 * 255, abs=1)
    assert means[3] == pytest.approx(100, abs=3)
    assert means[4] == pytest.approx(50, abs=0.5) and means[5] == pytest.approx(25, abs=0.5)
    assert means[6] == pytest.approx(76, abs=1.5)  # ITU-R 601 luminance of pure red
    assert data.skipped == []


def test_16bit_images_share_one_scale_per_dataset(tmp_path):
    """The same 12-bit radiograph whose brightest pixel is 1000 in one export and 1100 in
    another gets the same grey levels (per image, they took 10 and 12 bits: 4x apart)."""
    base = np.tile(np.linspace(0, 900, 32), (32, 1)).astype(np.uint16)
    a, b = base.copy(), base.copy()
    a[0, 0], b[0, 0] = 1000, 1100
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(b).save(tmp_path / "b.png")
    data = load(tmp_path, size=32)
    img_a, img_b = data.images[0, 0].float(), data.images[1, 0].float()
    assert (img_a[1:] - img_b[1:]).abs().max() <= 1  # rounding, away from the bright corner
    assert img_a.mean() == pytest.approx(img_b.mean(), abs=0.5)
    assert img_a[1:, -1].mean() == pytest.approx(900 / 4095 * 255, abs=1.5)  # 12 bits: the max 1100


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


# --------------------------------------------------------------------------- bad files


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height 8-bit grey pixels (written by hand: PIL
    would allocate the image to save it). One compressed row of zeros follows."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(bytes(width + 1))) + _png_chunk(b"IEND", b""))


def test_png_over_the_cap_refused_from_its_header(tmp_path):
    (tmp_path / "big.png").write_bytes(png_bomb(9000, 9000))  # 81 Mpx: under PIL's limit
    gray(128).save(tmp_path / "good.png")
    (path, reason), = load(tmp_path).skipped
    assert path.endswith("big.png")
    assert reason.startswith("too large: header says 9000x9000: 81,000,000 pixels exceed the cap "
                             "of 64,000,000 (if the file is genuine, raise it with $XRAYGAN_MAX_PIXELS")


def test_png_bomb_refused_from_its_header(tmp_path):
    (tmp_path / "bomb.png").write_bytes(png_bomb(20000, 20000))
    assert (tmp_path / "bomb.png").stat().st_size < 100
    gray(128).save(tmp_path / "good.png")
    data = load(tmp_path)
    assert len(data) == 1
    (path, reason), = data.skipped
    assert path.endswith("bomb.png")
    # refused by PIL's own bomb check (above 179 Mpx) or by the cap (limits.py), from the header
    assert re.match(r"too large: .*400,?000,?000 pixels", reason), reason
    (tmp_path / "good.png").unlink()
    with pytest.raises(DataError, match=r"none of 1 files.*bomb\.png: too large"):
        load(tmp_path)


def test_pil_decompression_bomb_error_is_a_data_error(tmp_path, monkeypatch):
    """With the project cap raised past PIL's own limit, PIL's DecompressionBombError (and its
    warning) still end as a reason naming the file and the pixel count, not a traceback."""
    from xraygan.data.folder import BadImage, read_gray

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # warning above 1000, error above 2000
    monkeypatch.setenv("XRAYGAN_MAX_PIXELS", str(10**9))
    gray(10, shape=(40, 40)).save(tmp_path / "warn.png")  # 1600 px: PIL warns only
    assert read_gray(tmp_path / "warn.png").shape == (40, 40)
    gray(10, shape=(50, 50)).save(tmp_path / "big.png")  # 2500 px: PIL refuses
    with pytest.raises(BadImage, match=r"big\.png: too large: refused before decoding: .*2500 pixels"):
        read_gray(tmp_path / "big.png")


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "1", "I;16", "I", "F", "CMYK"])
def test_every_png_and_tiff_mode_loads(tmp_path, mode):
    base = Image.fromarray(np.tile(np.linspace(0, 255, 32).astype(np.uint8), (32, 1)), mode="L")
    if mode == "I;16":
        img = Image.fromarray(np.asarray(base).astype(np.uint16) * 257)
    elif mode == "I":
        img = Image.fromarray(np.asarray(base).astype(np.int32) * 16)  # 12-bit data in 32 bits
    elif mode == "F":
        img = Image.fromarray(np.asarray(base).astype(np.float32) / 7.0)
    else:
        img = base.convert(mode)
    ext = "tiff" if mode in ("F", "CMYK", "I") else "png"
    img.save(tmp_path / f"x.{ext}")
    row = load(tmp_path, size=32).images[0, 0, 16].numpy().astype(int)
    if mode == "1":  # dithered black/white: only the mean follows the ramp
        assert row[:8].mean() < row[-8:].mean()
    else:  # the ramp survives every conversion, 16-bit scaled to full range (not clipped)
        assert row[0] < 20 and row[-1] > 235 and (np.diff(row) >= -2).all(), (mode, row)


def test_truncated_and_unreadable_files_are_skipped_with_reasons(tmp_path, monkeypatch):
    gray(128).save(tmp_path / "good.png")
    ramp = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    ramp.save(tmp_path / "full.png")
    ramp.save(tmp_path / "full.jpg", quality=90)
    for name in ("full.png", "full.jpg"):
        data = (tmp_path / name).read_bytes()
        (tmp_path / f"cut_{name}").write_bytes(data[: len(data) // 2])
        (tmp_path / name).unlink()
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    (tmp_path / "secret.png").write_bytes((tmp_path / "good.png").read_bytes())
    real_open = Image.open

    def deny(path, *a, **k):  # tests run as root, where chmod 000 does not stop reading
        if str(path).endswith("secret.png"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(Image, "open", deny)
    data = load(tmp_path)
    assert len(data) == 1
    reasons = {Path(p).name: r for p, r in data.skipped}
    assert reasons["cut_full.png"].startswith("truncated") or reasons["cut_full.png"].startswith("undecodable")
    assert reasons["cut_full.jpg"].startswith("truncated")
    assert reasons["empty.png"].startswith("not an image") and reasons["text.jpg"].startswith("not an image")
    assert reasons["secret.png"] == "unreadable: Permission denied"


def test_mixed_sizes_load_and_symlink_loops_are_listed(tmp_path):
    gray(10, shape=(20, 30)).save(tmp_path / "a.png")
    gray(20, shape=(64, 64)).save(tmp_path / "b.png")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    data = load(tmp_path, size=16)
    assert data.images.shape == (2, 1, 16, 16)
    assert [(Path(p).name, r.split(":")[0]) for p, r in data.skipped] == [("loop", "symlink loop")]


def test_one_loader_for_folder_specs_and_fid_folders(tmp_path):
    """`xraygan fid DIR` and `folder:DIR` read the same pixels: 16-bit scaled, not clipped."""
    from xraygan.data.folder import load_image_folder

    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 65536, (24, 24), dtype=np.uint16)).save(tmp_path / f"{i}.png")
    native = load_image_folder(tmp_path)  # at the images' own size, as pytorch-fid reads them
    spec = load(tmp_path, size=24)
    assert native.images.shape == (3, 1, 24, 24)
    assert torch.equal(native.images, spec.images)
    assert native.images.float().mean() == pytest.approx(127.5, abs=3)  # full range, not clipped
    assert load_image_folder(tmp_path, channels=3).images.shape == (3, 3, 24, 24)
    gray(1, shape=(30, 30)).save(tmp_path / "other.png")
    with pytest.raises(DataError, match=r"images of different sizes \(0\.png is 24x24, other\.png is 30x30\)"):
        load_image_folder(tmp_path)


def test_too_few_images_for_a_batch_is_a_clear_error(tmp_path):
    gray(7).save(tmp_path / "only.png")
    data = load(tmp_path)
    with pytest.raises(DataError, match=r"1 images from .*: 1 usable image\(s\), --batch-size 64 needs at least 64"):
        data.require(64, "--batch-size 64")
    data.require(1, "one image")
