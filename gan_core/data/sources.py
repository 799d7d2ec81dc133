"""Loading a dataset by its spec: the loader its kind names, then the training side of a
held-out split (xraygan.data.split).

Importing this module imports every loader module, each of which registers its kind in
:data:`~xraygan.data.base.DATASETS`.
"""

from __future__ import annotations

import inspect

from ..config import DataConfig
from . import cache, dicom, folder, phantom  # noqa: F401  (each registers its loader)
from .base import DATASETS, ImageSet, parse_spec
from .split import training_part


def dataset_kinds() -> list[str]:
    """Names of every registered dataset kind."""
    return DATASETS.names()


def load_dataset(cfg: DataConfig, image_size: int, channels: int = 1, *,
                 progress: bool = True) -> ImageSet:
    """Load the dataset named by ``cfg.source`` at ``image_size`` with ``channels`` channels;
    a held-out part (``data.holdout``) is left out: it is never trained on.

    ``progress=False`` (the CLI's ``--no-progress``) silences the loaders that decode files.
    """
    kind, arg = parse_spec(cfg.source)
    loader = DATASETS.get(kind, field="data.source")
    if "progress" in inspect.signature(loader).parameters:
        data = loader(arg, cfg, image_size, channels, progress=progress)
    else:
        data = loader(arg, cfg, image_size, channels)
    return training_part(data, cfg)
