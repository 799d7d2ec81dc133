"""Generator and discriminator modules: Table II, shapes, batch norm, FC layers, init, errors."""

import pytest
import torch
from torch import nn

from xraygan.config import ModelConfig
from xraygan.errors import ConfigError, GeometryError
from xraygan.models import (
    ACTIVATIONS,
    Discriminator,
    Generator,
    build_discriminator,
    build_generator,
    build_models,
    count_parameters,
    make_activation,
)
from xraygan.presets import get_preset

TINY = dict(g_features=4, d_features=4, latent_dim=8)


def convs(module):
    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


def blocks(module):
    """(conv, bn or None, activation class name or None) per layer block."""
    out = []
    for block in module.net:
        bn = getattr(block, "bn", None)
        act = getattr(block, "act", None)
        out.append((getattr(block, "conv", None), bn, type(act).__name__ if act else None))
    return out


def test_paper_elu_64_is_table_ii():
    g, d = build_models(get_preset("paper-elu", 64))
    # Table II, generator column (one image channel: the printed 3 is a misprint, see paper.md)
    expected_g = [
        (100, 512, None, "ELU"),
        (512, 256, None, "ELU"),
        (256, 128, None, "ELU"),
        (128, 64, None, "ELU"),
        (64, 1, None, "Tanh"),
    ]
    got_g = blocks(g)
    assert len(got_g) == 5
    for (conv, bn, act), (cin, cout, bn_ch, act_name) in zip(got_g, expected_g, strict=True):
        assert type(conv) is nn.ConvTranspose2d
        assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (cin, cout, (4, 4))
        assert (bn.num_features if bn is not None else None) == bn_ch
        assert act == act_name
    assert [c.stride for c in convs(g)] == [(1, 1)] + [(2, 2)] * 4
    assert [c.padding for c in convs(g)] == [(0, 0)] + [(1, 1)] * 4
    # Table II, discriminator column: BN in the hidden layers only; the sigmoid is in the loss.
    expected_d = [
        (1, 64, None, "ELU"),
        (64, 128, 128, "ELU"),
        (128, 256, 256, "ELU"),
        (256, 512, 512, "ELU"),
        (512, 1, None, None),
    ]
    got_d = blocks(d)
    assert len(got_d) == 5
    for (conv, bn, act), (cin, cout, bn_ch, act_name) in zip(got_d, expected_d, strict=True):
        assert type(conv) is nn.Conv2d
        assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (cin, cout, (4, 4))
        assert (bn.num_features if bn is not None else None) == bn_ch
        assert act == act_name
    assert [c.stride for c in convs(d)] == [(2, 2)] * 4 + [(1, 1)]
    assert not any(isinstance(m, (nn.Sigmoid, nn.BatchNorm2d)) for m in g.modules())
    assert not any(isinstance(m, nn.Sigmoid) for m in d.modules())
    # 3.57 M generator parameters: 16 * (100*512 + 512*256 + 256*128 + 128*64 + 64*1) weights
    # plus 961 biases (no layer of G is followed by batch norm, so all keep PyTorch's bias).
    assert count_parameters(g) == 3_572_736 + 961 == 3_573_697
    # D: 16 * (64 + 64*128 + 128*256 + 256*512 + 512) weights, biases on the first and the
    # logit conv (64 + 1), BN weight and bias (2 * (128 + 256 + 512)).
    assert count_parameters(d) == 2_761_728 + 65 + 1792 == 2_763_585


@pytest.mark.parametrize("size", [16, 32, 64, 128])
@pytest.mark.parametrize("preset", ["dcgan", "paper-elu", "paper-elu-nobn"])
def test_presets_forward_shapes(preset, size):
    cfg = get_preset(preset, size)  # default widths
    g, d = build_models(cfg)
    z = torch.randn(3, cfg.latent_dim)
    x = g(z)
    assert x.shape == (3, 1, size, size)
    assert x.abs().max() <= 1.0
    assert d(x).shape == (3,)


@pytest.mark.parametrize("preset", ["dcgan", "paper-elu"])
def test_presets_forward_256_small(preset):
    cfg = get_preset(preset, 256, g_features=4, d_features=4, latent_dim=16)
    g, d = build_models(cfg)
    x = g(torch.randn(2, 16))
    assert x.shape == (2, 1, 256, 256) and d(x).shape == (2,)


def test_default_widths_build_at_256():
    # No forward pass: 7 layers, G starts at 64 * 2**5 = 2048 maps.
    g, d = build_models(get_preset("dcgan", 256))
    assert convs(g)[0].out_channels == 2048 and convs(d)[-2].out_channels == 2048
    assert len(convs(g)) == len(convs(d)) == 7
    assert count_parameters(g) > 40_000_000


def test_generator_accepts_both_latent_shapes():
    g = build_generator(ModelConfig(image_size=16, **TINY)).eval()
    z = torch.randn(4, 8)
    torch.testing.assert_close(g(z), g(z[:, :, None, None]))
    with pytest.raises(ValueError, match=r"z of shape \(B, 8\) or \(B, 8, 1, 1\), got \(4, 7\)"):
        g(torch.randn(4, 7))
    d = build_discriminator(ModelConfig(image_size=16, **TINY))
    with pytest.raises(ValueError, match=r"\(B, 1, 16, 16\), got \(2, 1, 32, 32\)"):
        d(torch.randn(2, 1, 32, 32))


