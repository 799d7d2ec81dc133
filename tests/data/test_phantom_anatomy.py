"""Phantom series with findings (version 2), their recorded anatomy, and version 1 unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from xraygan.config import DataConfig
from xraygan.data import load_dataset
from xraygan.data.phantom import (
    ANATOMY_KEYS,
    CTR_ENLARGED,
    CTR_NORMAL,
    LABELS,
    PhantomSeries,
    generate_phantoms,
    phantom_anatomy,
    phantom_fingerprint,
)
from xraygan.errors import ConfigError

GOLDEN = "tests/golden/phantom_v1.npz"  # written by the version-1 code before version 2 existed


def test_version_1_pixels_are_those_of_the_original_generator():
    # float32 pixels from exp/log chains: other CPUs' SIMD paths may differ in the last bits,
    # so the bound is a few float32 ulps of values in [0, 1], far below a uint8 level (1/255)
    golden = np.load(GOLDEN)
    np.testing.assert_allclose(generate_phantoms(6, 32, 0), golden["s32"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(generate_phantoms(2, 64, 3, start=40, nodule_prob=1.0), golden["s64"],
                               rtol=0, atol=1e-5)
    assert np.array_equal(generate_phantoms(4, 32, 0, series=PhantomSeries()), generate_phantoms(4, 32, 0))


def test_version_1_fingerprint_unchanged_and_v2_differs():
    assert phantom_fingerprint(10, 32, 0) == phantom_fingerprint(10, 32, 0, series=PhantomSeries())
    v2 = PhantomSeries.parse("v2")
    assert phantom_fingerprint(10, 32, 0, series=v2) != phantom_fingerprint(10, 32, 0)
    other = PhantomSeries.parse("v2,cardiomegaly=0.5")
    assert phantom_fingerprint(10, 32, 0, series=other) != phantom_fingerprint(10, 32, 0, series=v2)


def test_parse_and_spec_round_trip():
    s = PhantomSeries.parse("v2,cardiomegaly=0.5,effusion=0")
    assert (s.version, s.cardiomegaly, s.effusion, s.nodule) == (2, 0.5, 0.0, 0.1)
    assert PhantomSeries.parse(s.spec.partition(":")[2]) == s
    assert PhantomSeries.parse(None) == PhantomSeries() and PhantomSeries().spec == "phantom"


@pytest.mark.parametrize("arg", ["v3", "v2,heart=0.2", "v2,cardiomegaly=x", "v2,cardiomegaly=1.5",
                                 "v1,cardiomegaly=0.3", "v2,nodule"])
def test_bad_series_is_a_config_error_naming_it(arg):
    with pytest.raises(ConfigError, match="phantom"):
        PhantomSeries.parse(arg)


def test_prevalence_and_labels_follow_the_parameters():
    n = 600
    for p in (0.0, 0.3, 0.8):
        an = phantom_anatomy(n, 1, series=PhantomSeries(version=2, cardiomegaly=p, effusion=p))
        for label in ("cardiomegaly", "effusion"):
            share = an[label].mean()
            assert abs(share - p) < 4 * np.sqrt(p * (1 - p) / n) + 1e-9, (label, p, share)
        # the label is the CTR rule, and v2's CTR bands leave a gap around 0.5
        assert np.array_equal(an["cardiomegaly"] == 1, an["ctr"] > 0.5)
        assert ((an["ctr"] <= CTR_NORMAL[1] + 1e-6) | (an["ctr"] >= CTR_ENLARGED[0] - 1e-6)).all()


def test_anatomy_is_plausible_and_image_size_free():
    an = phantom_anatomy(64, 2, series=PhantomSeries.parse("v2"))
    assert set(an) == set(ANATOMY_KEYS) | set(LABELS)
    assert (an["heart_width"] < an["thorax_width"]).all()
    assert np.allclose(an["ctr"], an["heart_width"] / an["thorax_width"])
    assert (0.05 < an["lung_area_right"]).all() and (an["lung_area_right"] < 0.25).all()
    assert np.allclose(an["lung_area"], an["lung_area_right"] + an["lung_area_left"])
    assert (0.5 < an["diaphragm_y"]).all() and (an["diaphragm_y"] < 0.85).all()
    # image i's anatomy does not depend on n or start
    part = phantom_anatomy(5, 2, start=30, series=PhantomSeries.parse("v2"))
    assert all(np.array_equal(part[k], an[k][30:35]) for k in an)


def test_v2_keeps_the_v1_patient_and_draws_findings_into_the_pixels():
    v2 = PhantomSeries.parse("v2,cardiomegaly=0,effusion=0,nodule=0")
    a, b = generate_phantoms(4, 32, 5), generate_phantoms(4, 32, 5, series=v2)
    assert 0 < np.abs(a - b).mean() < 0.05  # same patient, heart rescaled and moved
    # an effusion fills the lower lateral lung with fluid: brighter there than without
    wet = PhantomSeries(version=2, effusion=1.0)
    dry = PhantomSeries(version=2, effusion=0.0)
    diff = generate_phantoms(16, 64, 5, series=wet) - generate_phantoms(16, 64, 5, series=dry)
    assert diff[:, 36:50, :16].mean() + diff[:, 36:50, 48:].mean() > 0.05


def test_dataset_spec_phantom_v2():
    data = load_dataset(DataConfig(source="phantom:v2,cardiomegaly=0.5", num_images=8), 32)
    assert data.images.shape == (8, 1, 32, 32) and "v2" in data.description
    series = PhantomSeries.parse("v2,cardiomegaly=0.5")
    assert np.array_equal(data.images[:, 0].numpy(),
                          (generate_phantoms(8, 32, 0, series=series) * 255).round().astype(np.uint8))


def test_cli_phantom_dicom_series_labels_and_bad_series(tmp_path, capsys):
    from xraygan.cli import main
    from xraygan.data.dicom import read_labels

    out = tmp_path / "vin"
    assert main(["data", "phantom-dicom", str(out), "--count", "6", "--size", "32", "--codec", "raw",
                 "--series", "v2,cardiomegaly=1,effusion=0,nodule=0"]) == 0
    labels = read_labels(out / "train.csv")
    assert len(labels) == 6 and all(v == {"Cardiomegaly"} for v in labels.values())
    assert main(["data", "phantom-dicom", str(tmp_path / "x"), "--series", "v9"]) == 2
    err = capsys.readouterr().err
    assert "--series 'v9'" in err and "Traceback" not in err
