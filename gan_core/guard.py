"""The resource guard: refuse, with a reason, what would not fit, before allocating any of it.

A memory bomb (``--image-size 4096``, ``--features 1000000``, ``--batch-size 1000000000``) used
to allocate until the kernel's OOM killer ended the process, or the whole machine. Every
command that builds models or data first asks :func:`check_training` (or, for one buffer,
:func:`check_allocation`) whether the bytes fit; the answer comes from shapes alone, so
asking costs microseconds and allocates nothing, whatever the sizes.

The budget (``XRAYGAN_MEMORY_CAP`` or a share of what is available) comes from
xraygan.budget.

The training estimate follows xraygan.memory.estimate (parameters, gradients, optimizer state
from the optimizer's own state model (its spec in xraygan.optim), the batch, what autograd saves during the D update, the
widest activation's gradient) but counts saved tensors from the layer plans instead of a
forward pass, plus the host side: the dataset as uint8 and the phantom generator's working
arrays, and the sample grid. It is an estimate to catch bombs (10x too big), not a profiler:
tests keep it within a factor of two of the forward-pass estimate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from .budget import check_allocation, format_bytes, memory_budget, where
from .config import ExperimentConfig, ModelConfig, OptimConfig
from .errors import ResourceError
from .lazy import lazy_module
from .losses import LOSSES
from .models.activations import check_activation
from .models.geometry import plan_discriminator, plan_generator
from .optim.factory import check_config, state_bytes

torch = lazy_module("torch")  # only first_nonfinite and a CUDA device read it


# --------------------------------------------------------------------------- estimate from shapes
@dataclass(frozen=True)
class _Shape:
    """A parameter's shape, with the few tensor methods optimizer state models call.

    Python ints: no overflow and no allocation, even for a 10^20-element weight."""

    shape: tuple[int, ...]
    itemsize: int = 4

    def numel(self) -> int:
        return math.prod(self.shape)

    def element_size(self) -> int:
        return self.itemsize

    def dim(self) -> int:
        return len(self.shape)


# Activations whose backward needs only their output (the next layer's saved input, counted
# once); the others (elu, leaky_relu, gelu, silu, ...) save their input as well.
_SAVES_OUTPUT = frozenset({"relu", "tanh", "sigmoid", "identity"})
# Phantom rendering (gan_core/data/phantom.py): float32 (n, S, S) for the whole set while the
# chunks are drawn, up to 64 live float32 S x S arrays per image of a chunk of 32 (measured
# with tracemalloc: 32-64 at 128-256 px), then uint8 copies.
_PHANTOM_ARRAYS_PER_IMAGE = 64
_PHANTOM_CHUNK = 32
_PHANTOM_DEFAULT_IMAGES = 2048  # xraygan.data.phantom.DEFAULT_NUM_IMAGES (not imported: numpy, scipy)


def _net_shapes(plans) -> tuple[list[_Shape], int, list[int], int]:
    """(trainable parameter shapes, buffer bytes, saved elements per layer for one image,
    elements of the widest layer output)."""
    params: list[_Shape] = []
    buffers = 0
    saved: list[int] = []
    for p in plans:
        if p.kind == "linear":
            params.append(_Shape((p.out_features, p.in_features)))
        elif p.kind == "conv":
            params.append(_Shape((p.out_channels, p.in_channels, p.kernel, p.kernel)))
        else:  # convT
            params.append(_Shape((p.in_channels, p.out_channels, p.kernel, p.kernel)))
        if p.bias:
            params.append(_Shape((p.out_features if p.kind == "linear" else p.out_channels,)))
        if p.batchnorm:
            params += [_Shape((p.out_channels,)), _Shape((p.out_channels,))]
            buffers += 2 * 4 * p.out_channels + 8  # running mean/var, num_batches_tracked
        maps = 1 + int(p.batchnorm) + int(p.activation not in _SAVES_OUTPUT)
        saved.append(maps * p.out_features)
    return params, buffers, saved, max((p.out_features for p in plans), default=0)


@dataclass(frozen=True)
class TrainingEstimate:
    """Bytes a training run would hold, by component, with the flag that lowers each."""

    device: str
    params: int  # parameters and buffers of G and D
    grads: int
    optimizer_state: int
    batch: int  # real batch as float and z
    activations: int  # saved for backward during the D update
    workspace: int  # gradient of the widest D activation
    samples: int  # fixed noise and the sample grid (host)
    dataset: int  # the training set as uint8 (host)
    data_working: int  # the loader's temporaries (phantom rendering) (host)
    batch_size: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def on_device(self) -> int:
        return (self.params + self.grads + self.optimizer_state + self.batch + self.activations
                + self.workspace)

    @property
    def on_host(self) -> int:
        return self.samples + self.dataset + self.data_working

    @property
    def total(self) -> int:
        return self.on_device + self.on_host

    def to_dict(self) -> dict[str, int]:
        keys = ("params", "grads", "optimizer_state", "batch", "activations", "workspace",
                "samples", "dataset", "data_working")
        return {k: getattr(self, k) for k in keys} | {"on_device": self.on_device,
                                                       "on_host": self.on_host, "total": self.total}


TRAIN_FLAGS = {
    "model": "--features (--g-features/--d-features), --g-fc/--d-fc or --image-size",
    "activations": "--batch-size (or --features, --image-size)",
    "samples": "--num-samples",
    "data": "--num-images or --image-size",
}
"""Which flags of ``xraygan train`` lower each part; other commands pass their own."""


def estimate_model(model: ModelConfig, optim: OptimConfig, batch_size: int) -> dict[str, int]:
    """Parameters, gradients, optimizer state and step activations of G and D (bytes)."""
    g_params, g_buf, g_saved, _ = _net_shapes(plan_generator(model))
    d_params, d_buf, d_saved, d_widest = _net_shapes(plan_discriminator(model))
    param_bytes = sum(s.numel() * 4 for s in (*g_params, *d_params))
    # D update: G's graph (kept for the G update), D on the real and on the fake half
    activations = 4 * batch_size * (sum(g_saved) + 2 * sum(d_saved))
    return {
        "params": param_bytes + g_buf + d_buf,
        "grads": param_bytes,
        "optimizer_state": int(state_bytes([*g_params, *d_params], optim)),
        "batch": 4 * batch_size * (model.channels * model.image_size**2 + model.latent_dim),
        "activations": activations,
        "workspace": 4 * batch_size * d_widest,
    }


def estimate_training(cfg: ExperimentConfig, *, device: str = "cpu",
                      include_data: bool = True) -> TrainingEstimate:
    """The shape-only estimate of training ``cfg`` (see the module docstring)."""
    m, t = cfg.model, cfg.train
    parts = estimate_model(m, cfg.optim, t.batch_size)
    pixels = m.channels * m.image_size**2
    # fixed noise (float32), the grid as uint8 plus the PNG's copy; G runs in batches
    samples = t.num_samples * (4 * m.latent_dim + 2 * pixels)
    dataset = working = 0
    notes: list[str] = []
    if include_data:
        kind = cfg.data.source.partition(":")[0]
        if kind == "phantom":
            n = cfg.data.num_images or _PHANTOM_DEFAULT_IMAGES
            dataset = n * pixels
            side = m.image_size**2
            working = (n * side * (4 + 1)
                       + min(n, _PHANTOM_CHUNK) * _PHANTOM_ARRAYS_PER_IMAGE * side * 4)
            notes.append(f"{n} phantoms of {m.image_size}x{m.image_size}")
        elif cfg.data.num_images:
            dataset = cfg.data.num_images * pixels  # the loader checks its own decode buffers
    return TrainingEstimate(device=device, samples=samples, dataset=dataset,
                            data_working=working, batch_size=t.batch_size, notes=tuple(notes),
                            **parts)


def _resolve(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def check_names(cfg: ExperimentConfig) -> None:
    """Every part ``cfg`` names exists: the builders check the names through their registries
    (activations, the optimizer and its settings, the loss); the config holds them as data."""
    m = cfg.model
    check_activation(m.g_activation, "model.g_activation", m.leaky_slope)
    check_activation(m.d_activation, "model.d_activation", m.leaky_slope)
    check_config(cfg.optim)
    LOSSES.get(cfg.train.loss, field="train.loss")


def check_training(cfg: ExperimentConfig, *, device: str | None = None, include_data: bool = True,
                   flags: dict[str, str] | None = None, what: str = "training") -> TrainingEstimate:
    """Raise ResourceError when training ``cfg`` cannot fit; return the estimate otherwise.

    Call it after ``validate(cfg)`` and before building models or loading data; it checks the
    names first (:func:`check_names`). ``include_data=False`` when the dataset is already
    loaded (sweeps share one).
    """
    check_names(cfg)
    flags = {**TRAIN_FLAGS, **(flags or {})}
    dev = _resolve(device or cfg.train.device)
    est = estimate_training(cfg, device=dev, include_data=include_data)
    if dev.startswith("cuda"):
        _check_parts(est, dev, what, flags, host=False)
        _check_parts(est, "cpu", what, flags, host=True)
    else:
        _check_parts(est, "cpu", what, flags, host=None)
    return est


def _check_parts(est: TrainingEstimate, device: str, what: str, flags: dict[str, str],
                 host: bool | None) -> None:
    """host None: everything on one memory; True: the host part; False: the device part."""
    budget = memory_budget(device)
    if budget is None:
        return
    model = est.params + est.grads + est.optimizer_state
    step = est.batch + est.activations + est.workspace
    parts = []
    if host is not True:
        parts += [("model", model, "parameters, gradients and optimizer state"),
                  ("activations", step, f"one step's activations at batch {est.batch_size}")]
    if host is not False:
        parts += [("data", est.dataset + est.data_working,
                   "the dataset" + (f" ({', '.join(est.notes)})" if est.notes else "")),
                  ("samples", est.samples, "the sample grid")]
    total = sum(p[1] for p in parts)
    if total <= budget.limit:
        return
    parts.sort(key=lambda p: p[1], reverse=True)
    shown = "; ".join(f"{desc} {format_bytes(n)}" for _, n, desc in parts if n)
    raise ResourceError(
        f"{what} would allocate {format_bytes(total)} on {where(device)} ({shown}), but "
        f"{budget.describe()}; lower {flags[parts[0][0]]}"
    )


def check_step(model: ModelConfig, optim: OptimConfig, batch_size: int, *, device: str = "cpu",
               flags: dict[str, str] | None = None, what: str = "one training step") -> TrainingEstimate:
    """Guard for commands that build G, D, optimizers and one batch without a dataset
    (``memory``, benchmarks): the device side of :func:`check_training`."""
    dev = _resolve(device)
    parts = estimate_model(model, optim, batch_size)
    est = TrainingEstimate(device=dev, samples=0, dataset=0, data_working=0,
                           batch_size=batch_size, **parts)
    _check_parts(est, dev if dev.startswith("cuda") else "cpu", what,
                 {**TRAIN_FLAGS, **(flags or {})}, host=False if dev.startswith("cuda") else None)
    return est


def check_models(model: ModelConfig, flag: str, what: str = "building G and D",
                 device: str = "cpu") -> int:
    """Guard for commands that only build the networks (``presets``): their parameters."""
    parts = estimate_model(model, OptimConfig(name="sgd"), 1)
    check_allocation(parts["params"], what, flag, device=device)
    return parts["params"]


# --------------------------------------------------------------------------- numbers
FINITE_CHECK_EVERY = 50
"""The training loop checks every parameter and buffer for NaN/inf at each checkpoint (so a
checkpoint is always finite) and every this many steps; losses are checked every step. One
check costs ~5% of a step of a tiny 16 px model on the CPU, so every 50 steps is ~0.1%."""


def first_nonfinite(named: Iterable[tuple[str, torch.Tensor]]) -> str | None:
    """The name of the first floating tensor holding NaN or inf, or None; one device sync."""
    items = [(n, t) for n, t in named if t.is_floating_point()]
    if not items:
        return None
    with torch.no_grad():
        ok = torch.stack([torch.isfinite(t).all() for _, t in items])
        if bool(ok.all()):
            return None
        return next(n for (n, _), good in zip(items, ok.tolist(), strict=True) if not good)


# --------------------------------------------------------------------------- inference commands
INCEPTION_BYTES_PER_IMAGE = 20 * 2**20
"""Peak host memory of one image through the FID Inception network (resized to 299 x 299),
measured on the CPU: +490 MiB for a batch of 32 at 64 px (15 MiB each), plus headroom."""
FEATURE_DIMS = 2048  # pool3 features, kept as float32 per image for KID / PRDC


def estimate_generation(model: ModelConfig, n: int, batch_size: int, *, keep: bool) -> dict[str, int]:
    """Bytes of generating ``n`` images from G in batches of ``batch_size``: G's parameters,
    one batch's activations (every layer's output, an upper bound for inference), and the
    images as uint8 when they are all kept (``keep``) or one batch of them when streamed."""

    g_params, g_buf, g_saved, _ = _net_shapes(plan_generator(model))
    b = max(1, min(batch_size, n))
    pixels = model.channels * model.image_size**2
    return {
        "params": sum(s.numel() * 4 for s in g_params) + g_buf,
        "activations": 4 * b * (model.latent_dim + sum(g_saved)),
        "images": (n if keep else b) * pixels,
    }


def check_generation(model: ModelConfig, n: int, batch_size: int, *, keep: bool,
                     device: str = "cpu", flags: str = "--n or --batch-size",
                     what: str = "generating images") -> int:
    """Raise ResourceError when generating ``n`` images (batch ``batch_size``) cannot fit."""
    parts = estimate_generation(model, n, batch_size, keep=keep)
    dev = _resolve(device)
    total = sum(parts.values())
    check_allocation(total, f"{what} ({n:,} at {model.image_size}x{model.image_size}, batch "
                     f"{min(batch_size, max(n, 1)):,})", flags, device=dev)
    return total


def check_feature_extraction(n_images: int, batch_size: int, *, device: str = "cpu",
                             flags: str = "--batch-size or --fid-samples",
                             what: str = "Inception features") -> int:
    """Raise ResourceError when extracting FID features of ``n_images`` images in batches of
    ``batch_size`` cannot fit: one batch through the network plus every image's features."""
    b = max(1, min(batch_size, n_images))
    total = b * INCEPTION_BYTES_PER_IMAGE + n_images * FEATURE_DIMS * 4
    check_allocation(total, f"{what} of {n_images:,} images in batches of {b:,}", flags,
                     device=_resolve(device))
    return total
