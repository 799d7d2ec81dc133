"""`xraygan data` flags that size an allocation are bounded before anything is written."""

import pytest

from xraygan.cli import main


@pytest.mark.parametrize("argv, needle", [
    (["data", "phantom-dicom", "OUT", "--count", "100000000"], "--count: expected <= 1,000,000"),
    (["data", "phantom-dicom", "OUT", "--size", "100000"], "--size: expected <= 8192"),
    (["data", "preview", "phantom", "--png", "OUT/g.png", "--count", "1000000"], "--count: expected <= 1024"),
    (["data", "preview", "phantom", "--png", "OUT/g.png", "--image-size", "1000000"], "expected <= 4096"),
    (["data", "prepare", "OUT", "--workers", "0"], "--workers: expected a positive integer"),
])
def test_data_flags_are_bounded(tmp_path, capsys, argv, needle):
    argv = [a.replace("OUT", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_phantom_dicom_size_checked_against_memory_cap(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XRAYGAN_MEMORY_CAP", "64MiB")
    out = tmp_path / "ph"
    assert main(["data", "phantom-dicom", str(out), "--size", "4096", "--count", "1"]) == 2
    err = capsys.readouterr().err
    assert "rendering one 4096x4096 phantom DICOM" in err and "lower --size" in err
    assert not out.exists()
