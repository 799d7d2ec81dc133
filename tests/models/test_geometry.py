"""The paper's eq. 5, its kernel solver, and the layer plans of G and D (no torch needed)."""

import itertools

import pytest

from xraygan.config import ModelConfig
from xraygan.errors import ConfigError, GeometryError
from xraygan.models.geometry import (
    LayerPlan,
    conv_out_size,
    conv_transpose_out_size,
    describe_plan,
    plan_discriminator,
    plan_generator,
    solve_kernel,
)

# --- eq. 5 -------------------------------------------------------------------------------------

def test_out_sizes_match_pytorch_formulas():
    assert conv_out_size(64, 4, 2, 1) == 32
    assert conv_out_size(4, 4, 1, 0) == 1
    assert conv_out_size(64, 3, 2, 1) == 32  # floor: PyTorch drops the remainder
    assert conv_out_size(64, 3, 1, 1, dilation=2) == 62
    assert conv_transpose_out_size(32, 4, 2, 1) == 64
    assert conv_transpose_out_size(1, 4, 1, 0) == 4
    assert conv_transpose_out_size(16, 6, 4, 1) == 64
    assert conv_transpose_out_size(8, 3, 1, 1, dilation=2) == 10


def test_out_sizes_agree_with_torch():
    torch = pytest.importorskip("torch")
    for in_size, k, s, p, d in [(64, 4, 2, 1, 1), (17, 5, 3, 2, 1), (20, 3, 2, 0, 2), (9, 6, 4, 1, 1)]:
        x = torch.zeros(1, 1, in_size, in_size)
        conv = torch.nn.Conv2d(1, 1, k, s, p, dilation=d)
        convt = torch.nn.ConvTranspose2d(1, 1, k, s, p, dilation=d)
        assert conv(x).shape[-1] == conv_out_size(in_size, k, s, p, d)
        assert convt(x).shape[-1] == conv_transpose_out_size(in_size, k, s, p, d)


@pytest.mark.parametrize(
    "in_size, out_size, stride, padding, dilation, transposed, kernel",
    [
        (64, 32, 2, 1, 1, False, 4),  # DCGAN down
        (32, 64, 2, 1, 1, True, 4),  # DCGAN up
        (4, 1, 1, 0, 1, False, 4),  # D's logit layer
        (1, 4, 1, 0, 1, True, 4),  # G's first layer
        (64, 16, 4, 1, 1, False, 6),  # stride 4: K = S + 2P
        (16, 64, 4, 1, 1, True, 6),
        (64, 8, 8, 1, 1, False, 10),  # stride 8
        (8, 64, 8, 0, 1, True, 8),
        (64, 32, 2, 0, 1, False, 2),
        (64, 32, 2, 1, 3, False, 2),  # dilation 3: D(K-1) = 3
        (32, 64, 2, 1, 3, True, 2),
        (64, 64, 1, 1, 1, False, 3),  # stride 1 "same" layer
    ],
)
def test_solve_kernel_cases(in_size, out_size, stride, padding, dilation, transposed, kernel):
    got = solve_kernel(in_size, out_size, stride, padding, dilation, transposed)
    assert got == kernel
    size_fn = conv_transpose_out_size if transposed else conv_out_size
    assert size_fn(in_size, got, stride, padding, dilation) == out_size


def test_solve_kernel_round_trips_exactly():
    for size, stride, padding, dilation in itertools.product(
        (4, 8, 16, 64), (1, 2, 4, 8), (0, 1, 2, 3), (1, 2)
    ):
        big = size * stride
        try:
            k = solve_kernel(big, size, stride, padding, dilation)
        except GeometryError:
            assert (stride - 1 + 2 * padding) % dilation  # only when D does not divide the span
            continue
        # exact: eq. 5 holds without rounding
        assert (big + 2 * padding - dilation * (k - 1) - 1) % stride == 0
        assert conv_out_size(big, k, stride, padding, dilation) == size
        kt = solve_kernel(size, big, stride, padding, dilation, transposed=True)
        assert conv_transpose_out_size(size, kt, stride, padding, dilation) == big


def test_solve_kernel_impossible():
    with pytest.raises(GeometryError, match=r"conv 8->64 .*no kernel fits"):
        solve_kernel(8, 64, 2, 0)  # a conv cannot upsample 8x
    with pytest.raises(GeometryError, match=r"transposed conv 4->2 .*no kernel fits"):
        solve_kernel(4, 2, 2, 0, transposed=True)
    with pytest.raises(GeometryError, match="not a multiple of dilation 2"):
        solve_kernel(64, 32, 2, 1, dilation=2)  # D(K-1) = 3
    with pytest.raises(GeometryError, match="stride must be >= 1, got 0"):
        solve_kernel(64, 32, 0, 1)
    with pytest.raises(GeometryError, match="padding must be >= 0"):
        solve_kernel(64, 32, 2, -1)
    with pytest.raises(GeometryError, match="gives no output"):
        conv_out_size(4, 9, 1, 0)


