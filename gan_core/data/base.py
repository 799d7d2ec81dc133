"""The dataset registry and the :class:`ImageSet` every loader returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..errors import ConfigError, DataError
from ..registry import Registry


@dataclass
class ImageSet:
    """Images of one dataset, ready to train on.

    images: uint8 tensor (N, C, H, W), values 0..255 (0 = black, lungs dark as in radiographs).
    fingerprint: stable hex digest of the source and the settings that produced the pixels;
        keys caches such as FID reference statistics.
    skipped: (path, reason) of input files that could not be used.
    ids: per image, the id its source knows it by (a VinBigData image_id, the DICOM file's
        stem), where the source has one: what labels are looked up by (data/labels.py).
    """

    images: torch.Tensor
    fingerprint: str
    description: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ids: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise TypeError("ImageSet.images must be a uint8 tensor of shape (N, C, H, W)")
        if len(self.images) == 0:
            raise DataError(f"{self.description}: no usable image")
        if self.ids is not None and len(self.ids) != len(self.images):
            raise ValueError(f"ImageSet: {len(self.ids)} ids for {len(self.images)} images")

    def __len__(self) -> int:
        return len(self.images)

    def require(self, count: int, why: str) -> None:
        """DataError unless the set holds at least ``count`` images; ``why`` names the setting
        that needs them, e.g. ``require(cfg.train.batch_size, "--batch-size 64")``."""
        if len(self) < count:
            raise DataError(
                f"{self.description}: {len(self)} usable image(s), {why} needs at least {count}"
                + (f" ({len(self.skipped)} file(s) were skipped)" if self.skipped else "")
            )

    @staticmethod
    def to_float(batch: torch.Tensor) -> torch.Tensor:
        """uint8 0..255 -> float in [-1, 1], the range of G's tanh output."""
        return batch.float().div_(127.5).sub_(1.0)


Loader = Callable[..., ImageSet]
"""loader(argument after the colon or None, data config, image size, channels, *, progress)
-> ImageSet; ``progress`` (show decoding progress) is optional for a loader to accept."""

DATASETS: Registry[Loader] = Registry("dataset")


def parse_spec(spec: str) -> tuple[str, str | None]:
    kind, sep, arg = spec.partition(":")
    if sep and not arg:
        raise ConfigError(f"data.source: {spec!r} names no path after '{kind}:'")
    return kind, (arg if sep else None)
