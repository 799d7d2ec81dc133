"""--amp resolution: auto is fp32 on a CPU without native bf16; explicit bf16 there warns."""

import warnings

import pytest
import torch

from xraygan import precision
from xraygan.errors import ConfigError
from xraygan.precision import SlowPrecisionWarning, resolve_amp


@pytest.fixture
def avx2(monkeypatch):
    monkeypatch.setattr(precision, "has_native_bf16", lambda: False)


@pytest.fixture
def avx512_bf16(monkeypatch):
    monkeypatch.setattr(precision, "has_native_bf16", lambda: True)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)  # no cap below the CPU's bf16


@pytest.mark.parametrize("native,flags,cap,want", [
    (True, set(), "", "native"),
    (True, set(), "AVX512_CORE", "emulated"),  # capped below bf16: oneDNN emulates it
    (True, set(), "avx2", "none"),
    (False, {"avx512f", "avx512bw", "avx512vl"}, "", "emulated"),  # the Xeon without bf16
    (False, {"avx512f", "avx512bw", "avx512vl"}, "AVX512_CORE_BF16", "emulated"),  # no uplift
    (False, {"avx2"}, "", "none"),
])
def test_onednn_bf16_mode_from_the_cpu_and_the_cap(monkeypatch, native, flags, cap, want):
    from xraygan import fingerprint

    monkeypatch.setattr(precision, "has_native_bf16", lambda: native)
    monkeypatch.setattr(fingerprint, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    assert precision.onednn_bf16() == want


def test_auto_is_fp32_on_avx2_cpu(avx2):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_amp("auto", torch.device("cpu")) is None


def test_auto_is_bf16_on_native_bf16_cpu(avx512_bf16):
    assert resolve_amp("auto", "cpu") is torch.bfloat16


def test_auto_is_fp16_on_cuda(avx2):
    assert resolve_amp("auto", torch.device("cuda")) is torch.float16  # no GPU needed to resolve


def test_explicit_bf16_without_native_warns_with_the_cost(avx2):
    with pytest.warns(SlowPrecisionWarning, match=r"no avx512_bf16/AMX.*measured 8-16x slower than fp32"):
        assert resolve_amp("bf16", "cpu") is torch.bfloat16


def test_explicit_bf16_with_native_is_silent(avx512_bf16):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_amp("bf16", "cpu") is torch.bfloat16


def test_off_and_fp16(avx2):
    assert resolve_amp("off", "cpu") is None
    assert resolve_amp("fp16", "cuda") is torch.float16
    with pytest.raises(ConfigError, match="train.amp: fp16 autocast needs CUDA"):
        resolve_amp("fp16", "cpu")

