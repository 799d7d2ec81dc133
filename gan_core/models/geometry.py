"""Layer geometry of the DCGAN family: the paper's eq. 5, solved for the kernel, and layer plans.

Pure functions, no torch: a configuration is planned layer by layer and every size is checked
before a single weight is allocated, so an impossible geometry fails in milliseconds with a
message that names the network (G or D), the layer, its sizes and what would fit.

Eq. 5 of Belmekki et al. (ICIIBMS 2022), the PyTorch ``Conv2d`` output size:

    out = (in + 2P - D(K - 1) - 1) / S + 1

and its transposed counterpart (``ConvTranspose2d``, no output padding):

    out = (in - 1) S - 2P + D(K - 1) + 1

The paper used eq. 5 to fit kernel sizes when it replaced stride-2 layers by fewer layers of
larger stride (Table III). Here every strided layer scales the map by exactly its stride, so with
dilation 1 the kernel is ``K = S + 2P`` (stride 2, padding 1 gives DCGAN's kernel 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import ModelConfig, validate_model
from ..errors import GeometryError

LAYER_KINDS = ("conv", "convT", "linear")


def conv_out_size(in_size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Output side of ``Conv2d`` (floor division, as PyTorch computes it)."""
    _check_args(in_size, kernel, stride, padding, dilation)
    out = (in_size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    if out < 1:
        raise GeometryError(
            f"conv with kernel {kernel}, stride {stride}, padding {padding}, dilation {dilation} "
            f"on a {in_size}x{in_size} map gives no output (size {out})"
        )
    return out


def conv_transpose_out_size(
    in_size: int, kernel: int, stride: int, padding: int, dilation: int = 1
) -> int:
    """Output side of ``ConvTranspose2d`` without output padding."""
    _check_args(in_size, kernel, stride, padding, dilation)
    out = (in_size - 1) * stride - 2 * padding + dilation * (kernel - 1) + 1
    if out < 1:
        raise GeometryError(
            f"transposed conv with kernel {kernel}, stride {stride}, padding {padding}, "
            f"dilation {dilation} on a {in_size}x{in_size} map gives no output (size {out})"
        )
    return out


def solve_kernel(
    in_size: int,
    out_size: int,
    stride: int,
    padding: int,
    dilation: int = 1,
    transposed: bool = False,
) -> int:
    """The kernel K that makes eq. 5 (or its transposed form) hold exactly.

    Exact means no rounding: for a conv, ``in + 2P - D(K-1) - 1`` is a multiple of S. (PyTorch
    floors, so a smaller kernel may give the same size while dropping border pixels; eq. 5 as the
    paper writes it, and as used here, has no remainder.) Raises GeometryError when no positive
    integer kernel exists.
    """
    for name, value in (("in_size", in_size), ("out_size", out_size), ("stride", stride),
                        ("dilation", dilation)):
        if value < 1:
            raise GeometryError(f"{name} must be >= 1, got {value}")
    if padding < 0:
        raise GeometryError(f"padding must be >= 0, got {padding}")
    if transposed:
        # out = (in - 1) S - 2P + D(K - 1) + 1  =>  D(K - 1) = out - 1 - (in - 1) S + 2P
        span = out_size - 1 - (in_size - 1) * stride + 2 * padding
    else:
        # (out - 1) S = in + 2P - D(K - 1) - 1  =>  D(K - 1) = in + 2P - 1 - (out - 1) S
        span = in_size + 2 * padding - 1 - (out_size - 1) * stride
    kind = "transposed conv" if transposed else "conv"
    where = (
        f"{kind} {in_size}->{out_size} with stride {stride}, padding {padding}, "
        f"dilation {dilation}"
    )
    if span < 0:
        raise GeometryError(
            f"{where}: no kernel fits (eq. 5 needs D(K-1) = {span} < 0); "
            f"lower the padding or the stride"
        )
    if span % dilation:
        raise GeometryError(
            f"{where}: no integer kernel fits (eq. 5 needs D(K-1) = {span}, "
            f"not a multiple of dilation {dilation})"
        )
    return span // dilation + 1


def _check_args(in_size: int, kernel: int, stride: int, padding: int, dilation: int) -> None:
    for name, value in (("in_size", in_size), ("kernel", kernel), ("stride", stride),
                        ("dilation", dilation)):
        if value < 1:
            raise GeometryError(f"{name} must be >= 1, got {value}")
    if padding < 0:
        raise GeometryError(f"padding must be >= 0, got {padding}")


@dataclass(frozen=True)
class LayerPlan:
    """One layer of G or D, fully resolved; the modules are built from these and nothing else.

    For ``linear`` layers (the optional fully connected layers) the map is flattened: features
    are ``channels * size * size`` and kernel, stride and padding are 0 (they do not apply).
    ``activation`` is a name in xraygan.models.activations.ACTIVATIONS; "identity" = none (D's logit).
    """

    index: int
    kind: str  # one of LAYER_KINDS
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    padding: int
    in_size: int
    out_size: int
    batchnorm: bool
    activation: str

    @property
    def bias(self) -> bool:
        # A bias right before batch norm is cancelled by its mean subtraction (and BN has its
        # own shift), so layers followed by BN go without, as in the DCGAN reference.
        return not self.batchnorm

    @property
    def in_features(self) -> int:
        return self.in_channels * self.in_size * self.in_size

    @property
    def out_features(self) -> int:
        return self.out_channels * self.out_size * self.out_size

    def describe(self) -> str:
        """One line: ``convT 4 512->256 k4 s2 p1 8x8->16x16 BN elu``."""
        if self.kind == "linear":
            shape = f"{self.in_features}->{self.out_features}"
        else:
            shape = (
                f"{self.in_channels}->{self.out_channels} "
                f"k{self.kernel} s{self.stride} p{self.padding}"
            )
        sizes = f"{self.in_size}x{self.in_size}->{self.out_size}x{self.out_size}"
        bn = " BN" if self.batchnorm else ""
        return f"{self.index}: {self.kind} {shape} {sizes}{bn} {self.activation}"


def plan_generator(cfg: ModelConfig) -> list[LayerPlan]:
    """G's layers: ConvT 1x1 -> initial size, strided ConvTs up to image_size, optional FC.

    Widths: the first layer has ``g_features * 2**(n-2)`` maps for n conv layers, halving per
    block to ``g_features``; the last conv gives ``channels`` (DCGAN, Radford et al. 2016).
    """
    validate_model(cfg)  # the fields the plan depends on
    size = cfg.image_size
    strides = _strides(cfg, "G")
    kernels = _kernels(cfg, "G", strides)
    n = len(strides) + 1  # conv layers, the 1x1 -> initial one included (n >= 2)
    init = size // math.prod(strides)
    widths = [cfg.g_features * 2 ** (n - 2 - i) for i in range(n - 1)] + [cfg.channels]
    bn_g = cfg.batchnorm in ("g", "both")
    has_fc = cfg.g_fc_layers > 0
    last_act = "identity" if has_fc else "tanh"

    # Layer 0 maps z (latent_dim, 1, 1) to (widths[0], init, init): kernel = init, s1 p0.
    plans = [
        LayerPlan(0, "convT", cfg.latent_dim, widths[0], init, 1, 0, 1, init, bn_g,
                  cfg.g_activation)
    ]
    in_size = init
    for i, (stride, kernel) in enumerate(zip(strides, kernels, strict=True), start=1):
        out_size = in_size * stride
        if kernel is None:
            kernel = _solve_layer("G", i, in_size, out_size, stride, cfg.padding, True)
        else:
            _check_kernel("G", i, in_size, out_size, kernel, stride, cfg.padding, True)
        last = i == n - 1
        plans.append(
            LayerPlan(i, "convT", widths[i - 1], widths[i], kernel, stride, cfg.padding, in_size,
                      out_size, bn_g and not last, last_act if last else cfg.g_activation)
        )
        in_size = out_size
    # Optional fully connected layers on the flattened image, before tanh (paper, Table III).
    for j in range(cfg.g_fc_layers):
        last = j == cfg.g_fc_layers - 1
        plans.append(
            LayerPlan(n + j, "linear", cfg.channels, cfg.channels, 0, 0, 0, size, size, False,
                      "tanh" if last else cfg.g_activation)
        )
    return plans


def plan_discriminator(cfg: ModelConfig) -> list[LayerPlan]:
    """D's layers: optional FC, strided convs down, then a conv of the final size -> 1x1 logit.

    Widths ``channels -> d_features -> 2 d_features -> ... -> 1``. Batch norm (placements "d"
    and "both") on hidden convs only: not the first (DCGAN) and not the logit.
    """
    validate_model(cfg)  # the fields the plan depends on
    size = cfg.image_size
    strides = _strides(cfg, "D")
    kernels = _kernels(cfg, "D", strides)
    bn_d = cfg.batchnorm in ("d", "both")
    plans = [
        LayerPlan(j, "linear", cfg.channels, cfg.channels, 0, 0, 0, size, size, False,
                  cfg.d_activation)
        for j in range(cfg.d_fc_layers)
    ]
    offset = len(plans)
    in_size, in_ch = size, cfg.channels
    for i, (stride, kernel) in enumerate(zip(strides, kernels, strict=True)):
        out_size = in_size // stride
        if kernel is None:
            kernel = _solve_layer("D", offset + i, in_size, out_size, stride, cfg.padding, False)
        else:
            _check_kernel("D", offset + i, in_size, out_size, kernel, stride, cfg.padding, False)
        out_ch = cfg.d_features * 2**i
        plans.append(
            LayerPlan(offset + i, "conv", in_ch, out_ch, kernel, stride, cfg.padding, in_size,
                      out_size, bn_d and i > 0, cfg.d_activation)
        )
        in_size, in_ch = out_size, out_ch
    # The logit layer maps the final (in_ch, s, s) map to (1, 1, 1): kernel = s, s1 p0.
    plans.append(
        LayerPlan(offset + len(strides), "conv", in_ch, 1, in_size, 1, 0, in_size, 1, False,
                  "identity")
    )
    return plans


def describe_plan(plans: list[LayerPlan]) -> str:
    """Layer list, one line per layer."""
    return "\n".join(p.describe() for p in plans)


def _strides(cfg: ModelConfig, net: str) -> tuple[int, ...]:
    """The strided layers' strides; empty = DCGAN's stride 2 from 4x4 to image_size."""
    field = "model.g_strides" if net == "G" else "model.d_strides"
    strides = tuple(cfg.g_strides if net == "G" else cfg.d_strides)
    size = cfg.image_size
    if not strides:
        return (2,) * (size.bit_length() - 3)  # log2(size / 4) doublings
    # Layer indices: G's strided layers are 1..n (0 is the 1x1 layer), D's are 0..n-1 after
    # its FC layers.
    first = 1 if net == "G" else cfg.d_fc_layers
    for i, stride in enumerate(strides):
        if not isinstance(stride, int) or stride < 1:
            raise GeometryError(
                f"{net} layer {first + i}: stride {stride!r} in {field} must be an integer >= 1"
            )
    product = math.prod(strides)
    if size % product:
        fits = [d for d in range(1, size + 1) if size % d == 0]
        # Find the first layer whose map is not a multiple of its stride (walking from the
        # image side: down through D, back up through G).
        at = size
        order = range(len(strides)) if net == "D" else range(len(strides) - 1, -1, -1)
        bad = 0
        for i in order:
            if at % strides[i]:
                bad = i
                break
            at //= strides[i]
        side = "input" if net == "D" else "output"
        raise GeometryError(
            f"{net} layer {first + bad} (stride {strides[bad]}): its {side} {at}x{at} is not a "
            f"multiple of the stride; {field} {strides} multiply to {product}, which does not "
            f"divide image_size {size}. Stride products that fit: {', '.join(map(str, fits))}"
        )
    return strides


def _kernels(cfg: ModelConfig, net: str, strides: tuple[int, ...]) -> tuple[int | None, ...]:
    """Explicit kernels per strided layer, or None where eq. 5 will solve them."""
    field = "model.g_kernels" if net == "G" else "model.d_kernels"
    kernels = tuple(cfg.g_kernels if net == "G" else cfg.d_kernels)
    if not kernels:
        return (None,) * len(strides)
    if len(kernels) != len(strides):
        sfield = "model.g_strides" if net == "G" else "model.d_strides"
        src = f"{sfield} {tuple(strides)}" if (cfg.g_strides if net == "G" else cfg.d_strides) \
            else f"the DCGAN geometry for {cfg.image_size}x{cfg.image_size}"
        raise GeometryError(
            f"{net}: {field} has {len(kernels)} entries but there are {len(strides)} strided "
            f"{net} layers ({src}); give one kernel per stride, or none to solve them from eq. 5"
        )
    return kernels


def _solve_layer(
    net: str, index: int, in_size: int, out_size: int, stride: int, padding: int, transposed: bool
) -> int:
    try:
        return solve_kernel(in_size, out_size, stride, padding, transposed=transposed)
    except GeometryError as err:
        raise GeometryError(f"{net} layer {index}: {err}") from None


def _check_kernel(
    net: str,
    index: int,
    in_size: int,
    out_size: int,
    kernel: int,
    stride: int,
    padding: int,
    transposed: bool,
) -> None:
    kind = "convT" if transposed else "conv"
    where = (
        f"{net} layer {index} ({kind} {in_size}x{in_size} -> {out_size}x{out_size}, "
        f"stride {stride}, padding {padding})"
    )
    try:
        fit = f"kernel {solve_kernel(in_size, out_size, stride, padding, transposed=transposed)}"
        fit += " would fit"
    except GeometryError as err:
        fit = f"no kernel fits: {err}"
    if not isinstance(kernel, int) or kernel < 1:
        raise GeometryError(f"{where}: kernel {kernel!r} must be an integer >= 1; {fit}")
    size_fn = conv_transpose_out_size if transposed else conv_out_size
    try:
        got = size_fn(in_size, kernel, stride, padding)
    except GeometryError:
        got = None
    if got != out_size:
        gives = f"{got}x{got}" if got is not None else "no output"
        raise GeometryError(
            f"{where}: kernel {kernel} gives {gives}, expected {out_size}x{out_size}; {fit}"
        )
