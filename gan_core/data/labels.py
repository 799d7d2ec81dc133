"""Per-image labels of a dataset's training and held-out images, for the downstream utility
test (xraygan.metrics.utility): phantoms know their findings from the parameters that drew
them (phantom.phantom_anatomy); DICOM folders and caches look their images' ids up in
VinBigData's train.csv; a plain image folder (``folder:PATH``) looks its images' paths up in a
CSV of ``file,label`` rows: FOLDER/labels.csv, or the file ``folder:PATH,labels=FILE.csv``
names (:func:`read_folder_labels`).

Label names are the phantom's (``cardiomegaly``, ``effusion``, ``nodule``); on VinBigData each
is a class of train.csv (``VINBIG_CLASS``), positive when any radiologist marked it.
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import numpy as np

from ..config import DataConfig
from ..errors import DataError
from ..safeio import read_bounded
from .base import ImageSet, parse_spec
from .cache import read_index
from .dicom import _decode_text, class_key, find_labels_csv, read_labels
from .dicom_writer import SERIES_CLASSES
from .folder import list_image_files
from .folderspec import LABELS_FILE, folder_labels_path, missing_labels_file
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
    elif kind == "folder":
        return _folder_csv(arg or "")
    else:
        raise DataError(f"data.source {cfg.source!r} has no labels: use phantom:v2 (findings drawn "
                        "by the generator), a VinBigData DICOM folder (dicom:PATH with train.csv) "
                        f"or an image folder with {FOLDER_HINT}")
    csv = find_labels_csv(root)
    if csv is None:
        raise DataError(f"{root}: no train.csv (VinBigData labels) in the folder or beside it")
    return csv


FOLDER_COLUMNS = ("file", "label")
FOLDER_HINT = (f"labels: {LABELS_FILE} in the folder (header file,label; one row per image) "
               "or folder:PATH,labels=FILE.csv")
BINARY = ("0", "1")


def _folder_csv(arg: str) -> Path:
    """The labels CSV of ``folder:ARG``: named by labels=, else FOLDER/labels.csv."""
    root, path, named = folder_labels_path(arg)
    if named:
        why = missing_labels_file(arg)
        if why:
            raise DataError(why)
    elif not path.is_file():
        raise DataError(f"folder {root}: no {LABELS_FILE} (the utility test needs {FOLDER_HINT})")
    return path


def _norm_file(name: str) -> str:
    """A file cell as the folder's image ids are spelled: relative, '/'-separated."""
    name = name.strip().replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    return name


def read_folder_labels(csv_path: str | Path) -> dict[str, tuple[int, str]]:
    """A plain folder's labels CSV -> {file relative to the folder: (line, label as written)}.

    The first non-blank row is the header and must name the columns ``file`` and ``label``
    (any case, other columns ignored); each row names one image by its path relative to the
    folder (``a.png``, ``sub/b.png``; backslashes read as '/') once, with a label: 0/1, or a
    class name. Read bounded (XRAYGAN_MAX_LABELS_BYTES), UTF-8 or a Windows code page. Any
    row that cannot be used is a one-line DataError naming FILE:LINE and what was expected.
    """
    csv_path = Path(csv_path)
    text, _ = _decode_text(csv_path)
    if "\x00" in text:  # a binary file (an image, a spreadsheet) under the CSV's name
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise DataError(f"{csv_path}:{line}: not a readable CSV file (a NUL byte: binary data; "
                        "expected text rows file,label)")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)  # a quote left open: error
    header: list[str] | None = None
    out: dict[str, tuple[int, str]] = {}
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            line = reader.line_num
            if header is None:
                header = [c.strip().lstrip("\ufeff").lower() for c in row]
                missing = [c for c in FOLDER_COLUMNS if c not in header]
                if missing:
                    raise DataError(
                        f"{csv_path}:{line}: expected a header row naming the columns "
                        f"{','.join(FOLDER_COLUMNS)}; missing {', '.join(missing)} (first row: "
                        f"{','.join(c.strip() for c in row)[:120]})")
                i_file, i_label = header.index("file"), header.index("label")
                continue
            if len(row) != len(header):
                raise DataError(f"{csv_path}:{line}: {len(row)} field(s), the header has "
                                f"{len(header)} ({','.join(header)})")
            name, value = _norm_file(row[i_file]), row[i_label].strip()
            if not name:
                raise DataError(f"{csv_path}:{line}: empty file name (expected an image's path "
                                "relative to the folder, e.g. img001.png)")
            if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
                raise DataError(f"{csv_path}:{line}: {name} is an absolute path (expected the "
                                "image's path relative to the folder, e.g. img001.png)")
            if not value:
                raise DataError(f"{csv_path}:{line}: no label for {name} (expected 0/1 or a "
                                "class name)")
            if name in out:
                raise DataError(f"{csv_path}:{line}: {name} is labelled again (first on line "
                                f"{out[name][0]}); give each image one row")
            out[name] = (line, value)
    except csv.Error as e:  # a NUL byte, a quote left open to the end of the file
        raise DataError(f"{csv_path}:{reader.line_num}: not a readable CSV file ({e})") from None
    if header is None:
        raise DataError(f"{csv_path}: empty (expected a header row file,label and one row per "
                        "image)")
    if not out:
        raise DataError(f"{csv_path}: no data rows after the header (expected one row per "
                        "image: file,label)")
    return out


