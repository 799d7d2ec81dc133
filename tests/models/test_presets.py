"""Named presets: contents, any image size, overrides, errors."""

import pytest

from xraygan.config import ModelConfig
from xraygan.errors import ConfigError, GeometryError
from xraygan.models import plan_discriminator, plan_generator
from xraygan.presets import PRESETS, get_preset


def test_registered_names():
    assert PRESETS.names() == ["dcgan", "paper-elu", "paper-elu-nobn"]


def test_dcgan_preset():
    cfg = get_preset("dcgan")
    assert (cfg.g_activation, cfg.d_activation, cfg.leaky_slope) == ("relu", "leaky_relu", 0.2)
    assert cfg.batchnorm == "both" and cfg.image_size == 64 and cfg.channels == 1
    assert (cfg.g_strides, cfg.d_strides, cfg.g_fc_layers, cfg.d_fc_layers) == ((), (), 0, 0)


def test_paper_elu_preset():
    cfg = get_preset("paper-elu")
    assert (cfg.g_activation, cfg.d_activation, cfg.batchnorm) == ("elu", "elu", "d")
    assert (cfg.latent_dim, cfg.g_features, cfg.d_features, cfg.channels) == (100, 64, 64, 1)
    assert get_preset("paper-elu-nobn").batchnorm == "none"


@pytest.mark.parametrize("name", ["dcgan", "paper-elu", "paper-elu-nobn"])
@pytest.mark.parametrize("size", [16, 32, 64, 128, 256])
def test_every_preset_at_every_size(name, size):
    cfg = get_preset(name, size)
    assert isinstance(cfg, ModelConfig) and cfg.image_size == size
    g, d = plan_generator(cfg), plan_discriminator(cfg)
    assert g[-1].out_size == size and d[0].in_size == size and d[-1].out_size == 1
    assert g[-1].activation == "tanh"


def test_overrides_applied_and_checked():
    cfg = get_preset("paper-elu", 128, g_features=32, d_strides=(4, 4, 2), latent_dim=64)
    assert (cfg.image_size, cfg.g_features, cfg.latent_dim) == (128, 32, 64)
    assert [p.stride for p in plan_discriminator(cfg)] == [4, 4, 2, 1]
    with pytest.raises(ConfigError) as err:
        get_preset("dcgan", g_featurez=32)
    assert "unknown model field(s) g_featurez" in str(err.value)
    assert "g_features" in str(err.value)
    with pytest.raises(GeometryError, match=r"G layer 1 \(stride 3\)"):
        get_preset("dcgan", 32, g_strides=(3,))
    with pytest.raises(ConfigError, match="model.g_activation: unknown activation 'elu2'"):
        get_preset("paper-elu", g_activation="elu2")


def test_unknown_preset_and_size():
    with pytest.raises(ConfigError) as err:
        get_preset("paper_elu")
    msg = str(err.value)
    assert "preset: unknown preset 'paper_elu'" in msg
    assert "dcgan, paper-elu, paper-elu-nobn" in msg
    with pytest.raises(ConfigError, match="power of two >= 16, got 100"):
        get_preset("dcgan", 100)
    with pytest.raises(ConfigError, match="expected an integer"):
        get_preset("dcgan", "64")


@pytest.mark.parametrize("size, message", [
    (1048576, "model.image_size: expected <= 4096"),
    (48, "model.image_size: expected a power of two >= 16, got 48"),
    (8, "power of two >= 16"),
])
def test_preset_image_size_bounds_come_from_the_field_metadata(size, message):
    with pytest.raises(ConfigError, match=message):
        get_preset("paper-elu", size)


def test_preset_overrides_are_range_checked():
    with pytest.raises(ConfigError, match="model.g_features: expected <= 4096"):
        get_preset("dcgan", 64, g_features=10**6)
    with pytest.raises(ConfigError, match="model.g_fc_layers: expected <= 16"):
        get_preset("dcgan", 64, g_fc_layers=10**6)
