"""The exp-based ELU matches torch's ELU in value and gradient, and is what models get."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xraygan.models import build_models
from xraygan.models.fast_elu import ELU, elu
from xraygan.presets import get_preset


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_matches_torch_elu_value_and_gradient(alpha):
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(4, 8, 5, 5, generator=gen) * 3).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    g = torch.randn(4, 8, 5, 5, generator=gen)
    y, y_ref = elu(x, alpha), F.elu(x_ref, alpha)
    y.backward(g)
    y_ref.backward(g)
    assert torch.allclose(y, y_ref, atol=2e-7, rtol=0)
    assert torch.equal(y[x > 0], x[x > 0])  # exact on the positive side
    assert torch.allclose(x.grad, x_ref.grad, atol=2e-7, rtol=1e-6)


def test_gradcheck_in_double():
    x = torch.randn(3, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: elu(t, 1.0), (x,))


def test_paper_models_use_it_and_keep_elu_name_and_state():
    g, d = build_models(get_preset("paper-elu", 32))
    acts = [m for m in (*g.modules(), *d.modules()) if isinstance(m, nn.ELU)]
    assert acts and all(type(m) is ELU for m in acts)
    assert repr(acts[0]) == "ELU(alpha=1.0)"
    x = torch.randn(2, 100)
    assert g(x).shape == (2, 1, 32, 32)


def test_bf16_input_rounds_once_like_torch():
    x = torch.linspace(-0.02, 0.02, 401).to(torch.bfloat16)
    y = elu(x)
    assert y.dtype == torch.bfloat16
    assert torch.equal(y, F.elu(x.float()).to(torch.bfloat16))  # exp(x) - 1 in bf16 would be 0
