"""AdaS: an optimizer that learns its own per-input learning rates, three levels deep.

Reference: Y. Eliyahu, AdasOptimizer, github.com/YanaiEliyahu/AdasOptimizer, file
``adasopt_pytorch.py`` (MIT). This is the same update, re-derived from that file; the math lives in
:func:`adas_update`, written with ``torch._foreach_*`` ops so a step over many tensors costs a
handful of kernels per op instead of a Python loop of small ones.

The three levels, for a parameter ``p`` of shape ``(n0, *rest)`` with gradient ``g``:

1. Parameters. ``p`` moves by ``lr * N(g)``, where ``lr`` has shape ``rest`` (one learning rate
   per *input*, shared along dim 0) and ``N`` is an RMS normaliser:
   ``N(x) = x * sqrt(1 - beta1**t) / (sqrt(v) + eps)`` with ``v <- beta1 v + (1 - beta1) x^2``.
   (For 1-D and 0-D parameters ``rest`` is empty: one learning rate for the whole tensor.)
2. Learning rates. The hypergradient of the loss w.r.t. ``lr`` is estimated as
   ``y = sum_0(M1 * g)``, with ``M1`` a running mean (decay ``beta3``) of past ``N(g)``: the
   direction the parameters moved recently, correlated with the current gradient. ``lr`` is
   updated multiplicatively, ``lr <- lr + mlr * lr * N(y)``, by a per-tensor scalar ``mlr``
   (initial value ``lr2``): the learning rate of the learning rates.
3. Learning rate of the learning rates. Same construction one level up:
   ``z = sum(M2 * y)`` with ``M2`` a running mean (decay ``beta2``) of past ``N(y)``, and
   ``mlr <- mlr + lr3 * mlr * N(z)`` with a fixed ``lr3``.

All three normalisers use ``beta1`` for their second moments and the same bias factor
``sqrt(1 - beta1**t)``, as in the reference (its ``_derivatives_normalizer`` always reads
``beta_1``; ``beta2``/``beta3`` only set the decay of the moments ``M2``/``M1``, and the level-1
moments decay with ``beta3``, the level-2 ones with ``beta2``, exactly as the reference passes
them). The level-3 moment of the reference is written but never read, so it is not kept.

Differences from the reference, none of which changes the update:
- hyperparameters are read from each param group (the reference reads the constructor's only);
- state lives in ``self.state`` under descriptive names, so ``state_dict`` round trips;
- the level-2 scalar ``mlr`` is kept in the parameter's dtype (the reference always uses
  float32; identical for float32 parameters);
- ``weight_decay`` (default 0, not in the reference) adds ``wd * p`` to the gradient;
- the ops are fused (``addcmul``/``addcdiv``), so float32 results agree with the reference to a
  few ulp rather than bitwise (see tests/optim/test_optim.py); float64 agrees to ~1e-15.
- group ``lr`` and ``lr2`` are *initial* values of learned state, read when a parameter's state
  is created; changing them later (e.g. with a scheduler) has no effect, as in the reference.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from .factory import ADAS_DEFAULTS as DEFAULTS  # the reference's defaults, with the spec


def bias_factor(beta1: float, step: int, dtype: torch.dtype) -> float:
    """``sqrt(1 - beta1**step)`` computed in ``dtype``, as the reference does with its step
    counter tensor (so float32 parameters get the float32-rounded factor)."""
    steps = torch.tensor(float(step), dtype=dtype)
    return float((1.0 - beta1**steps).sqrt())


def _level1(
    params: list[Tensor],
    grads: list[Tensor],
    lrs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    moments: list[Tensor],
    factors: list[float],
    *,
    beta1: float,
    beta3: float,
    eps: float,
) -> list[Tensor]:
    """Level 1 over (row blocks of) parameters; returns each block's ``sum_0(M1 * g)``."""
    torch._foreach_mul_(exp_avg_sqs, beta1)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1.0 - beta1)
    denom = torch._foreach_sqrt(exp_avg_sqs)
    torch._foreach_add_(denom, eps)
    # Hypergradient of lr, from the moments *before* this step's update: y = sum_0(M1 * g).
    ys = [x.sum(0) for x in torch._foreach_mul(moments, grads)]  # each (rest,)
    normed = torch._foreach_div(grads, denom)  # N(g) = f g / (sqrt(v) + eps)
    del denom
    torch._foreach_mul_(normed, factors)
    for p, lr, n in zip(params, lrs, normed, strict=True):
        p.addcmul_(lr, n, value=-1.0)  # p <- p - lr * N(g); lr (rest,) broadcasts along dim 0
    # M1 <- beta3 M1 + (1 - beta3) N(g)
    torch._foreach_lerp_(moments, normed, 1.0 - beta3)
    return ys


