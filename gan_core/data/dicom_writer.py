"""Phantom radiographs laid out as a VinBigData (VinDr-CXR) folder, for tests and demos.

No chest X-ray training set is installable offline (``shared/notes/dicom-data.md``), so the
real loader is exercised end to end on phantoms written the way the Kaggle files are:

    OUT/train/<32-hex image_id>.dicom   CR, 16 bits allocated / 12 stored, unsigned, not square,
                                        MONOCHROME1 and MONOCHROME2 mixed, JPEG 2000 lossless
                                        (VinBigData's transfer syntax) or uncompressed
    OUT/test/<32-hex image_id>.dicom    optional, no labels (as in the Kaggle set)
    OUT/train.csv                       image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max
                                        three radiologist rows per image

Stored values use a random sub-range of the 12 bits per image (real detectors never span the
full range), so the loader's robust scaling is exercised. Labels: "Nodule/Mass" images are
rendered with the phantom's nodules on; the other findings are drawn at random and do not
match the pixels (they exist to test label filtering, not diagnosis). With a version-2 phantom
series (``series=``, ``xraygan data write-dicom --series v2``) the labels are the phantom's
own findings instead (Cardiomegaly, Pleural effusion, Nodule/Mass, marked by every
radiologist), so a classifier trained through the DICOM loader learns what the pixels show.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, generate_uid

from ..errors import ConfigError, UserFileError
from ..runs import atomic_write_bytes, atomic_write_text
from .phantom import generate_phantoms, phantom_anatomy

CODECS = ("j2k", "raw")
MIN_J2K_SIDE = 32  # OpenJPEG refuses to encode smaller images with its default 6 resolution levels

# VinBigData's 15 classes, class_id = position.
VINBIG_CLASSES = (
    "Aortic enlargement", "Atelectasis", "Calcification", "Cardiomegaly", "Consolidation", "ILD",
    "Infiltration", "Lung Opacity", "Nodule/Mass", "Other lesion", "Pleural effusion",
    "Pleural thickening", "Pneumothorax", "Pulmonary fibrosis", "No finding",
)
NODULE = VINBIG_CLASSES.index("Nodule/Mass")
NO_FINDING = VINBIG_CLASSES.index("No finding")
# a version-2 phantom's findings (phantom.LABELS) as VinBigData classes
SERIES_CLASSES = (("cardiomegaly", "Cardiomegaly"), ("effusion", "Pleural effusion"),
                  ("nodule", "Nodule/Mass"))
CSV_COLUMNS = ("image_id", "class_name", "class_id", "rad_id", "x_min", "y_min", "x_max", "y_max")
CR_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1"  # Computed Radiography Image Storage


def image_id(seed: int, index: int, split: str = "train") -> str:
    """32 hex characters, like VinBigData's ids; stable for (seed, index, split)."""
    return hashlib.md5(f"xraygan-phantom/{split}/{seed}/{index}".encode()).hexdigest()


def _shape(rng: np.random.Generator, size: int, jitter: float) -> tuple[int, int]:
    """Not square, as real plates: one side ``size``, the other up to ``jitter`` shorter."""
    short = max(MIN_J2K_SIDE, int(round(size * (1.0 - rng.uniform(0.0, jitter)))))
    return (size, short) if rng.random() < 0.5 else (short, size)


def _centre_crop(img: np.ndarray, h: int, w: int) -> np.ndarray:
    top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return img[top : top + h, left : left + w]


def phantom_dataset(img01: np.ndarray, *, monochrome1: bool, rng: np.random.Generator,
                    codec: str, sop_uid_seed: str):
    """One phantom image in [0, 1] (display convention) -> a pydicom Dataset."""
    h, w = img01.shape
    lo, hi = int(rng.integers(0, 600)), int(rng.integers(3000, 4096))
    stored = np.rint(lo + img01 * (hi - lo)).astype(np.uint16)  # 12 bits in 16
    if monochrome1:
        stored = (4095 - stored).astype(np.uint16)  # MONOCHROME1: the highest value displays black

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CR_SOP_CLASS
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[sop_uid_seed])
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CR_SOP_CLASS
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[sop_uid_seed, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[sop_uid_seed, "series"])
    # De-identified and sparse, as in VinBigData; MONOCHROME2 files get the fuller header
    # (modality, rescale, a window spanning the stored range) of other exports.
    ds.PatientID = sop_uid_seed[:16]
    ds.PatientSex = str(rng.choice(["M", "F", "O"]))
    ds.PatientAge = f"{int(rng.integers(18, 90)):03d}Y"
    ds.BodyPartExamined = "CHEST"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.Rows, ds.Columns = h, w
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelSpacing = [0.15, 0.15]
    if not monochrome1:
        ds.Modality = "CR"
        ds.ViewPosition = "PA"
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
        ds.WindowCenter, ds.WindowWidth = (lo + hi) // 2, hi - lo
    ds.PixelData = stored.tobytes()
    if codec == "j2k":
        ds.compress(JPEG2000Lossless, stored, encoding_plugin="pylibjpeg")
    return ds


