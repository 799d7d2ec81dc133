"""The fast training mode (bf16 autocast + channels-last on CPU) tracks fp32 training.

Tolerance: over 30 steps of a small GAN from the same seed and batches, the mean absolute
difference of loss_d and loss_g between the fast mode and fp32 stays below 0.05 (losses here
are ~1.4 and ~0.7 at the start), and the first step agrees to 0.01. bf16 keeps 8 mantissa
bits, so per-step differences are ~1e-3 relative and the trajectories drift slowly apart, as
two fp32 runs with different reduction orders would; a broken fast path (wrong scaling, a
missing cast, an un-frozen D) moves them by far more.
"""

import pandas as pd
import pytest

from xraygan import runs
from xraygan.config import DataConfig, ExperimentConfig, ModelConfig, OptimConfig, TrainConfig
from xraygan.train import train

STEPS, MEAN_TOL, FIRST_TOL = 30, 0.05, 0.01


def losses(tmp_path, optimizer, **train_kw) -> pd.DataFrame:
    cfg = ExperimentConfig(
        name="fast",
        model=ModelConfig(image_size=16, g_features=8, d_features=8, latent_dim=16),
        optim=OptimConfig(name=optimizer),
        data=DataConfig(source="phantom", num_images=64),
        train=TrainConfig(steps=STEPS, batch_size=16, device="cpu", sample_every=0,
                          checkpoint_every=0, num_samples=16, **train_kw),
    )
    result = train(cfg, runs_root=tmp_path, progress=False, evaluate=False)
    return runs.read_metrics(result.run_dir)[["loss_d", "loss_g"]]


@pytest.mark.parametrize("optimizer", ["adam", "adas"])
def test_bf16_channels_last_tracks_fp32_losses(tmp_path, optimizer):
    fp32 = losses(tmp_path / "fp32", optimizer)
    fast = losses(tmp_path / "fast", optimizer, amp="bf16", channels_last=True)
    diff = (fast - fp32).abs()
    assert (diff.iloc[0] < FIRST_TOL).all(), diff.iloc[0]
    assert (diff.mean() < MEAN_TOL).all(), diff.mean()
    assert not fast.equals(fp32)  # bf16 really ran


def test_channels_last_alone_matches_fp32_closely(tmp_path):
    fp32 = losses(tmp_path / "a", "adam")
    cl = losses(tmp_path / "b", "adam", channels_last=True)
    assert ((cl - fp32).abs().max() < 1e-3).all()


# The allocator thresholds, read back from glibc's own bookkeeping: mallinfo2().hblkhd counts
# the bytes of blocks served by mmap. A 64 MiB block is above glibc's dynamic mmap threshold
# (capped at 32 MiB), so it is mmapped by default, and comes from the heap once tune_malloc()
# raised the threshold to 1 GiB. A fresh interpreter per case: thresholds are process state.
MALLINFO_PROBE = """
import ctypes, json, os, sys
from xraygan.process import tune_malloc

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]

def mmapped_bytes_of_a_64mib_block():
    before = libc.mallinfo2().hblkhd
    p = libc.malloc(64 << 20)
    delta = libc.mallinfo2().hblkhd - before
    libc.free(p)
    return delta

first = mmapped_bytes_of_a_64mib_block()
applied = tune_malloc(None if len(sys.argv) < 2 else sys.argv[1] == "on")
print(json.dumps({"before": first, "applied": applied, "after": mmapped_bytes_of_a_64mib_block()}))
"""


def _malloc_probe(*args, **env):
    import json
    import os
    import subprocess
    import sys

    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "XRAYGAN_MALLOC"))}
    out = subprocess.run([sys.executable, "-c", MALLINFO_PROBE, *args], capture_output=True,
                         text=True, check=True, env={**full_env, **env})
    return json.loads(out.stdout)


needs_glibc = pytest.mark.skipif(
    not __import__("sys").platform.startswith("linux")
    or not hasattr(__import__("ctypes").CDLL(None), "mallinfo2"),
    reason="glibc >= 2.33 (mallinfo2) only",
)


@needs_glibc
def test_tune_malloc_keeps_large_blocks_on_the_heap():
    r = _malloc_probe("on")
    assert r["before"] >= 64 << 20  # glibc's default: the block was mmapped
    assert r["applied"] is True and r["after"] == 0  # now served from the heap


@needs_glibc
def test_malloc_tuning_can_be_switched_off():
    r = _malloc_probe(XRAYGAN_MALLOC_TUNE="0")
    assert r["applied"] is False and r["after"] >= 64 << 20


@needs_glibc
def test_malloc_thresholds_from_the_environment_are_left_alone():
    # the user's own threshold (8 MiB) at process start: tune_malloc must not override it
    r = _malloc_probe("on", MALLOC_MMAP_THRESHOLD_=str(8 << 20))
    assert r["applied"] is True and r["before"] >= 64 << 20 and r["after"] >= 64 << 20
