"""Reading one DICOM file: pixel pipeline on real radiographs, and every bad-file class."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from xraygan.data import dicom
from xraygan.data.dicom import BadFile, PrepSettings, decode_pixels, process_file, robust_scale
from xraygan.data.dicom_writer import _dicom_bytes, phantom_dataset
from xraygan.data.phantom import generate_phantoms
from xraygan.errors import ConfigError

CR_SMALL = "dicomdirtests/77654033/CR1/6154"  # 16x16, 12 bit, MONOCHROME1, window 1600/2800


def _testdata(name: str) -> str:
    path = get_testdata_file(name, download=False)  # never download: see dicom-data.md
    if path is None:
        pytest.skip(f"{name} not installed (pydicom-data)")
    return path


# --------------------------------------------------------------------------- real radiographs


@pytest.fixture(scope="module")
def chest_128():
    """The pydicom-data chest PA radiograph, uncompressed and JPEG 2000 lossless, at 128 px."""
    settings = PrepSettings(sizes=(64, 128))
    return {enc: process_file(_testdata(f"RG1_{enc}.dcm"), settings) for enc in ("UNCR", "J2KR")}


def test_both_encodings_decode_to_identical_pixels(chest_128):
    (unc, info_u), (j2k, info_j) = chest_128["UNCR"], chest_128["J2KR"]
    assert info_u["transfer_syntax"] != info_j["transfer_syntax"]
    assert info_u["shape"] == info_j["shape"] == [1955, 1841]
    for size in (64, 128):
        assert unc[size].shape == (size, size) and unc[size].dtype == np.uint8
        np.testing.assert_array_equal(unc[size], j2k[size])


def test_raw_decode_identical_across_encodings():
    a, _ = decode_pixels(_testdata("RG1_UNCR.dcm"), use_voi=False)
    b, _ = decode_pixels(_testdata("RG1_J2KR.dcm"), use_voi=False)
    np.testing.assert_array_equal(a, b)


def test_lungs_darker_than_mediastinum_after_monochrome1_inversion(chest_128):
    img, info = chest_128["UNCR"]
    assert info["photometric"] == "MONOCHROME1" and info["voi"] == "window"
    x = img[128].astype(float)
    # Regions picked by viewing the 128 px image: lung fields either side of the spine in the
    # upper half, the mediastinum (spine + heart shadow) in the centre column.
    right_lung = x[30:60, 22:45].mean()
    left_lung = x[30:60, 82:105].mean()
    mediastinum = x[30:80, 57:68].mean()
    assert right_lung < mediastinum - 20 and left_lung < mediastinum - 20


# --------------------------------------------------------------------------- pipeline details


def test_small_cr_file_windowed_and_scaled():
    out, info = process_file(_testdata(CR_SMALL), PrepSettings(sizes=(16, 32)))
    assert info == {"shape": [16, 16], "photometric": "MONOCHROME1",
                    "transfer_syntax": "1.2.840.10008.1.2.1", "voi": "window"}
    assert out[16].shape == (16, 16) and out[32].shape == (32, 32)
    assert out[16].min() < 10 and out[16].max() > 245  # robust scaling spans the grey range


def _with(path: str, tmp_path, name: str, **changes) -> str:
    ds = pydicom.dcmread(path)
    for k, v in changes.items():
        setattr(ds, k, v)
    out = tmp_path / name
    ds.save_as(out, enforce_file_format=True)
    return str(out)


def test_monochrome1_is_inverted(tmp_path):
    src = _testdata(CR_SMALL)
    m1, _ = process_file(src, PrepSettings(sizes=(16,)))
    m2, info = process_file(_with(src, tmp_path, "m2.dcm", PhotometricInterpretation="MONOCHROME2"),
                            PrepSettings(sizes=(16,)))
    assert info["photometric"] == "MONOCHROME2"
    diff = np.abs(m1[16].astype(int) - (255 - m2[16].astype(int)))
    assert diff.max() <= 1 and np.abs(m1[16].astype(int) - m2[16].astype(int)).max() > 100


def test_modality_lut_applied(tmp_path):
    src = _testdata(CR_SMALL)
    raw = pydicom.dcmread(src).pixel_array.astype(float)
    slope = float(pydicom.dcmread(src).RescaleSlope)
    img, _ = decode_pixels(src, use_voi=False)
    np.testing.assert_allclose(img, raw * slope + float(pydicom.dcmread(src).RescaleIntercept))


def test_robust_scale_ignores_hot_pixels():
    img = np.tile(np.linspace(0, 1000, 256), (256, 1))
    img[10, 10] = 1e6  # one burned-in marker pixel
    x = robust_scale(img)
    assert x.dtype == np.float32 and x.min() == 0 and x.max() == 1
    assert 0.45 < x[128, 128] < 0.55  # mid-gradient stays mid-grey instead of ~0.001


def test_antialiased_downsampling():
    stripes = np.zeros((256, 256))
    stripes[:, ::2] = 1000.0  # 1 px stripes: naive subsampling would give all black or all white
    out = dicom.preprocess(stripes, {"photometric": "MONOCHROME2"}, PrepSettings(sizes=(32,)))[32]
    inner = out[4:-4, 4:-4].astype(float)  # Lanczos rings at the borders
    assert 110 < inner.mean() < 145 and inner.std() < 5


@pytest.mark.parametrize("policy", ["crop", "pad", "squash"])
def test_square_policies_on_wide_image(policy):
    img = np.ones((64, 128)) * 100.0
    img[:, :32] = 0.0  # dark left quarter
    img[0, 0] = 200.0  # keep the percentiles apart
    out = dicom.preprocess(img, {"photometric": "MONOCHROME2"}, PrepSettings(sizes=(32,), square=policy))[32]
    assert out.shape == (32, 32)
    if policy == "crop":  # centre 64x64 of the 64x128: no dark quarter left
        assert out[:, :4].mean() > 100
    elif policy == "pad":  # black bars above and below the squashed-in full width
        assert out[:6].max() < 5 and out[14:18, 24:].mean() > 100
    else:
        assert out[:, :6].mean() < 30 and out[:, 10:].mean() > 100


def test_settings_validated():
    with pytest.raises(ConfigError, match="square"):
        PrepSettings(square="stretch")
    with pytest.raises(ConfigError, match="sizes"):
        PrepSettings(sizes=())
    assert PrepSettings(sizes=(128, 64, 64)).sizes == (64, 128)


# --------------------------------------------------------------------------- bad files


@pytest.fixture(scope="module")
def encoded():
    """One 64 px phantom as JPEG 2000 (MONOCHROME1) and uncompressed (MONOCHROME2) bytes."""
    img = generate_phantoms(1, 64, seed=3)[0]
    j2k = _dicom_bytes(phantom_dataset(img, monochrome1=True, rng=np.random.default_rng(0),
                                       codec="j2k", sop_uid_seed="j"))
    raw = _dicom_bytes(phantom_dataset(img, monochrome1=False, rng=np.random.default_rng(0),
                                       codec="raw", sop_uid_seed="r"))
    return j2k, raw


def _edited(raw: bytes, **changes) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(raw))
    for k, v in changes.items():
        if v is None:
            delattr(ds, k)
        else:
            setattr(ds, k, v)
    return _dicom_bytes(ds)


def _garbled(data: bytes, seed: int, lo: int, hi: int, n: int) -> bytes:
    b = bytearray(data)
    rng = np.random.default_rng(seed)
    for p in rng.integers(lo, hi, n):
        b[p] = int(rng.integers(0, 256))
    return bytes(b)


BAD_CASES = {
    "text": (lambda j, r: b"patient list\n" * 30, dicom.NOT_DICOM),
    "png": (lambda j, r: b"\x89PNG\r\n\x1a\n" + bytes(300), dicom.NOT_DICOM),
    "empty": (lambda j, r: b"", dicom.NOT_DICOM),
    "stub_200_bytes": (lambda j, r: j[:200], dicom.TRUNCATED),
    "truncated_j2k": (lambda j, r: j[: len(j) * 2 // 3], dicom.TRUNCATED),
    "truncated_raw": (lambda j, r: r[:-1000], dicom.TRUNCATED),
    "no_pixel_data": (lambda j, r: _edited(r, PixelData=None), dicom.NO_PIXELS),
    "constant": (lambda j, r: _edited(r, PixelData=np.full((64, 64), 700, np.uint16).tobytes()), dicom.CONSTANT),
    # 4095 * 1e308 overflows float64 in the modality LUT
    "not_finite": (lambda j, r: _edited(r, RescaleSlope="1e308"), dicom.NOT_FINITE),
    "two_frames": (lambda j, r: _edited(r, NumberOfFrames=2, Rows=32), dicom.WRONG_SHAPE),
    "tiny_4x4": (lambda j, r: _edited(r, Rows=4, Columns=4, PixelData=np.arange(16, dtype=np.uint16).tobytes()),
                 dicom.WRONG_SHAPE),
    # random bytes in the JPEG 2000 main header (after the SOC/SIZ markers): OpenJPEG gives up
    "garbled_j2k_header": (lambda j, r: _garbled(j, 0, j.index(b"\xff\x4f\xff\x51"),
                                                 j.index(b"\xff\x4f\xff\x51") + 40, 8), dicom.UNDECODABLE),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_file_classified(case, encoded, tmp_path):
    make, reason = BAD_CASES[case]
    path = tmp_path / f"{case}.dcm"
    path.write_bytes(make(*encoded))
    with pytest.raises(BadFile) as e:
        process_file(path, PrepSettings(sizes=(32,)))
    assert e.value.reason == reason, str(e.value)
    assert str(e.value).startswith(reason)


def test_good_encodings_are_not_bad(encoded, tmp_path):
    for name, data in zip(("j2k", "raw"), encoded, strict=True):
        (tmp_path / name).write_bytes(data)
        out, info = process_file(tmp_path / name, PrepSettings(sizes=(32,)))
        assert out[32].std() > 20, name


@pytest.mark.parametrize("seed", range(6))
def test_random_bytes_in_j2k_stream_never_crash(seed, encoded, tmp_path):
    """Bytes garbled in the code blocks often still decode (dicom-data.md): the result is either
    a checked image or a classified bad file, never an exception of another kind."""
    j2k = encoded[0]
    start = j2k.index(b"\xff\x4f\xff\x51") + 100
    path = tmp_path / "g.dcm"
    path.write_bytes(_garbled(j2k, seed, start, len(j2k) - 10, 30))
    try:
        out, _ = process_file(path, PrepSettings(sizes=(32,)))
    except BadFile as e:
        assert e.reason in dicom.REASONS
    else:
        assert out[32].shape == (32, 32) and out[32].std() > 0


# --------------------------------------------------------------------------- resource caps, corrupt decodes


def test_header_bombs_refused_before_decoding(encoded, tmp_path):
    """A header claiming 20000x20000 is refused from the header alone (no 800 MB decode)."""
    j2k, raw = encoded
    for name, data in (("raw", raw), ("j2k", j2k)):
        path = tmp_path / f"bomb_{name}.dcm"
        path.write_bytes(_edited(data, Rows=20000, Columns=20000))
        with pytest.raises(BadFile) as e:
            process_file(path, PrepSettings(sizes=(32,)))
        assert e.value.reason == dicom.TOO_LARGE
        assert "20000x20000" in str(e.value) and "400,000,000 pixels" in str(e.value)
        assert "--max-pixels" in str(e.value)


def test_pixel_cap_passes_vinbigdata_sizes_and_is_configurable(encoded, tmp_path, monkeypatch):
    ds = pydicom.dcmread(io.BytesIO(encoded[1]), stop_before_pixels=True)
    ds.Rows = ds.Columns = 3072  # the largest VinBigData radiograph
    dicom.check_header_size(ds, PrepSettings().max_pixels)
    path = tmp_path / "small.dcm"
    path.write_bytes(encoded[1])
    with pytest.raises(BadFile, match=r"^too large: header says 64x64.*4,096 pixels exceed the cap of 1,000"):
        process_file(path, PrepSettings(sizes=(32,), max_pixels=1000))
    monkeypatch.setenv("XRAYGAN_MAX_PIXELS", "1000")
    assert PrepSettings().max_pixels == 1000
    # the cap is a resource limit, not a pixel setting: caches stay valid when it changes
    assert PrepSettings(max_pixels=5).key() == PrepSettings(max_pixels=10**9).key()
    monkeypatch.setenv("XRAYGAN_MAX_PIXELS", "lots")
    with pytest.raises(ConfigError, match="XRAYGAN_MAX_PIXELS: expected a number of pixels, got 'lots'"):
        PrepSettings()


def test_values_above_bits_stored_rejected(tmp_path):
    """A compressed stream holding values the header rules out (pydicom masks uncompressed data
    to BitsStored, decoders of compressed data do not): refused as corrupt, with the numbers."""
    img = generate_phantoms(1, 64, seed=3)[0]
    img[20:30, 20:30] = 15.0  # 10x10 block of 15 * 4095: far above the 12-bit range
    path = tmp_path / "overflow.dcm"
    path.write_bytes(_j2k_16bit_precision(img))
    with pytest.raises(BadFile) as e:
        process_file(path, PrepSettings(sizes=(32,)))
    assert e.value.reason == dicom.CORRUPT
    assert "lie outside 0..4095, the range of BitsStored 12" in str(e.value)


def _j2k_16bit_precision(img: np.ndarray) -> bytes:
    """A JPEG 2000 file whose codestream has 16-bit precision while BitsStored says 12, as some
    VinBigData files have: damage in it decodes to values up to 65535 instead of failing."""
    from pydicom.uid import JPEG2000Lossless

    ds = phantom_dataset(np.clip(img, 0, 1), monochrome1=False, rng=np.random.default_rng(0),
                         codec="raw", sop_uid_seed="p")
    arr = np.frombuffer(ds.PixelData, np.uint16).reshape(img.shape).copy()
    arr[img > 1] = 65535
    ds.BitsStored, ds.HighBit = 16, 15
    ds.compress(JPEG2000Lossless, arr, encoding_plugin="pylibjpeg")
    ds.BitsStored, ds.HighBit = 12, 11
    return _dicom_bytes(ds)


def test_j2k_with_2000_overwritten_bytes_is_rejected_not_trained_on(tmp_path):
    """A corrupt download: every damaged decode that leaves the 12-bit range
    is refused as corrupt; one with in-range values is still a checked image."""
    import warnings

    clean = _j2k_16bit_precision(generate_phantoms(1, 256, seed=3)[0])
    start = clean.index(b"\xff\x4f\xff\x51") + 200
    rejected = 0
    for offset in (2500, 3000, 3500, 4500):  # inside the code blocks (measured at 512 px: 23/160 overflow)
        data = bytearray(clean)
        data[start + offset : start + offset + 2000] = np.random.default_rng(offset).bytes(2000)
        path = tmp_path / f"damaged_{offset}.dcm"
        path.write_bytes(bytes(data))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                decoded_max = int(pydicom.dcmread(path).pixel_array.max())
        except Exception:
            decoded_max = -1  # the decoder gives up: classified below as well
        try:
            process_file(path, PrepSettings(sizes=(32,)))
        except BadFile as e:
            assert e.reason in dicom.REASONS
            rejected += e.reason == dicom.CORRUPT
            if decoded_max > 4095:
                assert e.reason == dicom.CORRUPT and "BitsStored 12" in str(e)
        else:
            assert decoded_max <= 4095, f"offset {offset}: decoded up to {decoded_max}, accepted"
    assert rejected >= 1
