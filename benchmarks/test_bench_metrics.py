"""Cost of the metrics beyond FID: precision/recall/density/coverage and the
memorization test on features FID has already computed, against FID's own cost (Inception
features of both sets plus the Fréchet distance), and the chunked distances at 10,000 x 10,000.

    .nox/tests/bin/python -m pytest benchmarks/test_bench_metrics.py --benchmark-only \
        --benchmark-json out.json

Targets (extra_info carries the measured numbers):
  * added cost at 2,048 vs 2,048 samples <= 10 % of FID with features;
  * 10,000 x 10,000 2048-d: peak extra memory bounded by the block budget (not N^2), time
    recorded.
"""

import time
import tracemalloc

import numpy as np
import pytest
import torch

from xraygan.errors import XrayganError
from xraygan.metrics.frechet import frechet_distance
from xraygan.metrics.knn import BUDGET_BYTES
from xraygan.metrics.memorization import memorization
from xraygan.metrics.prdc import prdc

D = 2048
N = 2048


def _features(n: int, seed: int) -> np.ndarray:
    # pool3 features are non-negative, mean ~0.3: a ReLU of correlated Gaussians is close enough
    rng = np.random.default_rng(seed)
    return np.maximum(rng.standard_normal((n, D)).astype(np.float32) * 0.4 + 0.2, 0)


@pytest.fixture(scope="module")
def inception_images_per_s():
    """CPU Inception throughput on 64 px images (as FID sees them: resized to 299)."""
    from xraygan.metrics.features import InceptionFeatures

    try:
        ex = InceptionFeatures("cpu")
    except XrayganError as e:
        pytest.skip(str(e))
    batch = torch.randint(0, 256, (32, 1, 64, 64), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(0))
    ex(batch[:4])  # warm-up
    t = time.perf_counter()
    ex(batch)
    return len(batch) / (time.perf_counter() - t)


def test_added_cost_over_fid_at_2048(benchmark, inception_images_per_s):
    real, fake, held = _features(N, 0), _features(N, 1), _features(512, 2)
    px = [np.random.default_rng(s).random((n, 256)) for s, n in ((3, N), (4, N), (5, 512))]
    t = time.perf_counter()
    mu1, mu2 = real.mean(0, dtype=np.float64), fake.mean(0, dtype=np.float64)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    frechet_distance(mu1, s1, mu2, s2)
    frechet_s = time.perf_counter() - t
    fid_s = 2 * N / inception_images_per_s + frechet_s  # features of both sets + the distance

    def added():
        prdc(real, fake)
        memorization(fake, real, held, px[1], px[0], px[2])

    benchmark.pedantic(added, rounds=2, warmup_rounds=0)
    added_s = benchmark.stats.stats.median
    ratio = added_s / fid_s
    benchmark.extra_info.update({"inception_images_per_s": inception_images_per_s,
                                 "fid_s": fid_s, "frechet_s": frechet_s, "added_s": added_s,
                                 "added_fraction_of_fid": ratio,
                                 "threads": torch.get_num_threads()})
    assert ratio <= 0.10, f"PRDC + memorization cost {ratio:.1%} of FID"


def test_chunked_distances_10k_bounded(benchmark):
    real, fake = _features(10_000, 6), _features(10_000, 7)

    def run():
        tracemalloc.start()
        out = prdc(real, fake)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return out, peak

    out, peak = benchmark.pedantic(run, rounds=1, warmup_rounds=0)
    inputs = 2 * real.size * 8  # the float64 copies of the two feature sets
    benchmark.extra_info.update({"peak_bytes": peak, "inputs_float64_bytes": inputs,
                                 "budget_bytes": BUDGET_BYTES, "seconds": benchmark.stats.stats.median,
                                 "full_matrix_bytes": 10_000 * 10_000 * 8})
    # the float64 inputs plus a few blocks, far below one full 10k x 10k matrix (800 MB)
    assert peak < inputs + 6 * BUDGET_BYTES
    assert 0 <= out["precision"] <= 1
