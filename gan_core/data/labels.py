"""Per-image labels of a dataset's training and held-out images, for the downstream utility
test (xraygan.metrics.utility): phantoms know their findings from the parameters that drew
them (phantom.phantom_anatomy); DICOM folders and caches look their images' ids up in
VinBigData's train.csv.

Label names are the phantom's (``cardiomegaly``, ``effusion``, ``nodule``); on VinBigData each
is a class of train.csv (``VINBIG_CLASS``), positive when any radiologist marked it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..config import DataConfig
from ..errors import DataError
from ..safeio import read_bounded
from .base import ImageSet, parse_spec
from .cache import read_index
from .dicom import class_key, find_labels_csv, read_labels
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
    name = class_key(VINBIG_CLASS[label])
    return np.array([any(class_key(n) == name for n in table[i]) for i in data.ids], np.float64)


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


MIN_TEST_IMAGES = 20
"""Held-out images the utility test needs at least: its AUROC intervals resample them."""
MIN_PER_CLASS = 2
"""Images of each class (with and without the label) every labelled set needs at least: a
classifier cannot learn, nor an AUROC rank, a class that is absent."""


def _classes(y: np.ndarray, what: str, cfg: DataConfig, label: str) -> None:
    pos = int(np.sum(y == 1))
    neg = len(y) - pos
    if min(pos, neg) < MIN_PER_CLASS:
        raise DataError(
            f"--data {cfg.source}: the {what} images hold {pos} with {label} and {neg} without; "
            f"the utility test needs at least {MIN_PER_CLASS} of each (labels: phantom:v2 draws "
            "findings; on DICOM, train.csv's class names, matched ignoring case and spaces)")


def unlabelled_reason(source: str) -> str:
    """Why ``source`` (a data spec) carries no labels for the utility test; "" when it does
    (phantom:v2, whose generator draws findings; DICOM folders and caches, via train.csv). The
    one rule the utility sweep's cells and ``xraygan metrics --utility`` both apply."""
    kind, arg = parse_spec(source)
    if kind == "phantom" and PhantomSeries.parse(arg).version != 2:
        return ("the original phantoms draw no findings to label (their heart sizes are not "
                "cardiomegaly labels): use phantom:v2")
    if kind not in ("phantom", "dicom", "cache"):
        return "an image folder carries no labels"
    return ""


def utility_labels(cfg: DataConfig, image_size: int, label: str, max_heldout: int
                   ) -> tuple[tuple[ImageSet, np.ndarray], tuple[ImageSet, np.ndarray]]:
    """((training images, labels), (held-out images, labels)) for the utility test, checked
    as the sweep's preflight and ``xraygan metrics --utility`` both check them, before any
    training: labels present and readable, both classes in each set, and a held-out part of
    at least MIN_TEST_IMAGES. DataError (one line, naming the data and the flag) otherwise."""
    why = unlabelled_reason(cfg.source)
    if why:
        raise DataError(f"--data {cfg.source}: the utility test needs labelled images: {why}, "
                        "or a VinBigData DICOM folder with train.csv (dicom:PATH)")
    real, y_real = training_labels(cfg, image_size, label)
    _classes(y_real, "training", cfg, label)
    try:
        test, y_test = heldout_labels(cfg, image_size, label, max_heldout)
    except DataError as e:
        if "holdout" not in str(e):
            raise
        raise DataError(f"--holdout {cfg.holdout:g} of --data {cfg.source}: the utility test "
                        f"needs held-out real images to test on; give --holdout F with "
                        f"0 < F <= 0.5 ({e})") from None
    if len(test) < MIN_TEST_IMAGES:
        raise DataError(f"--holdout {cfg.holdout:g} of --data {cfg.source} holds out "
                        f"{len(test)} image(s); the utility test needs at least "
                        f"{MIN_TEST_IMAGES}: give a larger --holdout")
    _classes(y_test, "held-out", cfg, label)
    return (real, y_real), (test, y_test)


def labels_digest(cfg: DataConfig) -> str:
    """sha256 of the labels file the labels of ``cfg`` come from ("" for phantoms, whose
    labels are drawn with the images: the data fingerprint covers them)."""
    if parse_spec(cfg.source)[0] == "phantom":
        return ""
    csv = _csv_of(cfg)
    return hashlib.sha256(read_bounded(csv, "labels_bytes", f"labels file {csv}",
                                       error=DataError)).hexdigest()
