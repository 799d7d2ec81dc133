"""DICOM chest radiographs -> square uint8 images at the training sizes, and the ``dicom`` loader.

One file goes through one fixed pipeline (the usual radiograph preprocessing, see
``shared/notes/dicom-data.md``), and every requested size comes from that one decode, because
the decode dominates (about 0.5 s for a 2000-3000 px JPEG 2000 image):

    pixels --modality LUT--> --VOI LUT or window (when the header has one)-->
      --robust scale to [0, 1] (percentiles)--> --invert MONOCHROME1--> --square policy-->
      --antialiased resize to each size--> uint8

Files that cannot give a sensible image raise :class:`BadFile` with one of :data:`REASONS`;
preparation (``cache.build_cache``) records them instead of stopping. Files are keyed by their
name stem, which is the ``image_id`` of VinBigData's ``train.csv`` (their SOP Instance UIDs are
hex strings that pydicom warns about, so the header is no good key).

The ``dicom:PATH`` loader prepares (or reuses) the cache for the requested size, then loads it;
see :func:`prepare` for where the cache lives and when it is rebuilt.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom import filereader
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from ..config import DataConfig
from ..errors import ConfigError, DataError
from ..safeio import LIMITS
from . import cache, imageops, limits
from .base import DATASETS, ImageSet
from .codestream import DEFLATED, declared_size, inflated_size
from .walk import walk_files

# Reasons a file is skipped; the first word(s) of every skipped entry's reason.
NOT_DICOM = "not DICOM"
TRUNCATED = "truncated"
NO_PIXELS = "no pixel data"
UNDECODABLE = "undecodable"
WRONG_SHAPE = "wrong shape"
NOT_FINITE = "not finite"
CONSTANT = "constant"
UNREADABLE = "unreadable"
TOO_LARGE = "too large"  # header claims more pixels than the cap (see limits.py): not decoded
CORRUPT = "corrupt"  # decoded values the header says cannot occur (a damaged codestream)
REASONS = (NOT_DICOM, TRUNCATED, NO_PIXELS, UNDECODABLE, WRONG_SHAPE, NOT_FINITE, CONSTANT,
           UNREADABLE, TOO_LARGE, CORRUPT)
# Reasons that depend on this run's settings, not on the file: not journaled, so a rerun with a
# higher --max-pixels decodes the file.
NOT_JOURNALED = (TOO_LARGE,)

DICOM_SUFFIXES = (".dcm", ".dicom")
MIN_SIDE = 8  # smaller "images" are header junk, not radiographs (pydicom's tiny CR files are 16)
PREP_VERSION = 1  # bump when the pixel pipeline changes, so old caches are rebuilt

# VinBigData (VinDr-CXR) train.csv: several rows per image, one per radiologist finding.
VINBIG_COLUMNS = ("image_id", "class_name", "class_id", "rad_id", "x_min", "y_min", "x_max", "y_max")
NO_FINDING = "No finding"


class BadFile(Exception):
    """A file that gives no usable image; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class PrepSettings:
    """How pixels become training images; part of the cache fingerprint."""

    sizes: tuple[int, ...] = (64,)
    square: str = "crop"  # crop | pad | squash, see imageops
    # Robust scaling: the 0.5th / 99.5th percentiles map to 0 / 1, so a few hot pixels,
    # burned-in labels or collimator edges do not squeeze the anatomy into a few grey levels.
    low_percentile: float = 0.5
    high_percentile: float = 99.5
    use_voi: bool = True  # apply the header's VOI LUT / window when it has one
    # Largest rows x columns x frames decoded (limits.py); a resource cap, not a pixel setting,
    # so it is left out of the cache key. Carried here because workers need it.
    max_pixels: int = field(default_factory=limits.max_pixels)

    def __post_init__(self) -> None:
        if int(self.max_pixels) < 1:
            raise ConfigError(f"max_pixels: expected a number of pixels >= 1, got {self.max_pixels}")
        if not self.sizes or any(int(s) < 4 for s in self.sizes):
            raise ConfigError(f"sizes: expected one or more sizes >= 4 px, got {list(self.sizes)}")
        object.__setattr__(self, "sizes", tuple(sorted({int(s) for s in self.sizes})))
        if self.square not in imageops.SQUARE_POLICIES:
            raise ConfigError(
                f"square: expected one of {', '.join(imageops.SQUARE_POLICIES)}, got {self.square!r}"
            )
        if not 0.0 <= self.low_percentile < self.high_percentile <= 100.0:
            raise ConfigError(
                "percentiles: expected 0 <= low < high <= 100, got "
                f"{self.low_percentile}, {self.high_percentile}"
            )

    def key(self) -> dict[str, Any]:
        d = asdict(self)
        del d["max_pixels"]
        return {"prep_version": PREP_VERSION, **d, "sizes": list(self.sizes)}


