"""``folder:PATH``: every PNG/JPEG/BMP/TIFF image under a folder (recursive), as grayscale.

Pixels keep their stored scale: 8-bit images are divided by 255; 16-bit images (PNG mode I;16,
common for exported radiographs) by the full scale of the smallest of 10, 12, 14 or 16 bits that
holds their maximum, because detector data of 10 to 14 bits is usually stored in 16-bit files
and would otherwise come out nearly black. Colour images are converted to luminance (mode L).
Each image is made square by centre crop (the documented default, see imageops), resized with
an antialiasing filter and stored as uint8.

Files that cannot be decoded are skipped and listed in ``ImageSet.skipped`` with the reason, so
one truncated download does not stop a run; a folder without a single usable image is an error.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ..config import DataConfig
from ..errors import ConfigError, DataError
from .base import DATASETS, ImageSet
from .imageops import resize, to_square, to_uint8

EXTENSIONS = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff")
FOLDER_LOADER_VERSION = 1  # bump when the pixels produced from the same files change
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def list_image_files(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive), sorted by relative path for a stable order."""
    files = [p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def _full_scale(max_value: float) -> float:
    for bits in (10, 12, 14, 16):
        if max_value < 2**bits:
            return float(2**bits - 1)
    return float(max_value)  # 32-bit integer data: its own maximum


def read_gray(path: Path) -> np.ndarray:
    """Decode one image file to a 2-D float32 array in [0, 1] (0 = black)."""
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)  # phone/JPEG exports may be stored rotated
        if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
            arr = np.asarray(img, dtype=np.float64)
            if arr.min() < 0:
                raise ValueError(f"negative pixel values in mode {img.mode}")
            arr = arr / _full_scale(arr.max())
        elif img.mode == "F":
            arr = np.asarray(img, dtype=np.float64)
            lo, hi = float(arr.min()), float(arr.max())
            if not np.isfinite([lo, hi]).all():
                raise ValueError("non-finite pixel values")
            # float TIFFs carry no scale: stretch to the image's own range
            arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
        else:
            arr = np.asarray(img.convert("L"), dtype=np.float64) / 255.0
    if arr.ndim != 2 or min(arr.shape) < 1:
        raise ValueError(f"unexpected pixel array shape {arr.shape}")
    return arr.astype(np.float32)


def prepare(arr: np.ndarray, image_size: int, square: str = "crop") -> np.ndarray:
    """float [0, 1] (H, W) -> uint8 (image_size, image_size): square policy, antialiased resize."""
    return to_uint8(np.clip(resize(to_square(arr, square), image_size), 0.0, 1.0))


def load_folder(folder: str | Path, image_size: int, *, limit: int = 0,
                square: str = "crop") -> ImageSet:
    """Read up to ``limit`` (0 = all) usable images of ``folder`` in sorted path order."""
    root = Path(folder).expanduser()
    accepted = ", ".join(EXTENSIONS)
    if not root.exists():
        raise DataError(f"folder {root}: does not exist (expected a folder of {accepted} images)")
    if not root.is_dir():
        raise DataError(f"folder {root}: is not a folder (expected a folder of {accepted} images)")
    files = list_image_files(root)
    if not files:
        raise DataError(f"folder {root}: holds no image file; accepted extensions: {accepted}")

    images: list[np.ndarray] = []
    skipped: list[tuple[str, str]] = []
    seen: list[tuple[str, int, int]] = []
    for path in files:
        if limit and len(images) >= limit:
            break
        st = path.stat()
        seen.append((path.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
        try:
            images.append(prepare(read_gray(path), image_size, square))
        except _DECODE_ERRORS as e:
            skipped.append((str(path), f"{type(e).__name__}: {e}"))
    if not images:
        reasons = "; ".join(f"{Path(p).name}: {r}" for p, r in skipped[:3])
        raise DataError(
            f"folder {root}: none of {len(files)} files could be read as an image "
            f"(accepted extensions: {accepted}); first errors: {reasons}"
        )
    spec = {"loader": "folder", "version": FOLDER_LOADER_VERSION, "root": str(root.resolve()),
            "files": seen, "size": image_size, "square": square, "limit": limit}
    return ImageSet(
        images=torch.from_numpy(np.stack(images))[:, None],  # (N, 1, S, S)
        fingerprint=hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest(),
        description=f"{len(images)} images from {root} ({square}, {image_size}x{image_size})",
        skipped=skipped,
    )


@DATASETS.register("folder")
def load_folder_source(arg: str | None, cfg: DataConfig, image_size: int,
                       channels: int) -> ImageSet:
    """``folder:PATH``: at most ``cfg.num_images`` images (0 = all), centre-cropped to square."""
    if arg is None:
        raise ConfigError("data.source: 'folder' needs a path, e.g. folder:/data/cxr_png")
    data = load_folder(arg, image_size, limit=max(cfg.num_images, 0))
    if channels > 1:
        data.images = data.images.expand(-1, channels, -1, -1).contiguous()
    return data
