"""Training data: every source becomes an :class:`ImageSet` of uint8 images in memory.

A dataset spec names the source: ``phantom`` (built-in procedural chest radiographs),
``folder:PATH`` (PNG/JPEG images), ``dicom:PATH`` (a DICOM folder, VinBigData layout or any) or
``cache:PATH`` (a prepared cache). Loaders register by kind in :data:`DATASETS`.

At the image sizes GANs are trained on here (64 to 128 px) a whole dataset fits in memory as
uint8 (15,000 images at 128x128 are 245 MB), so the trainer indexes one tensor instead of
running a DataLoader: no worker processes, no per-step decode, and exact resumption.

The names below load on first use (they need torch), so that the command line can import the
package's light modules (limits, image operations) without it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DATASETS", "ImageSet", "dataset_kinds", "load_dataset", "parse_spec"]


_HOMES = {"DATASETS": "base", "ImageSet": "base", "parse_spec": "base",
          "dataset_kinds": "sources", "load_dataset": "sources"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        from . import base, sources

        return getattr({"base": base, "sources": sources}[_HOMES[name]], name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