def folder_label_vector(csv_path: Path, root: Path, ids: tuple[str, ...], label: str
                        ) -> np.ndarray:
    """0/1 ``label`` of each image ``ids`` (paths relative to ``root``) from its labels CSV:
    1 for "1", or a class name that is ``label`` or its VinBigData name (Cardiomegaly, Pleural
    effusion, Nodule/Mass), matched by :func:`class_key` (case and spaces ignored); 0 for "0"
    or any other class. Refused (DataError naming FILE:LINE): a row naming no image file of
    the folder, an image of the folder without a row, 0/1 mixed with class names, every row
    one class."""
    table = read_folder_labels(csv_path)
    on_disk = {p.relative_to(root).as_posix() for p in list_image_files(root)}
    folded = {f.casefold(): f for f in on_disk}
    for name, (line, _) in table.items():
        if name not in on_disk:
            near = folded.get(name.casefold())
            hint = f" ({near} is: file names match case-sensitively)" if near else ""
            raise DataError(f"{csv_path}:{line}: {name} is no image file of folder {root}"
                            f"{hint}; expected paths relative to the folder")
    missing = [i for i in ids if i not in table]
    if missing:
        raise DataError(f"{csv_path}: no row for {len(missing)} image(s) of folder {root}, e.g. "
                        f"{missing[0]}; every image needs a label (file,label)")
    values = {name: v for name, (_, v) in table.items()}
    binary = [n for n, v in values.items() if v in BINARY]
    if binary and len(binary) < len(values):
        other = next(n for n, v in values.items() if v not in BINARY)
        raise DataError(f"{csv_path}:{table[other][0]}: label {values[other]!r} is a class name, "
                        f"line {table[binary[0]][0]} is {values[binary[0]]}; give 0/1 or class "
                        "names throughout")
    if binary:
        positive = {n for n, v in values.items() if v == "1"}
    else:
        wanted = {class_key(label), class_key(VINBIG_CLASS[label])}
        positive = {n for n, v in values.items() if class_key(v) in wanted}
        if not positive:
            classes = sorted({v for v in values.values()}, key=class_key)
            raise DataError(
                f"{csv_path}: no row has the class {label} (or {VINBIG_CLASS[label]}, any case); "
                f"its classes: {', '.join(classes[:8])}{', ...' if len(classes) > 8 else ''}; "
                f"label the images with {label} by that name, or give 0/1")
    if len(positive) in (0, len(values)):
        which = f"with {label}" if positive else f"without {label}"
        raise DataError(f"{csv_path}: every row is an image {which}; the utility test needs "
                        "images of both classes")
    return np.array([i in positive for i in ids], np.float64)


def _lookup(data: ImageSet, cfg: DataConfig, label: str) -> np.ndarray:
    kind, arg = parse_spec(cfg.source)
    if kind == "folder":
        if data.ids is None:
            raise DataError(f"{data.description}: the images carry no paths to look labels up by")
        root = folder_labels_path(arg or "")[0]
        return folder_label_vector(_csv_of(cfg), root, data.ids, label)
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
            "findings; on DICOM, train.csv's class names, matched ignoring case and spaces; "
            "on an image folder, its labels CSV)")


def unlabelled_reason(source: str) -> str:
    """Why ``source`` (a data spec) carries no labels for the utility test; "" when it does
    (phantom:v2, whose generator draws findings; DICOM folders and caches, via train.csv; an
    image folder with labels.csv or a ``labels=`` key, whose file is then read and checked by
    :func:`utility_labels`). The one rule the utility sweep's cells and ``xraygan metrics
    --utility`` both apply."""
    kind, arg = parse_spec(source)
    if kind == "phantom" and PhantomSeries.parse(arg).version != 2:
        return ("the original phantoms draw no findings to label (their heart sizes are not "
                "cardiomegaly labels): use phantom:v2")
    if kind == "folder":
        root, csv_path, named = folder_labels_path(arg or "")
        if named or csv_path.is_file():
            return ""
        return f"the image folder {root} has no {FOLDER_HINT}"
    if kind not in ("phantom", "dicom", "cache"):
        return f"a {kind} dataset carries no labels"
    return ""


def utility_labels(cfg: DataConfig, image_size: int, label: str, max_heldout: int
                   ) -> tuple[tuple[ImageSet, np.ndarray], tuple[ImageSet, np.ndarray]]:
    """((training images, labels), (held-out images, labels)) for the utility test, checked
    as the sweep's preflight and ``xraygan metrics --utility`` both check them, before any
    training: labels present and readable, both classes in each set, and a held-out part of
    at least MIN_TEST_IMAGES. DataError (one line, naming the data and the flag) otherwise."""
    why = unlabelled_reason(cfg.source)
    if why:
        raise DataError(f"--data {cfg.source}: the utility test needs labelled images: {why}; "
                        "or phantom:v2, or a VinBigData DICOM folder with train.csv (dicom:PATH)")
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