def _dicom_bytes(ds) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _box(rng: np.random.Generator, h: int, w: int) -> list[str]:
    x0, y0 = rng.uniform(0.1, 0.6) * w, rng.uniform(0.1, 0.6) * h
    bw, bh = rng.uniform(0.05, 0.3) * w, rng.uniform(0.05, 0.3) * h
    return [f"{x0:.1f}", f"{y0:.1f}", f"{min(w, x0 + bw):.1f}", f"{min(h, y0 + bh):.1f}"]


def write_phantom_dicoms(
    out: str | Path,
    count: int,
    size: int,
    seed: int = 0,
    *,
    codec: str = "j2k",
    test_count: int = 0,
    finding_prob: float = 0.4,
    monochrome1_prob: float = 0.5,
    aspect_jitter: float = 0.15,
    series=None,
    force: bool = False,
) -> list[Path]:
    """Write ``count`` train (+ ``test_count`` test) phantom DICOMs and train.csv under ``out``.

    Returns the written DICOM paths (train first). Image ``i`` depends only on
    (seed, i, size, codec); ``finding_prob`` is the share of train images with a finding.
    A ``series`` (phantom.PhantomSeries) renders that series and labels each image with the
    findings it drew (``finding_prob`` is then unused). A train.csv or DICOM file of the
    same name already in ``out`` (a user's labels, another series) is refused before anything
    is written, unless ``force``.
    """
    if codec not in CODECS:
        raise ConfigError(f"codec: expected one of {', '.join(CODECS)}, got {codec!r}")
    if count < 1 or test_count < 0:
        raise ConfigError(f"count: expected >= 1 train images and >= 0 test images, got {count}, {test_count}")
    if codec == "j2k" and size < MIN_J2K_SIDE:
        raise ConfigError(f"size: JPEG 2000 needs at least {MIN_J2K_SIDE} px, got {size}; use --codec raw")
    out = Path(out)
    if not force:
        targets = [out / "train.csv"] + [out / split / f"{image_id(seed, i, split)}.dicom"
                                         for split, n in (("train", count), ("test", test_count))
                                         for i in range(n)]
        there = [p for p in targets if os.path.lexists(p)]
        if there:
            raise UserFileError(f"{there[0]} exists ({len(there)} of the {len(targets)} files "
                                f"to write are in {out}): choose a new folder, or pass --force "
                                "to replace them")
    paths: list[Path] = []
    rows: list[list[str]] = []
    for split, n in (("train", count), ("test", test_count)):
        if n:
            (out / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            rng = np.random.default_rng([seed, i, 0 if split == "train" else 1])
            iid = image_id(seed, i, split)
            classes = [NO_FINDING]
            if split == "train" and rng.random() < finding_prob:
                classes = [int(c) for c in rng.choice(NO_FINDING, size=int(rng.integers(1, 3)), replace=False)]
            # test images use indices after the train ones, so no phantom appears twice
            index = i if split == "train" else count + i
            if series is not None:
                drawn = phantom_anatomy(1, seed, start=index, series=series)
                found = [VINBIG_CLASSES.index(name) for key, name in SERIES_CLASSES if drawn[key][0]]
                classes = (found or [NO_FINDING]) if split == "train" else [NO_FINDING]
                img = generate_phantoms(1, size, seed, start=index, series=series)[0]
            else:
                has_nodule = NODULE in classes
                img = generate_phantoms(1, size, seed, start=index, nodule_prob=1.0 if has_nodule else 0.0)[0]
            h, w = _shape(rng, size, aspect_jitter)
            img = _centre_crop(img, h, w)
            ds = phantom_dataset(img, monochrome1=bool(rng.random() < monochrome1_prob), rng=rng,
                                 codec=codec, sop_uid_seed=iid)
            path = out / split / f"{iid}.dicom"
            atomic_write_bytes(path, _dicom_bytes(ds))
            paths.append(path)
            if split != "train":
                continue
            for rad in ("R8", "R9", "R10"):
                if classes == [NO_FINDING]:
                    rows.append([iid, VINBIG_CLASSES[NO_FINDING], str(NO_FINDING), rad, "", "", "", ""])
                    continue
                # as in VinDr-CXR, not every radiologist marks every finding (a series' own
                # findings are marked by all: they are facts of the image)
                marked = [c for c in classes if rng.random() < 0.7] or [classes[0]]
                if series is not None:
                    marked = classes
                for c in marked:
                    rows.append([iid, VINBIG_CLASSES[c], str(c), rad, *_box(rng, h, w)])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    atomic_write_text(out / "train.csv", buf.getvalue())
    return paths
