"""The built-in chest phantoms: determinism, ranges, and anatomy measured as numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xraygan.config import DataConfig
from xraygan.data import load_dataset
from xraygan.data.phantom import generate_phantoms, phantom_fingerprint, phantom_image
from xraygan.errors import ConfigError


@pytest.fixture(scope="module")
def batch64() -> np.ndarray:
    return generate_phantoms(96, 64, seed=0)


def region(imgs: np.ndarray, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """Per-image mean over a box given in normalized coordinates (x right, y down, [-1, 1])."""
    s = imgs.shape[-1]

    def px(v: float) -> int:
        return int(round((v + 1) / 2 * s))

    return imgs[:, px(y0) : px(y1), px(x0) : px(x1)].mean(axis=(1, 2))


def test_same_seed_same_images_and_other_seed_differs():
    a = generate_phantoms(6, 32, seed=7)
    assert np.array_equal(a, generate_phantoms(6, 32, seed=7))
    b = generate_phantoms(6, 32, seed=8)
    assert np.abs(a - b).mean() > 0.01


def test_image_i_does_not_depend_on_n_or_start():
    full = generate_phantoms(40, 32, seed=3)  # more than one render chunk
    assert np.array_equal(full[35:38], generate_phantoms(3, 32, seed=3, start=35))
    assert np.array_equal(full[:5], generate_phantoms(5, 32, seed=3))
    assert np.array_equal(full[33], phantom_image(33, 32, seed=3))


@pytest.mark.parametrize("size", [16, 32, 64, 128])
def test_shape_dtype_range(size):
    a = generate_phantoms(3, size, seed=1)
    assert a.shape == (3, size, size) and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert a.max() - a.min() > 0.5  # black background to bright bone: full contrast


def test_lungs_darker_than_mediastinum_and_background_darkest(batch64):
    lung_l = region(batch64, -0.6, -0.35, -0.4, 0.0)
    lung_r = region(batch64, 0.35, 0.6, -0.4, 0.0)
    mediastinum = region(batch64, -0.06, 0.06, -0.5, 0.0)  # spine column over the mediastinum
    assert (mediastinum > np.maximum(lung_l, lung_r) + 0.2).all()
    assert 0.2 < lung_l.mean() < 0.5 and 0.2 < lung_r.mean() < 0.5
    below_diaphragm = region(batch64, -0.5, -0.2, 0.75, 0.95)
    assert (below_diaphragm > lung_l + 0.2).all()
    assert region(batch64, -1.0, -0.95, -1.0, -0.8).mean() < 0.1  # air above the shoulder


def test_heart_on_image_right_and_brighter_than_lung(batch64):
    heart = region(batch64, 0.1, 0.3, 0.05, 0.25)
    mirror = region(batch64, -0.3, -0.1, 0.05, 0.25)
    lung = region(batch64, 0.35, 0.6, -0.4, 0.0)
    assert heart.mean() > lung.mean() + 0.2
    # patient's left is the image right: the cardiac silhouette breaks left-right symmetry
    assert heart.mean() > mirror.mean() + 0.08
    assert (heart > mirror).mean() > 0.75


def test_anatomy_varies_between_images(batch64):
    flat = batch64.reshape(len(batch64), -1)
    d = np.abs(flat[:, None, :] - flat[None, :, :]).mean(-1)
    off = d[~np.eye(len(d), dtype=bool)]
    assert off.min() > 0.005  # no two images alike
    # and the variation is anatomical, not only noise: smoothed images still differ
    lung_area = (batch64[:, 16:48, :] < 0.45).mean(axis=(1, 2))
    assert lung_area.std() > 0.02


def test_nodules_add_density_without_changing_anatomy():
    clean = generate_phantoms(12, 64, seed=2)
    sick = generate_phantoms(12, 64, seed=2, nodule_prob=1.0)
    changed = np.abs(sick - clean).reshape(12, -1)
    assert (sick.reshape(12, -1) - clean.reshape(12, -1)).mean(axis=1).min() >= -1e-3
    assert (changed.max(axis=1) > 0.03).all()  # every image got a visible finding
    # findings are local: most pixels are untouched
    assert ((changed > 0.02).mean(axis=1) < 0.25).all()
    assert np.array_equal(generate_phantoms(12, 64, seed=2, nodule_prob=0.0), clean)


def test_bad_arguments_raise_config_errors():
    with pytest.raises(ConfigError, match="nodule_prob"):
        generate_phantoms(2, 32, nodule_prob=1.5)
    with pytest.raises(ConfigError, match="size"):
        generate_phantoms(2, 4)
    with pytest.raises(ConfigError, match="expected v1 or v2 first"):
        load_dataset(DataConfig(source="phantom:x"), 32)


def test_registered_loader_uint8_channels_and_fingerprint():
    cfg = DataConfig(source="phantom", num_images=10, seed=5)
    data = load_dataset(cfg, 32, channels=3)
    assert data.images.shape == (10, 3, 32, 32) and data.images.dtype == torch.uint8
    assert torch.equal(data.images[:, 0], data.images[:, 2])
    expected = torch.from_numpy(np.rint(generate_phantoms(10, 32, seed=5) * 255).astype(np.uint8))
    assert torch.equal(data.images[:, 0], expected)
    assert data.fingerprint == phantom_fingerprint(10, 32, 5)
    assert data.fingerprint != load_dataset(DataConfig(num_images=10, seed=6), 32).fingerprint
    assert "10 chest phantoms" in data.description
    # num_images 0 means the default count
    assert phantom_fingerprint(2048, 16, 0) == load_dataset(DataConfig(num_images=0), 16).fingerprint


def test_chunking_never_changes_pixels(monkeypatch):
    from xraygan.data import phantom

    ref = generate_phantoms(7, 32, seed=4)
    monkeypatch.setattr(phantom, "_WORK_BUDGET", 3 * 32 * 32 * phantom.WORK_BYTES_PER_PIXEL)
    assert phantom.chunk_size(32) == 3
    assert np.array_equal(generate_phantoms(7, 32, seed=4), ref)
    u8 = phantom.generate_phantoms_uint8(7, 32, seed=4)
    assert u8.dtype == np.uint8 and np.array_equal(u8, np.rint(ref * 255).astype(np.uint8))


def test_chunk_shrinks_with_size():
    from xraygan.data.phantom import chunk_size, phantom_bytes

    assert chunk_size(64) == 32 and chunk_size(256) == 16 and chunk_size(1024) == 1
    # 2048 default phantoms at 4096 px: 34 GB of uint8 plus one 4 GB render
    assert phantom_bytes(2048, 4096, itemsize=1) == 2048 * 4096**2 + 252 * 4096**2


def test_huge_phantom_set_refused_before_allocating(monkeypatch):
    """`xraygan train --image-size 4096` used to allocate until the OOM killer came."""
    import time

    from xraygan.errors import XrayganError

    monkeypatch.setenv("XRAYGAN_MEMORY_CAP", "2GiB")
    t0 = time.perf_counter()
    with pytest.raises(XrayganError, match=r"generating 2048 chest phantoms of 4096x4096.*--image-size or --num-images"):
        load_dataset(DataConfig(source="phantom"), 4096)
    with pytest.raises(XrayganError, match="--image-size"):
        generate_phantoms(1, 20000)
    assert time.perf_counter() - t0 < 2.0  # refused from the sizes alone
