"""FID speed: Inception feature extraction (CPU images/s) and the Fréchet distance at 2048-d,
ours against pytorch-fid's scipy-sqrtm path on the same statistics (ratio in extra_info).

    .venv/bin/pytest benchmarks/test_bench_fid.py --benchmark-only --benchmark-json out.json
"""

import time
import warnings

import numpy as np
import pytest
import torch

from xraygan.errors import XrayganError
from xraygan.metrics.frechet import frechet_distance

D = 2048


@pytest.fixture(scope="module")
def stats_2048():
    rng = np.random.default_rng(0)
    out = []
    for n, scale in ((4096, 1.0), (3072, 1.3)):
        x = np.abs(rng.standard_normal((n, D)) @ (rng.standard_normal((D, D)) * scale / np.sqrt(D)))
        out += [x.mean(0), np.cov(x, rowvar=False)]
    return out


def test_frechet_2048_vs_pytorch_fid(benchmark, stats_2048):
    from pytorch_fid.fid_score import calculate_frechet_distance

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        want = calculate_frechet_distance(*stats_2048)
        ref_s = time.perf_counter() - t
    got = benchmark.pedantic(frechet_distance, args=tuple(stats_2048), rounds=3, warmup_rounds=1)
    ours_s = benchmark.stats.stats.median
    benchmark.extra_info.update({"pytorch_fid_s": ref_s, "ours_s": ours_s,
                                 "speedup": ref_s / ours_s, "rel_diff": abs(got - want) / want})
    assert got == pytest.approx(want, rel=1e-6)


def test_inception_features_cpu(benchmark):
    from xraygan.metrics.features import InceptionFeatures

    try:
        ex = InceptionFeatures("cpu")
    except XrayganError as e:
        pytest.skip(str(e))
    batch = torch.randint(0, 256, (16, 1, 64, 64), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(0))
    feats = benchmark.pedantic(ex, args=(batch,), rounds=3, warmup_rounds=1)
    assert feats.shape == (16, 2048)
    benchmark.extra_info.update({"images_per_s": len(batch) / benchmark.stats.stats.median,
                                 "threads": torch.get_num_threads(), "batch": len(batch)})
