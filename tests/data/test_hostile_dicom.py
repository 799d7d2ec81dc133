"""DICOM files whose decode would cost more than they look: checked before decoding.

Classes: a deflated data set inflating past its limit (counted in 1 MiB steps, nothing kept),
a codestream whose own declared size (JPEG 2000 SIZ, JPEG SOF) is over the pixel cap or
contradicts the header's Rows x Columns.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from xraygan.data.codestream import declared_size, inflated_size
from xraygan.data.dicom import CORRUPT, TOO_LARGE, BadFile, decode_pixels
from xraygan.data.dicom_writer import _dicom_bytes, phantom_dataset


def dataset(codec: str = "raw", size: int = 32):
    img = np.linspace(0, 1, size * size).reshape(size, size)
    return phantom_dataset(img, monochrome1=False, rng=np.random.default_rng(0), codec=codec,
                           sop_uid_seed="hostile")


def test_deflated_bomb_is_refused_before_pydicom_inflates_it(tmp_path, monkeypatch):
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    ds = dataset()
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.add_new(0x00091010, "OB", b"\0" * (24 * 2**20))  # a private element of 24 MiB of zeros
    f = tmp_path / "bomb.dcm"
    f.write_bytes(_dicom_bytes(ds))
    assert f.stat().st_size < 200_000
    monkeypatch.setenv("XRAYGAN_MAX_DICOM_INFLATED", "4MiB")
    with pytest.raises(BadFile, match="XRAYGAN_MAX_DICOM_INFLATED") as e:
        decode_pixels(f)
    assert e.value.reason == TOO_LARGE
    monkeypatch.setenv("XRAYGAN_MAX_DICOM_INFLATED", "64MiB")
    img, _ = decode_pixels(f)  # within the limit the same file decodes
    assert img.shape == (32, 32)


def test_inflated_size_stops_at_the_limit():
    import zlib

    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    blob = c.compress(b"\0" * (50 * 2**20)) + c.flush()
    assert inflated_size(io.BytesIO(blob), 2**20) <= 2**20 + 2**20  # stops within one step
    assert inflated_size(io.BytesIO(blob), 100 * 2**20) == 50 * 2**20


def _patch_siz(pixel_data: bytes, width: int, height: int) -> bytes:
    at = pixel_data.find(b"\xff\x4f\xff\x51") + 4
    body = bytearray(pixel_data)
    body[at + 4:at + 12] = struct.pack(">II", width, height)  # Xsiz, Ysiz (offsets are 0)
    return bytes(body)


@pytest.mark.parametrize("width, height, reason", [(60000, 60000, TOO_LARGE), (64, 32, CORRUPT)])
def test_jpeg2000_codestream_size_is_checked_not_only_the_header(tmp_path, width, height, reason):
    ds = dataset("j2k")
    assert declared_size(ds.PixelData)[:3] == (32, 32, 1)
    ds.PixelData = _patch_siz(ds.PixelData, width, height)
    f = tmp_path / "lie.dcm"
    f.write_bytes(_dicom_bytes(ds))
    with pytest.raises(BadFile, match="JPEG 2000 SIZ declares") as e:
        decode_pixels(f)
    assert e.value.reason == reason


def test_jpeg_sof_is_read():
    buf = io.BytesIO()
    Image.new("L", (37, 21)).save(buf, format="JPEG")
    assert declared_size(b"\xfe\xff\x00\xe0\x00\x00\x00\x00" + buf.getvalue()) == (37, 21, 1, "JPEG SOF")
    assert declared_size(b"no codestream here") is None
    assert declared_size(b"\xff\xd8\xff") is None


@pytest.mark.parametrize("text", ["[]", '{"format": "xraygan-dicom-cache"}', "[" * 100000,
                                  "{" + '"a":1,' * 10 + '"b":2}'])
def test_damaged_cache_index_is_a_data_error(tmp_path, text):
    import json

    from xraygan.data.cache import CACHE_FORMAT, CACHE_VERSION, INDEX, load_cache
    from xraygan.errors import DataError

    if text.startswith('{"format"'):
        text = json.dumps({"format": CACHE_FORMAT, "version": CACHE_VERSION, "arrays": [1]})
    (tmp_path / INDEX).write_text(text)
    with pytest.raises(DataError, match=INDEX):
        load_cache(tmp_path, 16)