# --- plans -------------------------------------------------------------------------------------

def sizes(plans):
    return [(p.in_size, p.out_size) for p in plans]


def test_dcgan_geometry_64():
    g = plan_generator(ModelConfig())
    assert sizes(g) == [(1, 4), (4, 8), (8, 16), (16, 32), (32, 64)]
    assert [(p.kernel, p.stride, p.padding) for p in g] == [(4, 1, 0)] + [(4, 2, 1)] * 4
    assert [(p.in_channels, p.out_channels) for p in g] == [
        (100, 512), (512, 256), (256, 128), (128, 64), (64, 1)
    ]
    d = plan_discriminator(ModelConfig())
    assert sizes(d) == [(64, 32), (32, 16), (16, 8), (8, 4), (4, 1)]
    assert [(p.kernel, p.stride, p.padding) for p in d] == [(4, 2, 1)] * 4 + [(4, 1, 0)]
    assert [(p.in_channels, p.out_channels) for p in d] == [
        (1, 64), (64, 128), (128, 256), (256, 512), (512, 1)
    ]
    assert all(isinstance(p, LayerPlan) for p in g + d)
    assert [p.index for p in g] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("size", [16, 32, 64, 128, 256, 512])
def test_dcgan_geometry_any_size(size):
    cfg = ModelConfig(image_size=size, g_features=8, d_features=8, channels=3)
    g, d = plan_generator(cfg), plan_discriminator(cfg)
    n = size.bit_length() - 2  # log2(size) - 1 layers
    assert len(g) == len(d) == n
    assert g[0].in_size == 1 and g[-1].out_size == size and g[-1].out_channels == 3
    assert d[0].in_size == size and d[-1].out_size == 1 and d[0].in_channels == 3
    assert g[0].out_channels == 8 * 2 ** (n - 2) and g[-2].out_channels == 8
    assert d[-2].out_channels == 8 * 2 ** (n - 2) and d[-1].out_channels == 1
    for a, b in zip(g, g[1:], strict=False):
        assert a.out_size == b.in_size and a.out_channels == b.in_channels


def test_custom_strides_4_4_at_64():
    cfg = ModelConfig(g_strides=(4, 4), d_strides=(4, 4))
    g = plan_generator(cfg)
    assert sizes(g) == [(1, 4), (4, 16), (16, 64)]
    assert [p.kernel for p in g] == [4, 6, 6]  # K = S + 2P for the strided layers
    assert [(p.in_channels, p.out_channels) for p in g] == [(100, 128), (128, 64), (64, 1)]
    d = plan_discriminator(cfg)
    assert sizes(d) == [(64, 16), (16, 4), (4, 1)]
    assert [p.kernel for p in d] == [6, 6, 4]
    assert [(p.in_channels, p.out_channels) for p in d] == [(1, 64), (64, 128), (128, 1)]


def test_custom_strides_8_8_at_64_and_padding_0():
    cfg = ModelConfig(g_strides=(8, 8), d_strides=(8, 8), padding=0)
    g = plan_generator(cfg)
    assert sizes(g) == [(1, 1), (1, 8), (8, 64)]
    assert [p.kernel for p in g] == [1, 8, 8]
    d = plan_discriminator(cfg)
    assert sizes(d) == [(64, 8), (8, 1), (1, 1)]
    assert [p.kernel for p in d] == [8, 8, 1]


def test_g_and_d_strides_independent():
    cfg = ModelConfig(image_size=128, g_strides=(4, 2, 4), d_strides=())
    g = plan_generator(cfg)
    assert sizes(g) == [(1, 4), (4, 16), (16, 32), (32, 128)]
    assert [p.kernel for p in g] == [4, 6, 4, 6]
    assert len(plan_discriminator(cfg)) == 6  # DCGAN geometry for 128


def test_explicit_kernels_validated():
    ok = plan_discriminator(ModelConfig(d_kernels=(3, 4, 4, 4)))  # floor: 64 -> 32 with k3 s2 p1
    assert [p.kernel for p in ok] == [3, 4, 4, 4, 4]
    g = plan_generator(ModelConfig(g_strides=(4, 4), g_kernels=(6, 6)))
    assert [p.kernel for p in g] == [4, 6, 6]
    with pytest.raises(GeometryError) as err:
        plan_generator(ModelConfig(g_kernels=(4, 3, 4, 4)))
    msg = str(err.value)
    for part in ("G layer 2", "8x8 -> 16x16", "stride 2", "kernel 3 gives 15x15",
                 "expected 16x16", "kernel 4 would fit"):
        assert part in msg
    with pytest.raises(GeometryError) as err:
        plan_discriminator(ModelConfig(d_strides=(4, 4), d_kernels=(5, 8)))  # k5 floors to 16
    msg = str(err.value)
    for part in ("D layer 1", "16x16 -> 4x4", "kernel 8 gives 3x3", "kernel 6 would fit"):
        assert part in msg
    with pytest.raises(GeometryError, match=r"D layer 0 .*kernel 0 must be an integer >= 1"):
        plan_discriminator(ModelConfig(d_kernels=(0, 4, 4, 4)))