# --------------------------------------------------------------------------- one file


def check_deflated(path: str | Path) -> None:
    """Refuse a deflated data set that would inflate past ``$XRAYGAN_MAX_DICOM_INFLATED``
    before pydicom inflates it in memory (codestream.py); a no-op for other files."""
    try:
        with open(path, "rb") as f:
            if filereader.read_preamble(f, False) is None:
                return
            meta = filereader._read_file_meta_info(f)
            if str(meta.get("TransferSyntaxUID", "")) != DEFLATED:
                return
            limit = LIMITS["dicom_inflated"]
            size = inflated_size(f, limit.value())
    except Exception:  # not DICOM, truncated, unreadable: dcmread names the reason
        return
    if size > limit.value():
        raise BadFile(TOO_LARGE, "deflated data set " + limit.exceeded(
            f"inflates to more than {limit.value():,} bytes"))


def check_codestream(ds, max_pixels: int) -> None:
    """Refuse an encapsulated codestream whose own declared size (JPEG 2000 SIZ, JPEG SOF)
    exceeds the cap or contradicts the header: the decoder allocates what the stream says."""
    meta = ds.get("file_meta")
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid is None or not getattr(uid, "is_encapsulated", False) or "PixelData" not in ds:
        return
    found = declared_size(ds.PixelData)
    if found is None:
        return
    width, height, comps, what = found
    frames = max(1, _header_int(ds, "NumberOfFrames", 1))
    detail = limits.too_large(width * height * max(comps, 1) * frames, max_pixels)
    if detail:
        raise BadFile(TOO_LARGE, f"the {what} declares {width}x{height}, {comps} component(s) "
                      f"x {frames} frame(s): {detail}")
    rows, cols = _header_int(ds, "Rows", 0), _header_int(ds, "Columns", 0)
    if (height, width) != (rows, cols):
        raise BadFile(CORRUPT, f"the {what} declares {width}x{height} but the header says "
                      f"{cols}x{rows} (columns x rows): a damaged or mismatched codestream")


