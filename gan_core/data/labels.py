"""Per-image labels of a dataset's training and held-out images, for the downstream utility
test (xraygan.metrics.utility): phantoms know their findings from the parameters that drew
them (phantom.phantom_anatomy); DICOM folders and caches look their images' ids up in
VinBigData's train.csv.

Label names are the phantom's (``cardiomegaly``, ``effusion``, ``nodule``); on VinBigData each
is a class of train.csv (``VINBIG_CLASS``), positive when any radiologist marked it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import DataConfig
from ..errors import DataError
from .base import ImageSet, parse_spec
from .cache import read_index
from .dicom import find_labels_csv, read_labels
from .dicom_writer import SERIES_CLASSES
from .holdout import heldout_set
from .phantom import DEFAULT_NUM_IMAGES, LABELS, PhantomSeries, phantom_anatomy
from .sources import load_dataset

VINBIG_CLASS = dict(SERIES_CLASSES)


def _check_label(label: str) -> None:
    if label not in LABELS:
        raise DataError(f"label: expected one of {', '.join(LABELS)}, got {label!r}")


def _csv_of(cfg: DataConfig) -> Path:
    kind, arg = parse_spec(cfg.source)
    if kind == "dicom":
        root = Path(arg or "")
    elif kind == "cache":
        root = Path(read_index(Path(arg or "").expanduser())["source"])
    else:
        raise DataError(f"data.source {cfg.source!r} has no labels: use phantom:v2 (findings drawn "
                        "by the generator) or a VinBigData DICOM folder (dicom:PATH with train.csv)")
    csv = find_labels_csv(root)
    if csv is None:
        raise DataError(f"{root}: no train.csv (VinBigData labels) in the folder or beside it")
    return csv


def _lookup(data: ImageSet, cfg: DataConfig, label: str) -> np.ndarray:
    if data.ids is None:
        raise DataError(f"{data.description}: the images carry no ids to look labels up by")
    table = read_labels(_csv_of(cfg))
    missing = [i for i in data.ids if i not in table]
    if missing:
        raise DataError(f"{_csv_of(cfg)}: no row for {len(missing)} image(s), e.g. {missing[0]}")
    name = VINBIG_CLASS[label]
    return np.array([name in table[i] for i in data.ids], np.float64)


def training_labels(cfg: DataConfig, image_size: int, label: str) -> tuple[ImageSet, np.ndarray]:
    """The training images of ``cfg`` (as the trainer loads them) and their 0/1 ``label``."""
    _check_label(label)
    data = load_dataset(cfg, image_size, 1, progress=False)
    kind, arg = parse_spec(cfg.source)
    if kind == "phantom":
        series = PhantomSeries.parse(arg)
        return data, phantom_anatomy(len(data), cfg.seed, series=series)[label]
    return data, _lookup(data, cfg, label)


def heldout_labels(cfg: DataConfig, image_size: int, label: str,
                   max_images: int) -> tuple[ImageSet, np.ndarray]:
    """Held-out real images of ``cfg`` (never trained on: data/holdout.py) and their labels."""
    _check_label(label)
    data = heldout_set(cfg, image_size, 1, max_images)
    kind, arg = parse_spec(cfg.source)
    if kind == "phantom":
        start = cfg.num_images or DEFAULT_NUM_IMAGES
        series = PhantomSeries.parse(arg)
        return data, phantom_anatomy(len(data), cfg.seed, start=start, series=series)[label]
    return data, _lookup(data, cfg, label)