def _blocks(n_rows: int, row_elems: int, block_elems: int | None) -> list[slice]:
    """Row ranges of about ``block_elems`` elements (all rows when ``block_elems`` is None)."""
    if block_elems is None or n_rows * row_elems <= block_elems:
        return [slice(0, n_rows)]
    rows = max(1, block_elems // max(1, row_elems))
    return [slice(i, min(i + rows, n_rows)) for i in range(0, n_rows, rows)]


def adas_update(
    params: list[Tensor],
    grads: list[Tensor],
    lrs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    moments: list[Tensor],
    lr_exp_avg_sqs: list[Tensor],
    lr_moments: list[Tensor],
    master_lrs: list[Tensor],
    master_exp_avg_sqs: list[Tensor],
    factors: list[float],
    *,
    lr3: float,
    beta1: float,
    beta2: float,
    beta3: float,
    eps: float,
    weight_decay: float,
    block_elems: int | None = None,
) -> None:
    """One AdaS step over tensors of one device and dtype, in place.

    Shapes per parameter ``p`` of shape ``(n0, *rest)``: ``exp_avg_sqs``/``moments`` like ``p``;
    ``lrs``/``lr_exp_avg_sqs``/``lr_moments`` of shape ``rest``; ``master_*`` 0-d.
    ``factors[i]`` is the bias factor ``sqrt(1 - beta1**t_i)`` for the parameter's step ``t_i``
    (already incremented).

    ``block_elems`` (CPU): level 1, the only part over full-size tensors, runs block by block
    of about that many elements, all its ops on one block before the next, so that the
    intermediate tensors stay in cache; this halves a step on CPU, where the ~10 passes over
    memory, not the arithmetic, are the cost. ``None`` (GPU): whole tensors, one foreach op each.
    """
    if weight_decay != 0.0:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)

    # ---- level 1: parameters --------------------------------------------------------------
    # Row blocks (i, rows of parameter i), packed into batches of about block_elems elements.
    batches: list[list[tuple[int, slice]]] = [[]]
    size = 0
    for i, p in enumerate(params):
        n_rows = p.shape[0] if p.dim() > 0 else 1
        row_elems = p[0].numel() if p.dim() > 0 else 1
        for s in _blocks(n_rows, row_elems, block_elems):
            if block_elems is not None and size >= block_elems:
                batches.append([])
                size = 0
            batches[-1].append((i, s))
            size += (s.stop - s.start) * row_elems

    def cut(xs: list[Tensor], i: int, s: slice) -> Tensor:
        x = xs[i]
        return x if x.dim() == 0 or s == slice(0, x.shape[0]) else x[s]

    ys: list[Tensor] = [None] * len(params)  # type: ignore[list-item]
    for batch in batches:
        part = _level1(
            [cut(params, i, s) for i, s in batch],
            [cut(grads, i, s) for i, s in batch],
            [lrs[i] for i, _ in batch],
            [cut(exp_avg_sqs, i, s) for i, s in batch],
            [cut(moments, i, s) for i, s in batch],
            [factors[i] for i, _ in batch],
            beta1=beta1,
            beta3=beta3,
            eps=eps,
        )
        for (i, _), y in zip(batch, part, strict=True):
            ys[i] = y if ys[i] is None else ys[i].add_(y)  # sum over row blocks

    # ---- level 2: per-input learning rates ------------------------------------------------
    torch._foreach_mul_(lr_exp_avg_sqs, beta1)
    torch._foreach_addcmul_(lr_exp_avg_sqs, ys, ys, value=1.0 - beta1)
    denom2 = torch._foreach_sqrt(lr_exp_avg_sqs)
    torch._foreach_add_(denom2, eps)
    zs = [(m * y).sum() for m, y in zip(lr_moments, ys, strict=True)]  # z = sum(M2 y), 0-d
    # lr <- lr + mlr * lr * N(y)
    scaled2 = [lr * m for lr, m in zip(lrs, master_lrs, strict=True)]
    torch._foreach_mul_(scaled2, ys)
    torch._foreach_addcdiv_(lrs, scaled2, denom2, factors)
    # M2 <- beta2 M2 + (1 - beta2) N(y)
    torch._foreach_mul_(lr_moments, beta2)
    torch._foreach_addcdiv_(lr_moments, ys, denom2, [(1.0 - beta2) * f for f in factors])

    # ---- level 3: the learning rate of the learning rates ---------------------------------
    torch._foreach_mul_(master_exp_avg_sqs, beta1)
    torch._foreach_addcmul_(master_exp_avg_sqs, zs, zs, value=1.0 - beta1)
    denom3 = torch._foreach_sqrt(master_exp_avg_sqs)
    torch._foreach_add_(denom3, eps)
    # mlr <- mlr + lr3 * mlr * N(z)
    scaled3 = torch._foreach_mul(master_lrs, zs)
    torch._foreach_addcdiv_(master_lrs, scaled3, denom3, [lr3 * f for f in factors])