@pytest.mark.parametrize("strides", [(4, 4), (8, 8), (2, 8), (4, 2, 2), (16,)])
def test_custom_strides_forward(strides):
    cfg = ModelConfig(image_size=64, g_strides=strides, d_strides=strides, **TINY)
    g, d = build_models(cfg)
    assert len(convs(g)) == len(convs(d)) == len(strides) + 1
    assert [c.stride[0] for c in convs(g)][1:] == list(strides)
    x = g(torch.randn(2, 8))
    assert x.shape == (2, 1, 64, 64) and d(x).shape == (2,)


def test_fc_layers():
    cfg = ModelConfig(image_size=16, channels=2, g_fc_layers=1, d_fc_layers=2, **TINY)
    g, d = build_models(cfg)
    g_lin = [m for m in g.modules() if isinstance(m, nn.Linear)]
    d_lin = [m for m in d.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in g_lin] == [(512, 512)]
    assert [(m.in_features, m.out_features) for m in d_lin] == [(512, 512)] * 2
    # G: last convT has no activation, the FC layer is followed by tanh
    assert not hasattr(g.net[-2], "act") and isinstance(g.net[-1].act, nn.Tanh)
    # D: the FC layers come first, each with D's activation
    assert isinstance(d.net[0].fc, nn.Linear) and isinstance(d.net[0].act, nn.ELU)
    x = g(torch.randn(5, 8))
    assert x.shape == (5, 2, 16, 16) and x.abs().max() <= 1
    assert d(x).shape == (5,)
    base = count_parameters(build_generator(ModelConfig(image_size=16, channels=2, **TINY)))
    assert count_parameters(g) == base + 512 * 512 + 512


@pytest.mark.parametrize(
    "placement, g_bn, d_bn",
    [("none", 0, 0), ("d", 0, 2), ("g", 3, 0), ("both", 3, 2)],
)
def test_batchnorm_modules(placement, g_bn, d_bn):
    g, d = build_models(ModelConfig(image_size=32, batchnorm=placement, **TINY))
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g.modules()) == g_bn
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == d_bn
    for conv, bn, _ in blocks(g) + blocks(d):
        assert (conv.bias is None) == (bn is not None)


def test_dcgan_init_statistics():
    torch.manual_seed(0)
    cfg = ModelConfig(image_size=32, batchnorm="both", init_std=0.05)
    g, d = build_models(cfg)
    weights = torch.cat([c.weight.flatten() for c in convs(g) + convs(d)])
    assert abs(weights.mean().item()) < 0.002
    assert weights.std().item() == pytest.approx(0.05, rel=0.02)
    bns = [m for m in list(g.modules()) + list(d.modules()) if isinstance(m, nn.BatchNorm2d)]
    bn_w = torch.cat([m.weight for m in bns])
    assert bn_w.mean().item() == pytest.approx(1.0, abs=0.01)
    assert bn_w.std().item() == pytest.approx(0.05, rel=0.1)
    assert all((m.bias == 0).all() for m in bns)
    assert all(c.bias is None or (c.bias == 0).all() for c in convs(g) + convs(d))


def test_leaky_slope_and_activation_names():
    cfg = ModelConfig(image_size=16, g_activation="selu", d_activation="leaky_relu",
                      leaky_slope=0.1, **TINY)
    g, d = build_models(cfg)
    assert sum(isinstance(m, nn.SELU) for m in g.modules()) == 2
    slopes = {m.negative_slope for m in d.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.1}
    for name in ACTIVATIONS.names():
        out = make_activation(name, 0.2)(torch.linspace(-2, 2, 9))
        assert out.shape == (9,)
    assert {"elu", "relu", "leaky_relu", "selu", "gelu", "silu", "tanh", "identity"} <= set(
        ACTIVATIONS.names()
    )


def test_d_returns_logits_and_gradients_flow():
    torch.manual_seed(0)
    g, d = build_models(ModelConfig(image_size=32, batchnorm="both", init_std=1.0, **TINY))
    logits = d(g(torch.randn(6, 8)))
    assert logits.shape == (6,)
    assert (logits < 0).any() or (logits > 1).any()  # unbounded: no sigmoid inside
    nn.functional.binary_cross_entropy_with_logits(logits, torch.ones(6)).backward()
    for name, p in list(g.named_parameters()) + list(d.named_parameters()):
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_describe_and_repr():
    g, d = build_models(ModelConfig(image_size=16, **TINY))
    assert g.describe().splitlines()[0] == "0: convT 8->8 k4 s1 p0 1x1->4x4 elu"
    assert d.layers()[-1].activation == "identity"
    assert "latent=8, image=1x16x16" in repr(g) and "ConvTranspose2d" in repr(g)
    assert "batchnorm=d" in repr(d)


def test_bad_configs_fail_before_allocation():
    with pytest.raises(ConfigError, match=r"model.g_activation: unknown activation 'elux'.*elu"):
        build_models(ModelConfig(g_activation="elux"))
    with pytest.raises(ConfigError, match=r"model.d_activation: unknown activation"):
        Discriminator(ModelConfig(d_activation="nope"))
    with pytest.raises(ConfigError, match=r"model.leaky_slope: expected a value in \[0, 1\)"):
        build_models(ModelConfig(d_activation="leaky_relu", leaky_slope=1.5))
    with pytest.raises(ConfigError, match="model.init_std: expected a positive number"):
        build_models(ModelConfig(init_std=0.0))
    with pytest.raises(GeometryError, match=r"G layer 1 .*kernel 5 gives 9x9.*kernel 4 would fit"):
        Generator(ModelConfig(g_kernels=(5, 4, 4, 4)))
    with pytest.raises(GeometryError, match="D layer 0"):
        build_discriminator(ModelConfig(d_strides=(5,)))
