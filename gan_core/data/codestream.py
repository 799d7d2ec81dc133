"""What a compressed DICOM file will cost to decode, read from the bytes before decoding.

Two places a small file hides a large allocation that the header's Rows x Columns do not show:

- a *deflated* data set (transfer syntax 1.2.840.10008.1.2.1.99): the whole data set after the
  file meta is one zlib stream that pydicom inflates in memory while reading the header; zeros
  compress about 1000:1, so a 1 MB file can inflate to a gigabyte. :func:`inflated_size` counts
  the inflated bytes in 1 MiB steps, keeping none, and stops at the limit;
- an encapsulated codestream (JPEG 2000, JPEG, JPEG-LS) carries its own image size (the SIZ
  marker segment, the SOF segment), which is what the decoder allocates, whatever the DICOM
  header claims. :func:`declared_size` reads it from the first frame's first bytes.
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

DEFLATED = "1.2.840.10008.1.2.1.99"
SCAN_BYTES = 1 << 16  # the SIZ / SOF segment comes within the first few hundred bytes


def inflated_size(f: BinaryIO, limit: int, step: int = 1 << 20) -> int:
    """Bytes the raw-deflate stream from ``f``'s position inflates to, counting at most
    ``limit + 1`` of them (a result above ``limit`` means "more than the limit")."""
    d = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    while total <= limit:
        chunk = f.read(step)
        if not chunk:
            break
        data = d.decompress(chunk, step)
        total += len(data)
        while d.unconsumed_tail and not d.eof and total <= limit:
            tail = d.unconsumed_tail
            data = d.decompress(tail, step)
            total += len(data)
            if not data and d.unconsumed_tail == tail:  # no progress: a damaged stream
                return total
        if d.eof:
            break
    return total


def declared_size(stream: bytes) -> tuple[int, int, int, str] | None:
    """(width, height, components, what) that a JPEG 2000 / JPEG / JPEG-LS codestream at the
    start of ``stream`` declares, or None when none is found (not one of those codecs)."""
    head = bytes(stream[:SCAN_BYTES])
    siz = head.find(b"\xff\x4f\xff\x51")  # SOC then SIZ: a JPEG 2000 codestream (or one inside JP2)
    if siz >= 0:
        body = head[siz + 4:siz + 4 + 38]
        if len(body) < 38:
            return None
        _lsiz, _rsiz, xsiz, ysiz, xo, yo, _xt, _yt, _xto, _yto, csiz = struct.unpack(">HHIIIIIIIIH", body)
        return max(0, xsiz - xo), max(0, ysiz - yo), csiz, "JPEG 2000 SIZ"
    soi = head.find(b"\xff\xd8")
    if soi < 0:
        return None
    i = soi + 2
    while i + 4 <= len(head):
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", head[i + 2:i + 4])
        sof = (0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC)) or marker == 0xF7
        if sof and i + 10 <= len(head):
            _p, height, width, comps = struct.unpack(">BHHB", head[i + 4:i + 10])
            return width, height, comps, "JPEG-LS SOF" if marker == 0xF7 else "JPEG SOF"
        if marker == 0xDA:  # start of scan before any SOF: not a valid JPEG
            return None
        i += 2 + length
    return None