class Adas(Optimizer):
    """AdaS (Eliyahu). ``lr``: initial per-input learning rate; ``lr2``: initial learning rate
    of those (per tensor); ``lr3``: fixed third-level rate; ``betas``: (beta_1, beta_2, beta_3)
    of the reference; ``eps``: the reference's epsilon."""

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = DEFAULTS["lr"],
        lr2: float = DEFAULTS["lr2"],
        lr3: float = DEFAULTS["lr3"],
        betas: tuple[float, float, float] = DEFAULTS["betas"],
        eps: float = DEFAULTS["eps"],
        weight_decay: float = DEFAULTS["weight_decay"],
    ) -> None:
        check_hyperparameters(lr=lr, lr2=lr2, lr3=lr3, betas=betas, eps=eps, wd=weight_decay)
        defaults = dict(
            lr=lr, lr2=lr2, lr3=lr3, betas=tuple(betas), eps=eps, weight_decay=weight_decay
        )
        super().__init__(params, defaults)
        for group in self.param_groups:  # groups may override the defaults: check them too
            check_hyperparameters(
                lr=group["lr"],
                lr2=group["lr2"],
                lr3=group["lr3"],
                betas=group["betas"],
                eps=group["eps"],
                wd=group["weight_decay"],
            )

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = self.state[p]
        if not state:
            rest = p.shape[1:]
            state["step"] = torch.tensor(0.0)
            state["lr"] = torch.full(rest, group["lr"], dtype=p.dtype, device=p.device)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["moment"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["lr_exp_avg_sq"] = torch.zeros(rest, dtype=p.dtype, device=p.device)
            state["lr_moment"] = torch.zeros(rest, dtype=p.dtype, device=p.device)
            state["master_lr"] = torch.full((), group["lr2"], dtype=p.dtype, device=p.device)
            state["master_exp_avg_sq"] = torch.zeros((), dtype=p.dtype, device=p.device)
        return state

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            beta1, beta2, beta3 = group["betas"]
            # Tensors of one device and dtype go through the foreach ops together.
            buckets: dict[tuple[torch.device, torch.dtype], dict[str, list[Any]]] = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Adas does not support sparse gradients")
                if torch.is_complex(p):
                    raise RuntimeError("Adas does not support complex parameters")
                state = self._init_state(p, group)
                state["step"] += 1
                b = buckets.setdefault((p.device, p.dtype), {k: [] for k in _LISTS})
                b["params"].append(p)
                b["grads"].append(p.grad)
                for key in _STATE_KEYS:
                    b[key].append(state[key])
                b["steps"].append(int(state["step"].item()))
            for (device, dtype), b in buckets.items():
                cache: dict[int, float] = {}
                factors = [cache.setdefault(t, bias_factor(beta1, t, dtype)) for t in b["steps"]]
                adas_update(
                    b["params"],
                    b["grads"],
                    *(b[key] for key in _STATE_KEYS),
                    factors,
                    lr3=group["lr3"],
                    beta1=beta1,
                    beta2=beta2,
                    beta3=beta3,
                    eps=group["eps"],
                    weight_decay=group["weight_decay"],
                    block_elems=CPU_BLOCK_ELEMS if device.type == "cpu" else None,
                )
        return loss


CPU_BLOCK_ELEMS = 131072
"""Level-1 block size on CPU: 512 KiB per float32 tensor, so a block's few live tensors stay in
L2/L3 (measured on Table II's generator; see benchmarks/test_bench_optim.py)."""

_STATE_KEYS = (
    "lr",
    "exp_avg_sq",
    "moment",
    "lr_exp_avg_sq",
    "lr_moment",
    "master_lr",
    "master_exp_avg_sq",
)
"""State tensors in the order :func:`adas_update` takes them."""
_LISTS = ("params", "grads", "steps", *_STATE_KEYS)


def check_hyperparameters(
    *, lr: float, lr2: float, lr3: float, betas: tuple[float, ...], eps: float, wd: float
) -> None:
    """Raise ValueError for values the update cannot work with."""
    # lr = 0 would stay 0 for ever: level 2 scales lr multiplicatively.
    if not (math.isfinite(lr) and lr > 0.0):
        raise ValueError(f"Adas: invalid lr {lr}: expected a finite value > 0")
    for name, value in (("lr2", lr2), ("lr3", lr3), ("eps", eps), ("weight_decay", wd)):
        if not (math.isfinite(value) and value >= 0.0):
            raise ValueError(f"Adas: invalid {name} {value}: expected a finite value >= 0")
    if len(betas) != 3:
        raise ValueError(f"Adas: betas must be (beta_1, beta_2, beta_3), got {betas!r}")
    for i, beta in enumerate(betas, start=1):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Adas: invalid beta_{i} {beta}: expected 0 <= beta_{i} < 1")
