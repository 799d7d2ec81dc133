"""One optimizer step on the Table II generator's parameters (64x64, 3.57 M parameters).

Run: ``.venv/bin/pytest benchmarks/test_bench_optim.py --benchmark-only`` (pytest-benchmark;
timings and the ratios of the interleaved comparison go into ``extra_info``), or
``.venv/bin/python benchmarks/test_bench_optim.py`` for a plain table without assertions.

Three contenders with the same random gradients: gan_core's AdaS (foreach, fused), a plain
per-parameter transcription of the reference equations (the shape of Eliyahu's
``adasopt_pytorch.py``: one loop over parameters, out-of-place temporaries), and
``torch.optim.Adam(foreach=True)``. Target: AdaS <= 2x Adam and >= 2x faster than the
reference.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from xraygan.optim import Adas

# Table II generator, 64x64, one channel: ConvTranspose2d(100, 512, 4) ... (64, 1, 4), no bias.
GENERATOR_SHAPES = [
    (100, 512, 4, 4),
    (512, 256, 4, 4),
    (256, 128, 4, 4),
    (128, 64, 4, 4),
    (64, 1, 4, 4),
]


class ReferenceEquationAdas:
    """The reference's equations, one parameter at a time (defaults of the reference)."""

    def __init__(
        self,
        params: list[Tensor],
        lr=0.001,
        lr2=0.005,
        lr3=0.0005,
        b1=0.999,
        b2=0.999,
        b3=0.9999,
        eps=1e-8,
    ) -> None:
        self.params, self.lr, self.lr2, self.lr3 = params, lr, lr2, lr3
        self.b1, self.b2, self.b3, self.eps = b1, b2, b3, eps
        self.state: dict[int, dict[str, Tensor]] = {}

    def _norm(self, st: dict, level: str, d: Tensor, beta: float):
        if level not in st:
            st[level] = torch.zeros((), dtype=d.dtype)
            st[level + "m"] = torch.zeros_like(d)
            st[level + "mo"] = torch.zeros_like(d)
        st[level].add_(1)
        factor = (1.0 - (self.b1 ** st[level])).sqrt()
        m, moments = st[level + "m"], st[level + "mo"]
        m.mul_(self.b1).add_((1 - self.b1) * d * d)
        np_t = d * factor / (m.sqrt() + self.eps)
        return moments, np_t, lambda: moments.mul_(beta).add_((1 - beta) * np_t)

    @torch.no_grad()
    def step(self) -> None:
        for p in self.params:
            st = self.state.setdefault(id(p), {})
            if "lr" not in st:
                st["lr"] = torch.full(p.shape[1:], self.lr, dtype=p.dtype, device=p.device)
                st["mlr"] = torch.full((), self.lr2, dtype=torch.float32, device=p.device)
            lr, grad = st["lr"], p.grad
            moment, deriv, f = self._norm(st, "1", grad, self.b3)
            p.add_(-torch.unsqueeze(lr, 0) * deriv)
            lr_deriv = torch.sum(moment * grad, 0)
            f()
            m2, d2, f = self._norm(st, "2", lr_deriv, self.b2)
            lr.add_(st["mlr"] * lr * d2)
            z = torch.sum(m2 * lr_deriv)
            f()
            _, d3, f = self._norm(st, "3", z, 0.0)
            st["mlr"].add_(self.lr3 * st["mlr"] * d3)
            f()


def make_params(device: str = "cpu", seed: int = 0) -> list[Tensor]:
    gen = torch.Generator().manual_seed(seed)
    params = []
    for shape in GENERATOR_SHAPES:
        p = (torch.randn(shape, generator=gen) * 0.02).to(device).requires_grad_()
        p.grad = torch.randn(shape, generator=gen).to(device)
        params.append(p)
    return params


def contenders(device: str = "cpu") -> dict[str, Callable[[], None]]:
    """name -> one optimizer step, each over its own copy of the parameters."""
    return {
        "adas": Adas(make_params(device)).step,
        "adas_reference": ReferenceEquationAdas(make_params(device)).step,
        "adam_foreach": torch.optim.Adam(make_params(device), lr=2e-4, foreach=True).step,
    }


def interleaved_times(
    steps: dict[str, Callable[[], None]], rounds: int = 30, warmup: int = 3
) -> dict[str, float]:
    """Best-of-``rounds`` seconds per step, the contenders taking turns each round so that
    load from other processes hits them alike; the minimum is the least disturbed run."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    best = {name: float("inf") for name in steps}
    for r in range(warmup + rounds):
        for name, step in steps.items():
            sync()
            t0 = time.perf_counter()
            step()
            sync()
            if r >= warmup:
                best[name] = min(best[name], time.perf_counter() - t0)
    return best


def ratios(times: dict[str, float]) -> dict[str, float]:
    return {
        "adas_over_adam": times["adas"] / times["adam_foreach"],
        "reference_over_adas": times["adas_reference"] / times["adas"],
    }


@pytest.fixture(scope="module")
def comparison() -> dict[str, float]:
    times = interleaved_times(contenders())
    return {**{f"{k}_ms": v * 1e3 for k, v in times.items()}, **ratios(times)}


@pytest.mark.parametrize("name", ["adas", "adas_reference", "adam_foreach"])
def test_optimizer_step(benchmark, comparison, name):
    step = contenders()[name]
    benchmark.extra_info.update(comparison)
    benchmark.extra_info["parameters"] = sum(torch.Size(s).numel() for s in GENERATOR_SHAPES)
    benchmark.pedantic(step, rounds=30, warmup_rounds=3)
    if name == "adas":  # the targets, on the interleaved (fair) measurement
        assert comparison["adas_over_adam"] <= 2.0, comparison
        assert comparison["reference_over_adas"] >= 2.0, comparison


if __name__ == "__main__":
    times = interleaved_times(contenders())
    print(
        f"one step, {sum(torch.Size(s).numel() for s in GENERATOR_SHAPES):,} parameters, "
        f"{torch.get_num_threads()} threads"
    )
    for name, seconds in times.items():
        print(f"  {name:15s} {seconds * 1e3:7.2f} ms")
    for name, value in ratios(times).items():
        print(f"  {name:20s} {value:5.2f}x")
