"""Preparation throughput: DICOM images per second into the cache, with 1 and 2 workers.

Phantom radiographs written as VinBigData files (JPEG 2000 lossless, 12 bits, not square) at
1024 px; real VinBigData files are 2000-3000 px, where decoding alone takes about 0.5 s each,
so expect images/s there to be roughly 4-8x lower than here. Each round prepares into a fresh
cache (nothing reused), at 64 and 128 px from one decode. extra_info carries images_per_s and,
for 2 workers, the speedup over 1 worker measured in the same session.

    pytest benchmarks/test_bench_prepare.py --benchmark-only
"""

from __future__ import annotations

import itertools
import os

import pytest

from xraygan.data.dicom import PrepSettings, prepare
from xraygan.data.dicom_writer import write_phantom_dicoms

COUNT, SIZE = 12, 1024
_rates: dict[int, float] = {}


@pytest.fixture(scope="module")
def vinbig_1024(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench-vinbig")
    write_phantom_dicoms(root, COUNT, SIZE, seed=0, codec="j2k")
    return root


@pytest.mark.parametrize("workers", [1, 2])
def test_prepare_images_per_s(benchmark, vinbig_1024, tmp_path, workers):
    fresh = (tmp_path / f"cache-{i}" for i in itertools.count())

    def setup():
        return (), {"cache_dir": next(fresh)}

    def run(cache_dir):
        return prepare(vinbig_1024, PrepSettings(sizes=(64, 128)), workers=workers,
                       cache_dir=cache_dir, progress=False)

    result = benchmark.pedantic(run, setup=setup, rounds=3, warmup_rounds=1)
    assert result.count == COUNT and result.decoded == COUNT and not result.reused
    rate = COUNT / benchmark.stats.stats.mean
    _rates[workers] = rate
    benchmark.extra_info.update(images=COUNT, size_px=SIZE, codec="j2k", workers=workers,
                                cpus=len(os.sched_getaffinity(0)), images_per_s=round(rate, 2))
    if workers > 1 and 1 in _rates:
        benchmark.extra_info[f"speedup_{workers}_vs_1_worker"] = round(rate / _rates[1], 2)
