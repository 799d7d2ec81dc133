"""Memory estimates of one training step: torchinfo's (the paper's method) and the project's own.

The paper (Fig. 7, 8) multiplies a per-image torchinfo-style summary by the batch size. That
figure counts each layer's output twice ("forward/backward pass size": the output and its
gradient) plus the parameters once, and leaves out what a training step also holds:

* gradients of G and D (both stay allocated between steps: ``zero_grad(set_to_none=True)``
  frees them only right before the next backward of the same network);
* optimizer state (Adam: two moments; AdaS: two moments plus per-input learning rates and
  their moments; SGD: one momentum buffer, when momentum > 0);
* what autograd really saves for backward, which is not the layer outputs: a conv saves its
  input, batch norm its input, ELU its output, so a conv -> BN -> ELU block keeps three maps,
  and during the D update G's graph (for the G update) and D's graph for the real and the fake
  half are alive together;
* the gradient of the widest activation, which exists next to the saved tensors when backward
  reaches it (the "workspace" term here; oneDNN scratch is small next to it).

The project's estimate counts saved tensors exactly with ``torch.autograd.graph.
saved_tensors_hooks`` on a one-image forward of the real modules (same autocast and memory
format as the step) and scales them by the batch size, the paper's per-image x batch method
applied to the right quantity. Parameter, gradient and optimizer-state bytes are computed from
the parameter shapes.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import torch
import torchinfo
from torch import nn

from ..config import ModelConfig, OptimConfig
from ..optim.factory import state_bytes
from ..precision import onednn_bf16

# --------------------------------------------------------------------------- torchinfo


@dataclass(frozen=True)
class TorchinfoStats:
    """torchinfo's ModelStatistics for one network at batch 1 (bytes)."""

    params: int  # total_params (elements)
    param_bytes: int  # "Params size"
    input_bytes: int  # "Input size"
    fwd_bwd_bytes: int  # "Forward/backward pass size": 2 x the leaf layers' outputs


def torchinfo_stats(module: nn.Module, input_shape: tuple[int, ...]) -> TorchinfoStats:
    """torchinfo.summary of ``module`` for one input of ``input_shape`` (no batch dim), on CPU.

    Runs on a copy in training mode, so the caller's module and its batch-norm statistics
    are untouched.
    """
    model = copy.deepcopy(module).cpu().float().train()
    stats = torchinfo.summary(model, input_size=(1, *input_shape), verbose=0, device="cpu",
                              mode="train")
    return TorchinfoStats(
        params=int(stats.total_params),
        param_bytes=int(stats.total_param_bytes),
        input_bytes=int(stats.total_input),
        fwd_bwd_bytes=int(stats.total_output_bytes),
    )


def paper_estimate_bytes(g: TorchinfoStats, d: TorchinfoStats, batch_size: int) -> int:
    """The paper's method: (per-image fwd/bwd of G + of D) x batch + parameters of both."""
    return (g.fwd_bwd_bytes + d.fwd_bwd_bytes) * batch_size + g.param_bytes + d.param_bytes


# --------------------------------------------------------------------------- optimizer state

def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


# --------------------------------------------------------------------------- saved tensors


@dataclass(frozen=True)
class SavedForBackward:
    """Bytes autograd saves for backward, by graph, and the largest single tensor in D's graphs,
    for some number of images."""

    g: int  # G(z)
    d_real: int  # D(real), during the D update
    d_fake: int  # D(G(z)), the D update's fake half; the G update builds the same graph
    largest_d: int  # the largest tensor saved in D's graphs

    @property
    def d_phase(self) -> int:
        """Saved during the D update: G's graph (kept for the G update) and both D graphs."""
        return self.g + self.d_real + self.d_fake


def saved_for_backward(
    G: nn.Module, D: nn.Module, model: ModelConfig, *, amp_dtype: torch.dtype | None = None,
    channels_last: bool = False, images: int = 1,
) -> SavedForBackward:
    """Count the storages autograd saves during G(z), D(real), D(fake) for ``images`` images.

    Parameters and inputs are excluded (they are resident anyway); storages shared by several
    saves (ELU's output is the next conv's input, G's output is D's fake input) count once.
    Runs the real modules on their device in train mode, restoring BN statistics after.
    """
    device = next(G.parameters()).device
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(images, model.latent_dim, generator=gen).to(device)
    real = torch.rand(images, model.channels, model.image_size, model.image_size, generator=gen)
    real = real.to(device).contiguous(memory_format=memory_format)
    skip = {t.untyped_storage().data_ptr() for t in (*G.parameters(), *D.parameters(), z, real)}
    seen: set[int] = set()
    current: list[int] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in skip and s.data_ptr() not in seen:
            seen.add(s.data_ptr())
            current.append(s.nbytes())
        return t

    def take() -> list[int]:
        out = list(current)
        current.clear()
        return out

    buffers = {name: b.clone() for m in (G, D) for name, b in _named_buffers(m)}
    autocast = (torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None
                else contextlib.nullcontext())
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), autocast:
            # Keep every output (hence every graph) alive until counted: a freed saved tensor's
            # address could be reused by the next graph and wrongly deduplicated.
            fake = G(z)
            g = take()
            out_real = D(real)
            d_real = take()
            out_fake = D(fake.detach())
            d_fake = take()
            del fake, out_real, out_fake
    finally:
        with torch.no_grad():
            for m in (G, D):
                for name, b in _named_buffers(m):
                    b.copy_(buffers[name])
    return SavedForBackward(g=sum(g), d_real=sum(d_real), d_fake=sum(d_fake),
                            largest_d=max(d_real + d_fake, default=0))


