"""``folder:PATH``: every PNG/JPEG/BMP/TIFF image under a folder (recursive), as grayscale.

Pixels keep their stored scale: 8-bit images are divided by 255; 16-bit images (PNG mode I;16,
common for exported radiographs) by one scale for the whole dataset: the full scale of the
smallest of 10, 12, 14 or 16 bits that holds the largest value of any 16-bit image read,
because detector data of 10 to 14 bits is usually stored in 16-bit files and would otherwise
come out nearly black. One scale, not one per image: the same 12-bit radiograph must get the
same grey levels whether its brightest pixel is 1000 or 1100 (per image, those two chose 10 and
12 bits and came out with mean grey levels 4x apart; docs/limits.md). Colour, palette, alpha and 1-bit images are converted
to luminance (mode L). Each image is made square by centre crop (the documented default, see
imageops), resized with an antialiasing filter and stored as uint8.

This is the one image-folder reader: ``xraygan fid DIR`` goes through :func:`load_image_folder`
too, so a folder gives the same pixels (and the same FID) whichever way it is named.

The header is checked before any pixel is decoded: an image claiming more than
``limits.max_pixels()`` (a decompression bomb: a few kB of PNG that inflate to gigabytes) is
refused with its size. Files that cannot be used are skipped and listed in ``ImageSet.skipped``
with a reason ("truncated: ...", "not an image: ...", see :data:`REASONS`), as are symlink
loops and broken links (walk.py), so one truncated download does not stop a run; a folder
without a single usable image is an error naming the first files and why.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..config import DataConfig
from ..errors import ConfigError, DataError
from . import limits
from .base import DATASETS, ImageSet
from .folderspec import split_folder_arg
from .imageops import resize, to_square, to_uint8
from .walk import walk_files

EXTENSIONS = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff")
FOLDER_LOADER_VERSION = 2  # bump when the pixels produced from the same files change

# Reasons a file is skipped (the text before the first colon of each skipped entry's reason).
NOT_IMAGE = "not an image"
TRUNCATED = "truncated"
UNREADABLE = "unreadable"
TOO_LARGE = "too large"
UNDECODABLE = "undecodable"
REASONS = (NOT_IMAGE, TRUNCATED, UNREADABLE, TOO_LARGE, UNDECODABLE)


class BadImage(DataError):
    """One image file that cannot be used; the message names the file, ``reason`` the class."""

    def __init__(self, path: str | Path, reason: str, detail: str) -> None:
        super().__init__(f"{path}: {reason}: {detail}")
        self.path, self.reason, self.detail = str(path), reason, detail


def list_image_files(folder: Path, problems: list[tuple[str, str]] | None = None) -> list[Path]:
    """Image files under ``folder`` (recursive, symlinks followed), sorted by relative path for
    a stable order; symlink loops and broken links go to ``problems``."""
    files = [p for p in walk_files(folder, problems) if p.suffix.lower() in EXTENSIONS]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def _full_scale(max_value: float) -> float:
    for bits in (10, 12, 14, 16):
        if max_value < 2**bits:
            return float(2**bits - 1)
    return float(max_value)  # 32-bit integer data: its own maximum


def _open(path: Path, max_pixels: int) -> Image.Image:
    """Image.open (header only) with the pixel cap applied before anything is decoded."""
    try:
        with warnings.catch_warnings():
            # PIL warns above MAX_IMAGE_PIXELS and raises above twice that; the cap below
            # decides, so its warning is noise here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
    except Image.DecompressionBombError as e:
        raise BadImage(path, TOO_LARGE, f"refused before decoding: {e}") from None
    except UnidentifiedImageError:
        raise BadImage(path, NOT_IMAGE, "no known image format (empty, text, or another format "
                       "under an image extension)") from None
    except PermissionError as e:
        raise BadImage(path, UNREADABLE, e.strerror or str(e)) from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise BadImage(path, TRUNCATED if "truncat" in str(e).lower() else UNDECODABLE,
                       f"{type(e).__name__}: {e}") from None
    w, h = img.size
    detail = limits.too_large(w * h, max_pixels)
    if detail:
        img.close()
        raise BadImage(path, TOO_LARGE, f"header says {w}x{h}: {detail}")
    return img


def read_gray(path: Path, max_pixels: int | None = None) -> np.ndarray:
    """Decode one image file to a 2-D float32 array in [0, 1] (0 = black); a 16-bit image
    alone is scaled by the bit depth its own maximum needs (a dataset shares one scale:
    :func:`load_folder`).

    Raises :class:`BadImage` (a DataError naming the file and the reason) for a file that
    cannot be used: not an image, truncated, unreadable, over the pixel cap, or undecodable.
    """
    arr, counts = read_gray_counts(path, max_pixels)
    if counts:
        arr = arr / _full_scale(float(arr.max()))
    return arr.astype(np.float32)


def read_gray_counts(path: Path, max_pixels: int | None = None) -> tuple[np.ndarray, bool]:
    """(2-D float64 pixels, is_counts): 16-bit and 32-bit integer images as their raw counts
    (is_counts True: the caller chooses the scale), every other mode in [0, 1]."""
    path = Path(path)
    cap = limits.max_pixels() if max_pixels is None else max_pixels
    img = _open(path, cap)
    counts = False
    try:
        with img, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = ImageOps.exif_transpose(img)  # phone/JPEG exports may be stored rotated
            if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
                arr = np.asarray(img, dtype=np.float64)
                if arr.min() < 0:
                    raise BadImage(path, UNDECODABLE, f"negative pixel values in mode {img.mode}")
                counts = True
            elif img.mode == "F":
                arr = np.asarray(img, dtype=np.float64)
                lo, hi = float(arr.min()), float(arr.max())
                if not np.isfinite([lo, hi]).all():
                    raise BadImage(path, UNDECODABLE, "non-finite pixel values")
                # float TIFFs carry no scale: stretch to the image's own range
                arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
            else:  # L, 1, P, PA, LA, RGB, RGBA, CMYK, YCbCr, I;16 RGB...: luminance
                arr = np.asarray(img.convert("L"), dtype=np.float64) / 255.0
    except BadImage:
        raise
    except PermissionError as e:
        raise BadImage(path, UNREADABLE, e.strerror or str(e)) from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as e:
        msg = str(e)
        reason = TRUNCATED if ("truncat" in msg.lower() or isinstance(e, EOFError)) else UNDECODABLE
        raise BadImage(path, reason, f"{type(e).__name__}: {msg}") from None
    if arr.ndim != 2 or min(arr.shape) < 1:
        raise BadImage(path, UNDECODABLE, f"unexpected pixel array shape {arr.shape}")
    return arr, counts


def prepare(arr: np.ndarray, image_size: int, square: str = "crop") -> np.ndarray:
    """float [0, 1] (H, W) -> uint8 (image_size, image_size): square policy, antialiased resize."""
    return to_uint8(np.clip(resize(to_square(arr, square), image_size), 0.0, 1.0))


def _native_size(root: Path, files: list[Path], max_pixels: int) -> int:
    """The one square side of a folder read "at its own size": every image must share (H, W)."""
    first: tuple[Path, tuple[int, int]] | None = None
    for path in files:
        try:
            with _open(path, max_pixels) as img:
                size = img.size
        except BadImage:
            continue  # reported when the file is read
        if first is None:
            first = (path, size)
        elif size != first[1]:
            (p0, (w0, h0)), (w, h) = first, size
            raise DataError(
                f"folder {root}: images of different sizes ({p0.name} is {w0}x{h0}, {path.name} "
                f"is {w}x{h}), and a plain folder is read at its own size: name it as the dataset "
                f"folder:{root} with --image-size N to resize them all"
            )
    return min(first[1]) if first is not None else 1


def load_folder(folder: str | Path, image_size: int | None, *, limit: int = 0,
                square: str = "crop", max_pixels: int | None = None) -> ImageSet:
    """Read up to ``limit`` (0 = all) usable images of ``folder`` in sorted path order.

    ``image_size`` None reads the images at their own size (they must all have one size;
    non-square ones are centre-cropped to their shorter side).
    """
    root = Path(folder).expanduser()
    accepted = ", ".join(EXTENSIONS)
    if not root.exists():
        raise DataError(f"folder {root}: does not exist (expected a folder of {accepted} images)")
    if not root.is_dir():
        raise DataError(f"folder {root}: is not a folder (expected a folder of {accepted} images)")
    cap = limits.max_pixels() if max_pixels is None else max_pixels
    problems: list[tuple[str, str]] = []
    files = list_image_files(root, problems)
    if not files:
        why = f"; {len(problems)} entries could not be walked, e.g. {problems[0][0]}: {problems[0][1]}" \
            if problems else ""
        raise DataError(f"folder {root}: holds no image file; accepted extensions: {accepted}{why}")
    size = _native_size(root, files, cap) if image_size is None else int(image_size)

    images: list[np.ndarray] = []
    ids: list[str] = []  # each image's path relative to the folder: what labels.csv names
    skipped: list[tuple[str, str]] = list(problems)
    seen: list[tuple[str, int, int]] = []
    counts_max = 0.0  # the largest raw value of any 16/32-bit image: the dataset's one scale
    for path in files:
        if limit and len(images) >= limit:
            break
        try:
            st = path.stat()
            arr, counts = read_gray_counts(path, cap)
            seen.append((path.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
            if counts:
                counts_max = max(counts_max, float(arr.max()))
                # resized in raw counts (resizing is linear) and kept as 16-bit counts (to
                # half a count) until the dataset's scale is known: 2 bytes a pixel, not 4
                small = resize(to_square(arr, square), size)
                images.append(np.clip(np.rint(small), 0, 65535).astype(np.uint16)
                              if arr.max() <= 65535 else small.astype(np.float32))
            else:
                images.append(prepare(arr, size, square))
            ids.append(seen[-1][0])
        except BadImage as e:
            skipped.append((str(path), f"{e.reason}: {e.detail}"))
        except OSError as e:
            skipped.append((str(path), f"{UNREADABLE}: {e.strerror or e}"))
    if not images:
        reasons = "; ".join(f"{Path(p).name}: {r}" for p, r in skipped[:3])
        raise DataError(
            f"folder {root}: none of {len(files)} files could be read as an image "
            f"(accepted extensions: {accepted}); first errors: {reasons}"
        )
    if counts_max > 0:
        full = _full_scale(counts_max)
        images = [to_uint8(np.clip(im / full, 0.0, 1.0)) if im.dtype != np.uint8 else im
                  for im in images]  # one scale for every 16-bit image of the dataset
    else:  # every counts image was black: zeros, as per image
        images = [im if im.dtype == np.uint8 else np.zeros(im.shape, np.uint8) for im in images]
    spec = {"loader": "folder", "version": FOLDER_LOADER_VERSION, "root": str(root.resolve()),
            "files": seen, "size": size, "square": square, "limit": limit}
    return ImageSet(
        images=torch.from_numpy(np.stack(images))[:, None],  # (N, 1, S, S)
        fingerprint=hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest(),
        description=f"{len(images)} images from {root} ({square}, {size}x{size})",
        skipped=skipped,
        ids=tuple(ids),
    )


def load_image_folder(path: str | Path, size: int | None = None, channels: int = 1, *,
                      limit: int = 0) -> ImageSet:
    """The image-folder reader every command uses (``folder:PATH`` datasets, ``xraygan fid
    DIR``): uint8 (N, channels, S, S) with 16-bit images scaled to their full range, not clipped.

    ``size`` None keeps the images' own size (all must share it), as pytorch-fid reads folders.
    """
    if channels < 1:
        raise ConfigError(f"channels: expected 1 or more, got {channels}")
    data = load_folder(path, size, limit=limit)
    if channels > 1:
        data.images = data.images.expand(-1, channels, -1, -1).contiguous()
    return data


@DATASETS.register("folder")
def load_folder_source(arg: str | None, cfg: DataConfig, image_size: int,
                       channels: int) -> ImageSet:
    """``folder:PATH[,labels=FILE.csv]``: at most ``cfg.num_images`` images (0 = all),
    centre-cropped to square (the labels are read by xraygan.data.labels, not here)."""
    if arg is None:
        raise ConfigError("data.source: 'folder' needs a path, e.g. folder:/data/cxr_png")
    path, _ = split_folder_arg(arg)
    return load_image_folder(path, image_size, channels, limit=max(cfg.num_images, 0))
