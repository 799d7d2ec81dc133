"""Optimizers: every registered one learns and round-trips its state; AdaS follows the reference
equations (Eliyahu, adasopt_pytorch.py); TTUR resolves learning rates as documented."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import Tensor, nn

from xraygan.config import TTUR_D_FACTOR, TTUR_G_FACTOR, OptimConfig
from xraygan.errors import ConfigError
from xraygan.optim import OPTIMIZERS, Adas, build_optimizer, build_optimizers, resolved_lrs
from xraygan.optim import adas as adas_module

NAMES = OPTIMIZERS.names()


# --------------------------------------------------------------------------------------------
# A plain transcription of the reference (one parameter at a time, out-of-place temporaries,
# same statement and operand order as adasopt_pytorch.py). One deliberate difference, shared
# with gan_core: the level-2 scalar (the reference's float32 master_lr) has the param's dtype.
# --------------------------------------------------------------------------------------------
class ReferenceAdas:
    def __init__(self, groups: list[dict]) -> None:
        self.groups = groups  # dicts: params, lr, lr2, lr3, betas (b1, b2, b3), eps
        self.state: dict[int, dict[str, Tensor]] = {}

    @staticmethod
    def _normalizer(st: dict, level: str, d: Tensor, beta: float, b1: float, eps: float):
        if level + "steps" not in st:  # created zero-filled on first use, as in the reference
            st[level + "steps"] = torch.zeros((), dtype=d.dtype)
            st[level + "m"] = torch.zeros(d.shape, dtype=d.dtype)
            st[level + "moments"] = torch.zeros(d.shape, dtype=d.dtype)
        steps, m, moments = st[level + "steps"], st[level + "m"], st[level + "moments"]
        steps.add_(1)
        factor = (1.0 - (b1**steps)).sqrt()
        m.mul_(b1).add_((1 - b1) * d * d)
        np_t = d * factor / (m.sqrt() + eps)
        return moments, np_t, lambda: moments.mul_(beta).add_((1 - beta) * np_t)

    @torch.no_grad()
    def step(self) -> None:
        for group in self.groups:
            b1, b2, b3 = group["betas"]
            eps, lr3 = group["eps"], group["lr3"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad + group.get("weight_decay", 0.0) * p
                st = self.state.setdefault(id(p), {})
                if "lr" not in st:
                    st["lr"] = torch.full(p.shape[1:], group["lr"], dtype=p.dtype)
                    st["master_lr"] = torch.full((), group["lr2"], dtype=p.dtype)
                lr = st["lr"]
                moment, deriv, f = self._normalizer(st, "1", grad, b3, b1, eps)
                p.add_(-torch.unsqueeze(lr, 0) * deriv)
                lr_deriv = torch.sum(moment * grad, 0)
                f()
                master_lr = st["master_lr"]
                m2, d2, f = self._normalizer(st, "2", lr_deriv, b2, b1, eps)
                lr.add_(master_lr * lr * d2)
                master_lr_deriv2 = torch.sum(m2 * lr_deriv)
                f()
                _, d3, f = self._normalizer(st, "3", master_lr_deriv2, 0.0, b1, eps)
                master_lr.add_(lr3 * master_lr * d3)
                f()


REF_DEFAULTS = dict(lr=0.001, lr2=0.005, lr3=0.0005, betas=(0.999, 0.999, 0.9999), eps=1e-8)
TABLE2_G_SHAPES = [
    (100, 512, 4, 4),
    (512, 256, 4, 4),
    (256, 128, 4, 4),
    (128, 64, 4, 4),
    (64, 1, 4, 4),
]


def _run_pair(shapes, dtype, steps, ours_groups, ref_groups, seed=0):
    """Same start, same gradients: (our params, reference params, our optimizer, reference)."""
    gen = torch.Generator().manual_seed(seed)
    init = [torch.randn(s, generator=gen, dtype=dtype) * 0.1 for s in shapes]
    ours = [x.clone() for x in init]
    ref = [x.clone() for x in init]
    opt = Adas([dict(g, params=[ours[i] for i in idx]) for idx, g in ours_groups])
    oracle = ReferenceAdas([dict(g, params=[ref[i] for i in idx]) for idx, g in ref_groups])
    for _ in range(steps):
        for a, b in zip(ours, ref, strict=True):
            g = torch.randn(a.shape, generator=gen, dtype=dtype)
            a.grad, b.grad = g.clone(), g.clone()
        opt.step()
        oracle.step()
    return ours, ref, opt, oracle


@pytest.mark.parametrize("block_elems", [None, 7, adas_module.CPU_BLOCK_ELEMS])
def test_adas_matches_reference_equations_float64_with_param_groups(monkeypatch, block_elems):
    # None: whole tensors (the GPU path); 7: level 1 split into row blocks and small tensors
    # packed together (the CPU path, which the default size only exercises on big tensors).
    monkeypatch.setattr(adas_module, "CPU_BLOCK_ELEMS", block_elems)
    shapes = [(6, 5), (3, 4, 2, 2), (7,), (2, 9), (11, 3)]
    custom = dict(
        lr=0.003, lr2=0.02, lr3=0.01, betas=(0.9, 0.95, 0.99), eps=1e-6, weight_decay=0.01
    )
    groups = [([0, 2, 4], custom), ([1, 3], {})]  # group 2 takes the constructor defaults
    ref_groups = [([0, 2, 4], custom), ([1, 3], REF_DEFAULTS)]
    ours, ref, opt, oracle = _run_pair(shapes, torch.float64, 8, groups, ref_groups)
    for a, b in zip(ours, ref, strict=True):
        assert (a - b).abs().max().item() <= 1e-12
        assert not torch.equal(a, a.new_zeros(a.shape))
        st, rst = opt.state[a], oracle.state[id(b)]
        assert st["lr"].shape == a.shape[1:]  # per-input rates; a 0-d one for the 1-D param
        torch.testing.assert_close(st["lr"], rst["lr"], rtol=1e-12, atol=0)
        torch.testing.assert_close(st["master_lr"], rst["master_lr"], rtol=1e-12, atol=0)
    # the learned rates moved away from their initial values, per group
    assert not torch.allclose(
        opt.state[ours[0]]["lr"], torch.full((5,), 0.003, dtype=torch.float64)
    )
    assert opt.state[ours[1]]["master_lr"].item() != 0.005


def test_adas_float32_table2_shapes_agree_with_reference_to_a_few_ulp():
    """Fused ops (addcmul/addcdiv/lerp, blocked sums) round differently from the reference's
    separate ops: measured max |diff| after 3-4 steps is ~1e-9 on params of ~0.1 (under 1 ulp of
    0.1 = 7.5e-9), i.e. float32 agreement, not bitwise."""
    ours, ref, opt, oracle = _run_pair(
        TABLE2_G_SHAPES, torch.float32, 3, [(range(5), {})], [(range(5), REF_DEFAULTS)]
    )
    for a, b in zip(ours, ref, strict=True):
        ulp = torch.finfo(torch.float32).eps * b.abs().max().item()
        assert (a - b).abs().max().item() <= 4 * ulp
        torch.testing.assert_close(opt.state[a]["lr"], oracle.state[id(b)]["lr"], rtol=1e-5, atol=0)


def test_adas_skips_params_without_grad_and_handles_0d():
    w, b, s = torch.ones(3, 2), torch.ones(2), torch.tensor(1.0)
    opt = Adas([w, b, s])
    w.grad, s.grad = torch.ones(3, 2), torch.tensor(2.0)
    opt.step()
    assert b not in opt.state and torch.equal(b, torch.ones(2))
    # first step: N(g) = sqrt(1-b1) g / (sqrt((1-b1) g^2) + eps) ~ sign(g): moves by lr. In
    # float32 near 1 that is exact up to the two roundings of the update (the step, then the
    # subtraction), which vectorized kernels of different widths may place differently: 2 ulp
    two_ulp = 2 * torch.finfo(torch.float32).eps
    torch.testing.assert_close(w, torch.full((3, 2), 1 - 0.001), rtol=0, atol=two_ulp)
    torch.testing.assert_close(s, torch.tensor(1 - 0.001), rtol=0, atol=two_ulp)
    assert opt.state[s]["lr"].shape == ()


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(lr=0.0), "lr"),
        (dict(lr=float("nan")), "lr"),
        (dict(lr2=-1.0), "lr2"),
        (dict(lr3=-1e-3), "lr3"),
        (dict(eps=-1.0), "eps"),
        (dict(weight_decay=-1.0), "weight_decay"),
        (dict(betas=(1.0, 0.9, 0.9)), "beta_1"),
        (dict(betas=(0.9, -0.1, 0.9)), "beta_2"),
        (dict(betas=(0.9, 0.9, 1.5)), "beta_3"),
        (dict(betas=(0.9, 0.9)), "betas"),
    ],
)
def test_adas_rejects_bad_hyperparameters(kwargs, word):
    with pytest.raises(ValueError, match=word):
        Adas([torch.zeros(2, 2, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError, match=word):  # per-group values are checked too
        Adas([{"params": [torch.zeros(2, requires_grad=True)], **kwargs}])


# --------------------------------------------------------------------------------------------
# Every registered optimizer
# --------------------------------------------------------------------------------------------
def _problem(seed: int = 0):
    """Linear regression with a 2-D weight and a 1-D bias; targets of DCGAN-weight scale."""
    gen = torch.Generator().manual_seed(seed)
    model = nn.Linear(6, 4)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    x = torch.randn(64, 6, generator=gen)
    y = x @ (0.01 * torch.randn(6, 4, generator=gen)) + 0.01
    return model, x, y


def _train(model, opt, x, y, steps):
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).sum(1).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("name", NAMES)
def test_loss_decreases(name):
    model, x, y = _problem()
    cfg = OptimConfig(name=name)
    opt = build_optimizer(model.parameters(), cfg, resolved_lrs(cfg)[0])
    losses = _train(model, opt, x, y, 60)
    assert losses[-1] < 0.5 * losses[0], (name, losses[0], losses[-1])


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_reproduces_trajectory(name):
    cfg = OptimConfig(name=name, momentum=0.9 if name == "sgd" else 0.0)
    model, x, y = _problem()
    opt = build_optimizer(model.parameters(), cfg, resolved_lrs(cfg)[0])
    _train(model, opt, x, y, 5)
    # save through bytes with weights_only loading, as the checkpoints do
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buf)
    straight = _train(model, opt, x, y, 6)
    after = [p.detach().clone() for p in model.parameters()]

    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    model2, _, _ = _problem()
    model2.load_state_dict(saved["model"])
    opt2 = build_optimizer(model2.parameters(), cfg, resolved_lrs(cfg)[0])
    opt2.load_state_dict(saved["opt"])
    resumed = _train(model2, opt2, x, y, 6)
    assert resumed == straight
    for a, b in zip(after, model2.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "field, value",
    [("lr_g", -1.0), ("lr_d", 0.0), ("weight_decay", -0.1), ("lr_g", float("inf"))],
)
def test_bad_common_hyperparameters_raise(name, field, value):
    cfg = OptimConfig(name=name, **{field: value})
    with pytest.raises(ValueError, match=f"optim.{field}"):
        build_optimizers([nn.Parameter(torch.zeros(2))], [nn.Parameter(torch.zeros(2))], cfg)


@pytest.mark.parametrize(
    "name, field, value",
    [
        ("adam", "beta1", 1.0),
        ("adas", "beta2", -0.5),
        ("adas", "beta3", 1.0),
        ("adas", "lr2", -1.0),
        ("adas", "lr3", float("nan")),
        ("adam", "eps", 0.0),
        ("sgd", "momentum", 1.5),
        ("adam", "momentum", 0.9),
        ("sgd", "beta1", 0.5),
    ],
)
def test_bad_specific_hyperparameters_raise(name, field, value):
    with pytest.raises(ConfigError, match=f"optim.{field}"):
        build_optimizer(
            [nn.Parameter(torch.zeros(2))], OptimConfig(name=name, **{field: value}), 1e-3
        )


def test_unknown_optimizer_lists_valid_names():
    with pytest.raises(ConfigError, match="optim.name.*adam, adas, sgd"):
        resolved_lrs(OptimConfig(name="adamw"))


def test_bad_explicit_lr_argument():
    with pytest.raises(ConfigError, match="lr"):
        build_optimizer([nn.Parameter(torch.zeros(2))], OptimConfig(name="adam"), -1.0)


def test_registry_builds_configured_classes():
    p = [nn.Parameter(torch.zeros(2))]
    adam = build_optimizer(p, OptimConfig(name="adam"), 2e-4)
    assert isinstance(adam, torch.optim.Adam)
    assert adam.defaults["betas"] == (0.5, 0.999) and adam.defaults["foreach"]
    adam = build_optimizer(p, OptimConfig(name="adam", beta1=0.9, beta2=0.99), 1e-3)
    assert adam.defaults["betas"] == (0.9, 0.99) and adam.defaults["lr"] == 1e-3
    sgd = build_optimizer(p, OptimConfig(name="sgd", momentum=0.9), 0.01)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9
    assert sgd.defaults["foreach"]
    adas = build_optimizer(p, OptimConfig(name="adas", lr2=0.01, beta3=0.99, eps=1e-7), 0.002)
    assert isinstance(adas, Adas)
    assert adas.defaults == dict(
        lr=0.002, lr2=0.01, lr3=0.0005, betas=(0.999, 0.999, 0.99), eps=1e-7, weight_decay=0.0
    )


# --------------------------------------------------------------------------------------------
# TTUR
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, default", [("adam", 2e-4), ("sgd", 0.01), ("adas", 0.001)])
def test_resolved_lrs_defaults_and_ttur(name, default):
    assert resolved_lrs(OptimConfig(name=name)) == (default, default)
    lr_g, lr_d = resolved_lrs(OptimConfig(name=name, ttur=True))
    assert lr_g == pytest.approx(default * TTUR_G_FACTOR)
    assert lr_d == pytest.approx(default * TTUR_D_FACTOR)
    assert lr_d / lr_g == pytest.approx(4.0)  # documented 1:4


def test_resolved_lrs_adam_ttur_values():
    assert resolved_lrs(OptimConfig(name="adam", ttur=True)) == pytest.approx((1e-4, 4e-4))


def test_explicit_lrs_win_over_defaults_and_ttur():
    assert resolved_lrs(OptimConfig(name="adam", lr_g=1e-3, lr_d=3e-3)) == (1e-3, 3e-3)
    assert resolved_lrs(OptimConfig(name="adam", ttur=True, lr_g=1e-3, lr_d=3e-3)) == (1e-3, 3e-3)
    # one explicit rate: the other keeps its (TTUR) default
    assert resolved_lrs(OptimConfig(name="adam", ttur=True, lr_d=5e-4)) == pytest.approx(
        (1e-4, 5e-4)
    )
    assert resolved_lrs(OptimConfig(name="adas", lr_g=0.01)) == (0.01, 0.001)


def test_build_optimizers_uses_resolved_rates():
    g, d = [nn.Parameter(torch.zeros(2))], [nn.Parameter(torch.zeros(2))]
    opt_g, opt_d = build_optimizers(g, d, OptimConfig(name="adam", ttur=True))
    assert opt_g.param_groups[0]["lr"] == pytest.approx(1e-4)
    assert opt_d.param_groups[0]["lr"] == pytest.approx(4e-4)
    assert opt_g.param_groups[0]["params"][0] is g[0]
    assert opt_d.param_groups[0]["params"][0] is d[0]
    opt_g, opt_d = build_optimizers(iter(g), iter(d), OptimConfig(name="adas", lr_g=0.002))
    assert opt_g.defaults["lr"] == 0.002 and opt_d.defaults["lr"] == 0.001


def test_adas_state_dict_is_a_deepcopyable_plain_structure():
    p = nn.Parameter(torch.randn(3, 4))
    opt = Adas([p])
    p.grad = torch.randn(3, 4)
    opt.step()
    sd = copy.deepcopy(opt.state_dict())
    assert set(sd["state"][0]) == {
        "step",
        "lr",
        "exp_avg_sq",
        "moment",
        "lr_exp_avg_sq",
        "lr_moment",
        "master_lr",
        "master_exp_avg_sq",
    }
    assert sd["state"][0]["step"].item() == 1.0
