"""``.npz`` statistics that would allocate, mislead or poison: refused with the file named.

Classes: a header declaring a huge array (checked before loading: np.lib.format headers),
shapes that do not fit, NaN, pickled objects, a covariance that is not PSD (once "FID 0.0"),
a poisoned cache (recomputed). A hypothesis property writes .npz files with every mix of
these and checks the contract: statistics that satisfy every invariant, or one
StatsFileError/UserFileError naming the file.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from fuzz_helpers import FUZZ, run_main
from hypothesis import given
from hypothesis import strategies as st

from xraygan.errors import UserFileError, XrayganError
from xraygan.metrics.features import FeatureStats, dataset_stats, load_stats_file
from xraygan.metrics.frechet import frechet_distance, psd_defect


def header_only_npz(path, arrays: dict[str, tuple[tuple[int, ...], str]]) -> None:
    """An .npz whose members are .npy headers declaring ``shape`` and ``dtype``, with no data:
    what a hostile file looks like (a few hundred bytes claiming terabytes)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, (shape, dtype) in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                buf, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape})
            zf.writestr(f"{name}.npy", buf.getvalue())


def test_header_bomb_is_refused_before_loading(tmp_path):
    f = tmp_path / "bomb.npz"
    header_only_npz(f, {"mu": ((10**6,), "<f8"), "sigma": ((10**6, 10**6), "<f8")})
    assert f.stat().st_size < 1000
    with pytest.raises(XrayganError, match="bomb.npz"):
        load_stats_file(f)
    code, _, err = run_main(["fid", str(f), str(f), "--no-progress"])
    assert code == 2 and "bomb.npz" in err


def test_pickles_and_wrong_shapes_are_named(tmp_path):
    f = tmp_path / "obj.npz"
    np.savez(f, mu=np.array([object()], dtype=object), sigma=np.eye(1))
    with pytest.raises(UserFileError, match="Python objects"):
        load_stats_file(f)
    f = tmp_path / "shape.npz"
    np.savez(f, mu=np.zeros(4), sigma=np.eye(3))
    with pytest.raises(UserFileError, match="do not fit together"):
        load_stats_file(f)
    f = tmp_path / "rank.npz"
    np.savez(f, mu=np.zeros((2, 2)), sigma=np.eye(2))
    with pytest.raises(UserFileError, match="'mu' has shape"):
        load_stats_file(f)
    f = tmp_path / "nan.npz"
    np.savez(f, mu=np.array([0.0, np.nan]), sigma=np.eye(2))
    with pytest.raises(UserFileError, match="NaN"):
        load_stats_file(f)
    f = tmp_path / "text.npz"
    f.write_text("not a zip")
    with pytest.raises(UserFileError, match="not a readable .npz"):
        load_stats_file(f)


def test_non_psd_covariance_gives_no_fid(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8))
    mu, sigma = x.mean(0), np.cov(x, rowvar=False)
    bad = -sigma  # negative definite: pstrf stops at once and the old path returned 0.0
    assert psd_defect(sigma) is None
    assert psd_defect(bad) and psd_defect(np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="not a covariance"):
        frechet_distance(mu, sigma, mu, bad)
    f = tmp_path / "ref.npz"
    np.savez(f, mu=mu, sigma=bad)
    with pytest.raises(UserFileError, match="ref.npz: the covariance is not a covariance"):
        load_stats_file(f)
    # a singular but genuine covariance (fewer samples than dimensions) passes
    few = np.cov(rng.normal(size=(4, 8)), rowvar=False)
    assert psd_defect(few) is None


def test_poisoned_cache_is_recomputed(tmp_path):
    from xraygan.metrics.features import STATS_VERSION

    images = np.zeros((3, 1, 8, 8), np.uint8)
    calls = []

    def extractor(batch):
        calls.append(len(batch))
        return np.random.default_rng(len(calls)).normal(size=(len(batch), 2048))  # (B, 2048)

    path = tmp_path / f"fp-n3-{STATS_VERSION}.npz"
    header_only_npz(path, {"mean": ((2048,), "<f8"), "m2": ((10**7, 10**7), "<f8"),
                           "n": ((), "<i8"), "version": ((), "<U2")})
    import torch

    stats = dataset_stats(torch.from_numpy(images), "fp", extractor, cache_dir=tmp_path,
                         progress=False)
    assert calls and stats.dims == 2048 and stats.n == 3
    assert FeatureStats.load(path).n == 3  # overwritten with good statistics


@st.composite
def stats_files(draw):
    d = draw(st.integers(1, 6))
    n_rows = draw(st.integers(0, 12))
    x = np.random.default_rng(draw(st.integers(0, 99))).normal(size=(max(n_rows, 1), d))
    mu = x.mean(0)
    sigma = np.cov(x, rowvar=False).reshape(d, d) if n_rows >= 2 else np.eye(d)
    damage = draw(st.sampled_from(["none", "nan", "inf", "negate", "asym", "shape", "dtype",
                                   "missing", "n1", "huge", "rank3", "scalar_mu"]))
    if damage == "asym" and d == 1:
        damage = "negate"  # a 1x1 matrix is always symmetric
    arrays = {"mu": mu, "sigma": sigma, "n": np.int64(max(n_rows, 2))}
    if damage == "nan":
        arrays["sigma"] = sigma.copy()
        arrays["sigma"][0, 0] = np.nan
    elif damage == "inf":
        arrays["mu"] = mu.copy()
        arrays["mu"][0] = np.inf
    elif damage == "negate":
        arrays["sigma"] = -sigma - np.eye(d)
    elif damage == "asym":
        arrays["sigma"] = sigma + np.triu(np.ones((d, d)), 1)
    elif damage == "shape":
        arrays["sigma"] = np.eye(d + 1)
    elif damage == "dtype":
        arrays["mu"] = np.array(["a"] * d)
    elif damage == "missing":
        del arrays["sigma"]
    elif damage == "n1":
        arrays["n"] = np.int64(1)
    elif damage == "rank3":
        arrays["sigma"] = np.zeros((d, d, 1))
    elif damage == "scalar_mu":
        arrays["mu"] = np.float64(1.0)
    return arrays, damage


@FUZZ
@given(case=stats_files())
def test_property_stats_files_are_valid_or_refused(tmp_path_factory, case):
    arrays, damage = case
    f = tmp_path_factory.mktemp("npz") / "s.npz"
    if damage == "huge":
        header_only_npz(f, {"mu": ((2048,), "<f8"), "sigma": ((2**40, 2048), "<f8")})
    else:
        np.savez(f, **arrays)
    try:
        stats = load_stats_file(f)
    except XrayganError as e:
        assert "s.npz" in str(e) and len(str(e)) < 500
        assert damage != "none"
        return
    assert damage == "none"
    assert np.isfinite(stats.mean).all() and psd_defect(stats.cov) is None and stats.n >= 2
    assert frechet_distance(stats.mean, stats.cov, stats.mean, stats.cov) == pytest.approx(0, abs=1e-6)
