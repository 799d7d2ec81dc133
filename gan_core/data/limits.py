"""Size caps checked before a loader allocates: image headers and generated datasets.

A DICOM or PNG header is a claim about size, not a size: a 4 KB file whose header says
20000 x 20000 makes the decoder allocate gigabytes. Every loader reads the header first and
refuses an image over :func:`max_pixels` (rows x columns x frames) with the file named, before
any pixel is decoded. The default, 64 Mpx (8000 x 8000), passes every radiograph seen (VinBigData
is at most 3072 x 3072 = 9.4 Mpx; mammograms reach 4000 x 5000) and costs at most ~1.5 GB of
float64 working copies per decode; ``$XRAYGAN_MAX_PIXELS`` or ``xraygan data prepare
--max-pixels`` raises it.

Whole-dataset allocations (phantoms at a huge ``--image-size``) ask the project-wide memory
budget (``xraygan.budget.check_allocation``).
"""

from __future__ import annotations

import os

from ..errors import ConfigError

MAX_PIXELS_ENV = "XRAYGAN_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 64_000_000


def max_pixels() -> int:
    """The per-image pixel cap: ``$XRAYGAN_MAX_PIXELS`` or :data:`DEFAULT_MAX_PIXELS`."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(raw))
    except (ValueError, OverflowError):
        raise ConfigError(f"{MAX_PIXELS_ENV}: expected a number of pixels, got {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{MAX_PIXELS_ENV}: expected a number of pixels >= 1, got {raw!r}")
    return value


def too_large(pixels: int, cap: int) -> str | None:
    """The reason detail when ``pixels`` exceeds ``cap``, else None."""
    if pixels <= cap:
        return None
    return (f"{pixels:,} pixels exceed the cap of {cap:,} (if the file is genuine, raise it "
            f"with ${MAX_PIXELS_ENV} or xraygan data prepare --max-pixels)")

