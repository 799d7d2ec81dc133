"""ELU computed from ``exp`` instead of ``expm1``.

torch's CPU ELU kernel evaluates ``expm1``, which some builds leave unvectorised: with torch
2.14 on an AVX-512 CPU it costs ~25 ns per element, ten times ``exp``, and was a third of the
quick scale's training step (docs/performance.md). ``relu(x) + alpha * (exp(min(x, 0)) - 1)``
uses only vectorised kernels; it differs from ``expm1`` by at most one float32 ulp of 1
(~6e-8) for x near 0, well inside the run-to-run spread of a GAN, and is exact for x > 0.
The backward pass is torch's own ``elu_backward`` from the saved input, as torch's ELU
saves it, so the gradient and the memory cost what they did.
"""

from __future__ import annotations

import torch
from torch import nn


class _ELUFromExp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:
        # bf16/fp16 (autocast): exp(x) - 1 near 0 would lose x's own precision to the
        # rounding of exp(x) near 1, so the arithmetic runs in float32 and rounds once
        xf = x.float() if x.dtype in (torch.bfloat16, torch.float16) else x
        neg = torch.clamp(xf, max=0.0).exp_().sub_(1.0)
        if alpha != 1.0:
            neg.mul_(alpha)
        if alpha <= 1.0:
            # alpha (exp(x) - 1) >= x for x <= 0 and is 0 for x > 0: the max is ELU, computed
            # into the one buffer (no second activation-sized temporary at the peak)
            y = torch.maximum(neg, xf, out=neg).to(x.dtype)
        else:
            y = neg.add_(torch.relu(xf)).to(x.dtype)
        ctx.alpha = alpha
        # the input, as torch's ELU saves it: the same memory footprint, which the memory
        # estimate (xraygan.memory) and its measured baselines describe
        ctx.save_for_backward(x)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        return torch.ops.aten.elu_backward(grad, ctx.alpha, 1.0, 1.0, False, x), None


def elu(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """``torch.nn.functional.elu(x, alpha)`` by way of ``exp`` (see the module docstring)."""
    return _ELUFromExp.apply(x, alpha)


class ELU(nn.ELU):
    """``nn.ELU`` (same name, state and repr) whose forward is :func:`elu`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inplace:
            return super().forward(x)
        return elu(x, self.alpha)