def _read(path: str | Path):
    """dcmread with pydicom's exceptions turned into :class:`BadFile` reasons."""
    check_deflated(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(path)
        except InvalidDicomError:
            empty = Path(path).stat().st_size == 0
            raise BadFile(NOT_DICOM, "empty file" if empty else "no DICM preamble or file meta header") from None
        except (EOFError, OSError) as e:
            raise BadFile(TRUNCATED if isinstance(e, EOFError) else UNREADABLE, str(e)) from None
        except Exception as e:  # a header pydicom cannot parse (struct errors, bad lengths)
            raise BadFile(TRUNCATED, f"header unreadable ({type(e).__name__}: {e})") from None
    # pydicom warns (and keeps going) when the file ends inside an element: the truncated
    # JPEG 2000 case of dicom-data.md, whose pixel_array then fails with AttributeError.
    truncation = [str(w.message) for w in caught if "end of file" in str(w.message).lower()
                  or "truncat" in str(w.message).lower()]
    return ds, truncation


def _header_int(ds, name: str, default: int) -> int:
    try:
        value = ds.get(name, default)
        return int(value if value not in (None, "") else default)
    except (TypeError, ValueError):
        raise BadFile(UNDECODABLE, f"header {name} is {ds.get(name)!r}, not a number") from None


def check_header_size(ds, max_pixels: int) -> None:
    """Refuse a file whose header claims more than ``max_pixels`` before anything is decoded.

    The header is the only cheap look at the size: a 4 KB JPEG 2000 file can claim 20000 x
    20000 and make the decoder allocate gigabytes (rows x columns x frames x samples at
    BitsAllocated, then float64 copies in the pipeline).
    """
    rows, cols = _header_int(ds, "Rows", 0), _header_int(ds, "Columns", 0)
    frames = max(1, _header_int(ds, "NumberOfFrames", 1))
    spp = max(1, _header_int(ds, "SamplesPerPixel", 1))
    bits = _header_int(ds, "BitsAllocated", 16)
    pixels = rows * cols * frames * spp
    detail = limits.too_large(pixels, max_pixels)
    if detail:
        raise BadFile(TOO_LARGE, f"header says {rows}x{cols}, {frames} frame(s), {spp} sample(s), "
                      f"{bits} bits allocated ({pixels * max(bits, 8) // 8 / 2**20:,.0f} MiB "
                      f"decoded): {detail}")


def check_stored_range(raw: np.ndarray, ds) -> None:
    """Values outside what BitsStored allows mean a damaged stream (or a lying header).

    A JPEG 2000 codestream of 16-bit precision with a few kB overwritten still decodes, to
    blocks of values up to 65535 while BitsStored is 12 (measured on phantoms: 23 of 160
    overwrite positions); training on that would teach the GAN the garbage.
    """
    bits = _header_int(ds, "BitsStored", 0)
    if not 1 <= bits < 32 or raw.dtype.kind not in "iu":
        return
    signed = _header_int(ds, "PixelRepresentation", 0) == 1
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    rmin, rmax = int(raw.min()), int(raw.max())
    if rmin < lo or rmax > hi:
        out = int(np.count_nonzero((raw < lo) | (raw > hi)))
        raise BadFile(CORRUPT, f"{out} of {raw.size} decoded values ({100 * out / raw.size:.2g} %) "
                      f"lie outside {lo}..{hi}, the range of BitsStored {bits} "
                      f"(decoded {rmin}..{rmax}): a damaged pixel stream or a wrong header")


def decode_pixels(path: str | Path, use_voi: bool = True,
                  max_pixels: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Raw pixels after the modality LUT and VOI, as float64 (H, W), plus header facts.

    Raises :class:`BadFile` for every way a file can fail: a header claiming more than
    ``max_pixels`` (default: limits.max_pixels()) is refused before decoding; pixels that
    decode but are nonsense (outside BitsStored, wrong shape, not finite, constant) too.
    """
    ds, truncation = _read(path)
    meta = ds.get("file_meta")
    if meta is None or "TransferSyntaxUID" not in meta:
        # A 200-byte stub: the preamble and part of the file meta, then nothing.
        if "PixelData" not in ds:
            raise BadFile(TRUNCATED, "file ends in the header (no transfer syntax)")
    if not any(tag in ds for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        if truncation:
            raise BadFile(TRUNCATED, truncation[0])
        raise BadFile(NO_PIXELS, "the file has no Pixel Data element")
    cap = limits.max_pixels() if max_pixels is None else max_pixels
    check_header_size(ds, cap)
    check_codestream(ds, cap)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Invalid value for VR UI" on hex UIDs
            raw = ds.pixel_array
    except ValueError as e:
        msg = str(e)
        reason = TRUNCATED if ("shorter" in msg or "fewer" in msg or "expected" in msg) else UNDECODABLE
        raise BadFile(reason, msg.split("\n")[0]) from None
    except AttributeError as e:
        raise BadFile(TRUNCATED if truncation else UNDECODABLE, truncation[0] if truncation else str(e)) from None
    except RuntimeError as e:  # no decoder plugin, or every plugin failed on the stream
        raise BadFile(UNDECODABLE, str(e).split("\n")[0]) from None
    except Exception as e:
        raise BadFile(UNDECODABLE, f"{type(e).__name__}: {e}") from None

    check_stored_range(raw, ds)
    if raw.ndim == 3 and raw.shape[0] == 1:
        raw = raw[0]
    if raw.ndim != 2 or min(raw.shape) < MIN_SIDE:
        spp = int(ds.get("SamplesPerPixel", 1) or 1)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        raise BadFile(
            WRONG_SHAPE,
            f"expected one greyscale frame of at least {MIN_SIDE}x{MIN_SIDE}, got shape "
            f"{tuple(raw.shape)} ({frames} frame(s), {spp} sample(s) per pixel)",
        )
    with np.errstate(all="ignore"):
        img = np.asarray(apply_modality_lut(raw, ds), dtype=np.float64)
    if not np.isfinite(img).all():
        bad = int((~np.isfinite(img)).sum())
        raise BadFile(NOT_FINITE, f"{bad} of {img.size} pixels are NaN or infinite after the modality LUT")
    if img.max() == img.min():
        raise BadFile(CONSTANT, f"every pixel is {img.flat[0]:g}")

    voi = "none"
    if use_voi and ("VOILUTSequence" in ds or "WindowCenter" in ds):
        try:
            with np.errstate(all="ignore"):
                windowed = np.asarray(apply_voi_lut(img, ds), dtype=np.float64)
            # A window that leaves one grey level (all pixels outside it) or produces junk is a
            # header mistake, not a bad image: fall back to the robust scaling of the raw values.
            if np.isfinite(windowed).all() and windowed.max() > windowed.min():
                img, voi = windowed, ("lut" if "VOILUTSequence" in ds else "window")
        except Exception:
            pass
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    info = {
        "shape": [int(raw.shape[0]), int(raw.shape[1])],
        "photometric": photometric,
        "transfer_syntax": str(meta.get("TransferSyntaxUID", "")) if meta is not None else "",
        "voi": voi,
    }
    return img, info


def robust_scale(img: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Map the ``low`` / ``high`` percentiles to 0 / 1 and clip; float32.

    Percentiles come from every 4th pixel in both directions: 16x fewer pixels, the same
    values to a fraction of a grey level, at 3000 px the difference between 10 ms and 200 ms.
    """
    step = max(1, min(img.shape) // 256)
    sample = img[::step, ::step]
    lo, hi = np.percentile(sample, [low, high])
    if hi <= lo:  # most pixels equal (e.g. a wide black border): fall back to the full range
        lo, hi = float(img.min()), float(img.max())
    if hi <= lo:
        raise BadFile(CONSTANT, f"every pixel is {lo:g}")
    out = (img - lo) / (hi - lo)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def preprocess(img: np.ndarray, info: dict[str, Any], settings: PrepSettings) -> dict[int, np.ndarray]:
    """Decoded pixels -> {size: uint8 (size, size)}; lungs dark, bone bright."""
    x = robust_scale(img, settings.low_percentile, settings.high_percentile)
    if info["photometric"] == "MONOCHROME1":
        x = 1.0 - x  # MONOCHROME1: high values display dark; flip so lungs are dark, bone bright
    x = imageops.to_square(x, settings.square)
    return {s: imageops.to_uint8(imageops.resize(x, s)) for s in settings.sizes}


def process_file(path: str | Path, settings: PrepSettings) -> tuple[dict[int, np.ndarray], dict[str, Any]]:
    """Decode one DICOM file once and return every size; raises :class:`BadFile`.

    Top-level and picklable: the preparation workers call it through ``functools.partial``.
    """
    img, info = decode_pixels(path, settings.use_voi, settings.max_pixels)
    return preprocess(img, info, settings), info


# --------------------------------------------------------------------------- a folder


@dataclass(frozen=True)
class SourceFile:
    """One candidate file: absolute path, path relative to the source, stat facts."""

    path: str
    rel: str
    size: int
    mtime_ns: int

    @property
    def image_id(self) -> str:
        return Path(self.rel).stem

    def key(self) -> str:
        """Identity of this file's content for the journal: a changed file is decoded again."""
        return f"{self.rel}|{self.size}|{self.mtime_ns}"


def _has_preamble(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def find_dicom_files(root: str | Path, skip: Iterable[str | Path] = (),
                     problems: list[tuple[str, str]] | None = None) -> list[SourceFile]:
    """Every DICOM candidate under ``root``, sorted by relative path.

    Candidates are ``*.dcm`` / ``*.dicom`` files (whatever they hold: a broken one is reported,
    not ignored) and files of any other name that start with the DICM preamble (hospital
    exports often have no suffix). Symlinked folders (a linked ``train/``) are followed; hidden
    folders and ``skip`` (the cache) are not entered. Symlink loops, broken links and unreadable
    entries go to ``problems`` as (path, reason) (see walk.py).
    """
    root = Path(root)
    found: list[SourceFile] = []
    for p in walk_files(root, problems, skip=skip):
        if p.suffix.lower() not in DICOM_SUFFIXES and not _has_preamble(p):
            continue
        try:
            st = p.stat()
        except OSError as e:
            if problems is not None:
                problems.append((str(p), f"{UNREADABLE}: {e.strerror or e}"))
            continue
        # the path as reached (through links), so ids and relative paths are the user's names
        found.append(SourceFile(str(p.absolute()), p.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
    found.sort(key=lambda f: f.rel)
    return found


def find_labels_csv(root: str | Path) -> Path | None:
    """VinBigData's train.csv: in the source folder, or beside it when the source is train/."""
    root = Path(root)
    for p in (root / "train.csv", root.parent / "train.csv" if root.name == "train" else None):
        if p is not None and p.is_file():
            return p
    return None


@dataclass
class LabelTable:
    """What train.csv says: {image_id: class names}, {class_name: class_id}, and the rows that
    could not be used as ``problems`` ("FILE:LINE: why"), for the console summary."""

    labels: dict[str, set[str]]
    class_ids: dict[str, str]
    problems: list[str]
    encoding: str


def _decode_text(csv_path: Path) -> tuple[str, str]:
    """The text of a CSV file and its encoding: UTF-8 (a BOM is dropped), else Windows-1252 /
    Latin-1, as spreadsheets on Windows save it. Latin-1 decodes any bytes, so this never fails."""
    from ..safeio import read_bounded

    data = read_bounded(csv_path, "labels_bytes", f"labels file {csv_path}", error=DataError)
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte string")


def read_train_csv(csv_path: str | Path) -> LabelTable:
    """Parse VinBigData's train.csv; rows of every shape either parse or are listed with their
    line number in ``problems``.

    "No finding" is the absence of findings: an image is labelled "No finding" only when no
    radiologist marked anything on it, so ``--labels "No finding"`` gives clean normals. A row
    with an empty class_name is no label at all (not "No finding"): it takes its class from
    class_id when that is given, and is listed as a problem otherwise. A row with fewer or more
    fields than the header (a bare image_id line, an unquoted comma in a name) is listed and
    left out: its columns cannot be trusted.
    """
    csv_path = Path(csv_path)
    text, encoding = _decode_text(csv_path)
    reader = csv.reader(io.StringIO(text, newline=""))
    problems: list[str] = []
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue  # blank line
            if header is None:
                header = [c.strip().lstrip("\ufeff").lower() for c in row]
            else:
                rows.append((reader.line_num, [c.strip() for c in row]))
    except csv.Error as e:  # e.g. a NUL byte, or a quote left open to the end of the file
        raise DataError(f"{csv_path}:{reader.line_num}: not a readable CSV file ({e})") from None
    missing = {"image_id", "class_name"} - set(header or ())
    if missing:
        raise DataError(
            f"{csv_path}: expected VinBigData columns {', '.join(VINBIG_COLUMNS)}; "
            f"missing {', '.join(sorted(missing))} (header: {','.join(header or ['<empty file>'])})"
        )
    assert header is not None
    col = {name: i for i, name in reversed(list(enumerate(header)))}
    i_id, i_name, i_cid = col["image_id"], col["class_name"], col.get("class_id")

    good: list[tuple[int, str, str, str]] = []  # line, image_id, class_name, class_id
    for line, row in rows:
        if len(row) != len(header):
            problems.append(f"{csv_path}:{line}: {len(row)} field(s), the header has {len(header)} "
                            f"({','.join(header)}); row left out")
            continue
        image_id, name = row[i_id], row[i_name]
        cid = row[i_cid] if i_cid is not None else ""
        if not image_id:
            problems.append(f"{csv_path}:{line}: empty image_id; row left out")
            continue
        good.append((line, image_id, name, cid))
    ids = {name: cid for _, _, name, cid in good if name and cid}
    name_of_id = {cid: name for name, cid in ids.items()}

    names_of: dict[str, set[str]] = {}
    for line, image_id, name, cid in good:
        if not name:
            name = name_of_id.get(cid, "")
            if not name:
                problems.append(f"{csv_path}:{line}: empty class_name for image {image_id}"
                                + (f" (class_id {cid!r} is unknown)" if cid else "")
                                + "; row left out, it is not 'No finding'")
                continue
        names_of.setdefault(image_id, set()).add(name)
    if not names_of:
        first = "; ".join(problems[:3]) or "no data rows"
        raise DataError(f"{csv_path}: no usable label row ({first})")
    labels = {}
    for image_id, names in names_of.items():
        findings = {n for n in names if n != NO_FINDING}
        labels[image_id] = findings or {NO_FINDING}
    return LabelTable(labels, ids, problems, encoding)


def read_labels(csv_path: str | Path) -> dict[str, set[str]]:
    """train.csv -> {image_id: class names of the image} (see :func:`read_train_csv`)."""
    return read_train_csv(csv_path).labels


def class_ids(csv_path: str | Path) -> dict[str, str]:
    """{class_name: class_id} from train.csv (class ids are accepted for ``--labels``)."""
    return read_train_csv(csv_path).class_ids


def class_key(name: str) -> str:
    """The one rule class names match by, everywhere (``data prepare --labels``, the utility
    test's labels): case and runs of whitespace ignored, so "cardiomegaly " in train.csv is
    Cardiomegaly, never "no label at all"."""
    return " ".join(name.split()).casefold()


def resolve_labels(wanted: Sequence[str], csv_path: str | Path, labels: dict[str, set[str]],
                   by_id: dict[str, str] | None = None) -> set[str]:
    """User labels (class names, any case, or class ids) -> class names; unknown ones fail."""
    by_id = class_ids(csv_path) if by_id is None else by_id
    names = {n for s in labels.values() for n in s} | set(by_id)
    lower = {class_key(n): n for n in names}
    id_to_name = {v: k for k, v in by_id.items()}
    out: set[str] = set()
    for w in wanted:
        w = w.strip()
        if class_key(w) in lower:
            out.add(lower[class_key(w)])
        elif w in id_to_name:
            out.add(id_to_name[w])
        else:
            valid = ", ".join(f"{n} ({by_id[n]})" if n in by_id else n for n in sorted(names))
            raise ConfigError(f"labels: {w!r} is no class in {csv_path}; choose from: {valid}")
    return out


def select_files(root: str | Path, files: list[SourceFile], labels: Sequence[str] = (),
                 problems: list[str] | None = None) -> list[SourceFile]:
    """Keep the files whose image has one of ``labels`` in train.csv (all files when empty).

    Rows of train.csv that could not be used are appended to ``problems`` ("FILE:LINE: why").
    """
    if not labels:
        return files
    csv_path = find_labels_csv(root)
    if csv_path is None:
        raise DataError(f"{root}: --labels needs a VinBigData train.csv in the folder; there is none")
    table = read_train_csv(csv_path)
    if problems is not None:
        problems.extend(table.problems)
    wanted = resolve_labels(labels, csv_path, table.labels, table.class_ids)
    return [f for f in files if table.labels.get(f.image_id, set()) & wanted]


# --------------------------------------------------------------------------- prepare + loader


def default_cache_dir(source: str | Path) -> Path:
    """Where the cache of ``source`` lives unless ``--cache DIR`` says otherwise.

    Outside the data folder, so read-only data (a mounted Kaggle set) works and the user's
    folder is not touched: ``$XRAYGAN_CACHE_DIR`` or ``$XDG_CACHE_HOME/xraygan`` or
    ``~/.cache/xraygan``, then ``<folder name>-<hash of its absolute path>``.
    """
    base = os.environ.get("XRAYGAN_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        base = str(Path(xdg) / "xraygan")
    src = Path(source).resolve()
    digest = hashlib.sha1(str(src).encode()).hexdigest()[:10]
    return Path(base) / f"{src.name or 'root'}-{digest}"


def prepare(
    source: str | Path,
    settings: PrepSettings,
    *,
    labels: Sequence[str] = (),
    limit: int = 0,
    seed: int = 0,
    workers: int = 1,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    on_result: Callable[[str, bool], None] | None = None,
):
    """Decode the DICOM files of ``source`` into a cache (or reuse it); returns ``cache.BuildResult``.

    The cache is reused when the selected files (paths, sizes, mtimes) and the settings are
    unchanged; otherwise it is rebuilt, and files already decoded with the same pixel settings
    (by this or an interrupted earlier run) come from the journal instead of being decoded again.
    """
    source = Path(source)
    if not source.is_dir():
        raise DataError(f"{source}: not a folder of DICOM files")
    cdir = Path(cache_dir) if cache_dir is not None else default_cache_dir(source)
    walk_problems: list[tuple[str, str]] = []
    files = find_dicom_files(source, skip=[cdir], problems=walk_problems)
    if not files:
        raise DataError(
            f"{source}: no DICOM files found (looked for *.dcm, *.dicom and files starting "
            "with the DICM preamble)"
        )
    label_problems: list[str] = []
    selected = select_files(source, files, labels, label_problems)
    if not selected:
        raise DataError(f"{source}: no DICOM file has the labels {', '.join(labels)}")
    unlisted = [(_rel(p, source), r) for p, r in walk_problems]

    return cache.build_cache(
        cdir,
        source=str(source.resolve()),
        files=selected,
        decode=functools.partial(process_file, settings=settings),
        settings=settings.key(),
        selection={"labels": sorted(labels), "limit": int(limit), "seed": int(seed)},
        sizes=settings.sizes,
        limit=limit,
        seed=seed,
        workers=workers,
        progress=progress,
        on_result=on_result,
        not_journaled=NOT_JOURNALED,
        unlisted=unlisted,
        label_problems=label_problems,
    )


def _rel(path: str, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return path


def default_workers() -> int:
    """``$XRAYGAN_WORKERS``, else the CPUs this process may use (at most 8: decoding is CPU
    bound, and more processes than cores only add memory)."""
    env = os.environ.get("XRAYGAN_WORKERS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ConfigError(f"XRAYGAN_WORKERS: expected a number of processes, got {env!r}") from None
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


@DATASETS.register("dicom")
def load_dicom(arg: str | None, cfg: DataConfig, image_size: int, channels: int,
               progress: bool = True) -> ImageSet:
    """``dicom:PATH``: prepare (or reuse) the cache of PATH at ``image_size``, then load it.

    A cache made earlier by ``xraygan data prepare PATH`` decides the selection (labels, limit,
    square policy) and is reused when it holds ``image_size``; without one, at most
    ``cfg.num_images`` files (0 = all) are prepared with the default settings.
    """
    if not arg:
        raise ConfigError("data.source: 'dicom' needs a folder, e.g. dicom:/data/vinbigdata")
    cdir = default_cache_dir(arg)
    prior = cache.read_index(cdir) if (cdir / cache.INDEX).is_file() else None
    if prior is not None and prior.get("source") == str(Path(arg).resolve()):
        s = prior["settings"]
        settings = PrepSettings(
            sizes=tuple(sorted(set(s["sizes"]) | {image_size})),
            square=s["square"],
            low_percentile=s["low_percentile"],
            high_percentile=s["high_percentile"],
            use_voi=s["use_voi"],
        )
        sel = prior["selection"]
        labels, limit, seed = tuple(sel["labels"]), int(sel["limit"]), int(sel["seed"])
    else:
        settings = PrepSettings(sizes=(image_size,))
        labels, limit, seed = (), int(cfg.num_images), int(cfg.seed)
    result = prepare(arg, settings, labels=labels, limit=limit, seed=seed,
                     workers=default_workers(), cache_dir=cdir, progress=progress)
    return cache.load_cache(result.cache_dir, image_size, channels,
                            num_images=cfg.num_images, seed=cfg.seed)