def test_kernel_count_mismatch():
    with pytest.raises(GeometryError) as err:
        plan_generator(ModelConfig(g_kernels=(4, 4)))
    msg = str(err.value)
    assert "G:" in msg and "model.g_kernels has 2 entries" in msg and "4 strided G layers" in msg
    assert "DCGAN geometry for 64x64" in msg
    with pytest.raises(GeometryError, match=r"D: model.d_kernels has 3 .*model.d_strides \(4, 4\)"):
        plan_discriminator(ModelConfig(d_strides=(4, 4), d_kernels=(6, 6, 6)))


def test_stride_product_must_divide_image_size():
    with pytest.raises(GeometryError) as err:
        plan_discriminator(ModelConfig(d_strides=(3,)))
    msg = str(err.value)
    for part in ("D layer 0 (stride 3)", "input 64x64", "multiply to 3",
                 "does not divide image_size 64", "1, 2, 4, 8, 16, 32, 64"):
        assert part in msg
    with pytest.raises(GeometryError) as err:
        plan_generator(ModelConfig(g_strides=(2, 3)))
    assert "G layer 2 (stride 3): its output 64x64" in str(err.value)
    with pytest.raises(GeometryError, match=r"multiply to 128, which does not divide image_size 64"):
        plan_generator(ModelConfig(g_strides=(8, 16)))
    with pytest.raises(GeometryError, match=r"G layer 2: stride 0 in model.g_strides"):
        plan_generator(ModelConfig(g_strides=(4, 0)))
    with pytest.raises(GeometryError, match=r"D layer 2: stride -2"):
        plan_discriminator(ModelConfig(d_fc_layers=1, d_strides=(2, -2)))


def test_non_geometry_fields_rejected():
    with pytest.raises(ConfigError, match="model.image_size: expected a power of two >= 16, got 48"):
        plan_generator(ModelConfig(image_size=48))
    with pytest.raises(ConfigError, match="model.image_size.*got 8"):
        plan_discriminator(ModelConfig(image_size=8))
    with pytest.raises(ConfigError, match="model.g_features: expected a positive integer, got 0"):
        plan_generator(ModelConfig(g_features=0))
    with pytest.raises(ConfigError, match="model.batchnorm: expected one of none, d, g, both"):
        plan_discriminator(ModelConfig(batchnorm="all"))
    with pytest.raises(ConfigError, match="model.padding: expected >= 0"):
        plan_discriminator(ModelConfig(padding=-1))


@pytest.mark.parametrize(
    "placement, g_bn, d_bn",
    [
        ("none", [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]),
        ("d", [0, 0, 0, 0, 0], [0, 1, 1, 1, 0]),  # the paper's Table II
        ("g", [1, 1, 1, 1, 0], [0, 0, 0, 0, 0]),
        ("both", [1, 1, 1, 1, 0], [0, 1, 1, 1, 0]),  # DCGAN
    ],
)
def test_batchnorm_placement(placement, g_bn, d_bn):
    cfg = ModelConfig(batchnorm=placement)
    assert [int(p.batchnorm) for p in plan_generator(cfg)] == g_bn
    assert [int(p.batchnorm) for p in plan_discriminator(cfg)] == d_bn
    # a bias before batch norm is redundant
    assert all(p.bias != p.batchnorm for p in plan_generator(cfg) + plan_discriminator(cfg))


def test_fc_layers_in_plans():
    cfg = ModelConfig(image_size=16, g_fc_layers=2, d_fc_layers=1, batchnorm="both",
                      g_activation="relu", d_activation="leaky_relu")
    g = plan_generator(cfg)
    assert [p.kind for p in g] == ["convT", "convT", "convT", "linear", "linear"]
    assert [p.activation for p in g] == ["relu", "relu", "identity", "relu", "tanh"]
    assert g[-1].in_features == g[-1].out_features == 16 * 16
    assert not g[-1].batchnorm and not g[2].batchnorm
    d = plan_discriminator(cfg)
    assert [p.kind for p in d] == ["linear", "conv", "conv", "conv"]
    assert [p.index for p in d] == [0, 1, 2, 3]
    assert [int(p.batchnorm) for p in d] == [0, 0, 1, 0]  # first conv still without BN
    assert [p.activation for p in d] == ["leaky_relu"] * 3 + ["identity"]


def test_describe_plan():
    text = describe_plan(plan_discriminator(ModelConfig()))
    lines = text.splitlines()
    assert lines[0] == "0: conv 1->64 k4 s2 p1 64x64->32x32 elu"
    assert lines[1] == "1: conv 64->128 k4 s2 p1 32x32->16x16 BN elu"
    assert lines[-1] == "4: conv 512->1 k4 s1 p0 4x4->1x1 identity"
    fc = plan_generator(ModelConfig(image_size=16, g_fc_layers=1))[-1]
    assert fc.describe() == "3: linear 256->256 16x16->16x16 tanh"