def saved_at_batch(
    G: nn.Module, D: nn.Module, model: ModelConfig, batch_size: int, *,
    amp_dtype: torch.dtype | None = None, channels_last: bool = False,
) -> SavedForBackward:
    """Saved bytes at ``batch_size``, extrapolated from counts at 1 and 2 images.

    Activations grow by one image's worth per image; what does not (under autocast, the
    low-precision weight copies; batch-norm statistics) is the fixed part. Two small forwards
    separate the two, so the estimate of a 320-wide model at batch 256 costs milliseconds.
    """
    one = saved_for_backward(G, D, model, amp_dtype=amp_dtype, channels_last=channels_last,
                             images=1)
    two = saved_for_backward(G, D, model, amp_dtype=amp_dtype, channels_last=channels_last,
                             images=2)

    def at(a: int, b: int) -> int:
        return max(a + (b - a) * (batch_size - 1), 0)

    return SavedForBackward(g=at(one.g, two.g), d_real=at(one.d_real, two.d_real),
                            d_fake=at(one.d_fake, two.d_fake),
                            largest_d=at(one.largest_d, two.largest_d))


def _named_buffers(m: nn.Module) -> Iterable[tuple[str, torch.Tensor]]:
    return ((f"{id(m)}.{n}", b) for n, b in m.named_buffers())


# --------------------------------------------------------------------------- the estimate


@dataclass(frozen=True)
class StepEstimate:
    """The project's estimate of one training step's peak memory, by component (bytes)."""

    params: int  # parameters and buffers of G and D
    grads: int  # gradients of G and D (both alive between steps)
    optimizer_state: int
    batch: int  # the real batch and z
    activations: int  # saved for backward during the D update (G, D real, D fake)
    workspace: int  # gradient of the widest D activation
    # What the figure leaves out, when it is a lower bound (empty: the whole step is counted)
    uncounted: str = ""

    @property
    def resident(self) -> int:
        return self.params + self.grads + self.optimizer_state + self.batch

    @property
    def total(self) -> int:
        return self.resident + self.activations + self.workspace

    def to_dict(self) -> dict[str, int | str]:
        return {**asdict(self), "resident": self.resident, "total": self.total}


EMULATED_BF16_UNCOUNTED = (
    "bf16 autocast on a CPU with AVX-512 but without avx512_bf16/AMX: oneDNN emulates bf16 "
    "through fp32 buffers that are not counted (measured up to 1.6x the estimate at 32x32; "
    "amp=off or a CPU with native bf16 is counted in full)")


def uncounted_by(G: nn.Module, amp_dtype: torch.dtype | None) -> str:
    """What an estimate of a step on ``G``'s device at ``amp_dtype`` leaves out ("" if nothing)."""
    device = next(G.parameters()).device
    if amp_dtype == torch.bfloat16 and device.type == "cpu" and onednn_bf16() == "emulated":
        return EMULATED_BF16_UNCOUNTED
    return ""


def estimate_step(
    G: nn.Module, D: nn.Module, model: ModelConfig, optim: OptimConfig, batch_size: int, *,
    amp_dtype: torch.dtype | None = None, channels_last: bool = False,
    saved: SavedForBackward | None = None,
) -> StepEstimate:
    """Estimate the peak of one GANStep on (G, D) at ``batch_size``.

    ``saved`` (from :func:`saved_at_batch` at this batch size) may be passed when already
    counted; it does not depend on the optimizer.
    """
    if saved is None:
        saved = saved_at_batch(G, D, model, batch_size, amp_dtype=amp_dtype,
                               channels_last=channels_last)
    trainable = [p for m in (G, D) for p in m.parameters() if p.requires_grad]
    # G and D have their own optimizer; the state is per parameter, so one sum covers both.
    param_bytes = sum(_nbytes(t) for m in (G, D) for t in (*m.parameters(), *m.buffers()))
    batch = batch_size * (model.channels * model.image_size**2 + model.latent_dim) * 4
    return StepEstimate(
        params=param_bytes,
        grads=sum(_nbytes(p) for p in trainable),
        optimizer_state=state_bytes(trainable, optim),
        batch=batch,
        activations=saved.d_phase,
        workspace=saved.largest_d,
        uncounted=uncounted_by(G, amp_dtype),
    )
