"""``xraygan anatomy DIR``: the anatomy of every image in a folder (lung fields, heart and
thorax widths, cardiothoracic ratio, right dome height; xraygan.metrics.anatomy), one CSV row
per image, and a summary per measure. For generated PNGs (``xraygan sample``) as for real
images, so that the two can be compared outside a sweep."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .argtypes import field_type, output_file


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..config import ModelConfig

    p = sub.add_parser(
        "anatomy",
        help="measure the anatomy of a folder of images (CTR, lung areas, ...): CSV per image",
        description="Measure every image under DIR (PNG, JPEG, TIFF, BMP; recursive) with the "
        "deterministic anatomy reader of xraygan.metrics.anatomy: lung fields, heart and thorax "
        "widths, cardiothoracic ratio, right hemidiaphragm height, and whether the image shows "
        "two lungs and a heart at all (plausible). Writes one CSV row per image (to stdout, or "
        "--csv FILE) and prints the mean and spread of each measure over the plausible images.",
    )
    p.add_argument("folder", metavar="DIR", help="a folder of images, e.g. xraygan sample's --out")
    p.add_argument("--csv", type=output_file, metavar="FILE",
                   help="write the per-image rows here (default: to stdout)")
    p.add_argument("--image-size", type=field_type(ModelConfig, "image_size"), metavar="N",
                   help="resize each image (centre-cropped to a square) to N px before measuring "
                   "(default: each image at its own size, cropped to its shorter side)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar or progress lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .early import check_paths_exist

    check_paths_exist([args.folder], "a folder of images")  # before numpy/torch load
    import numpy as np
    import pandas as pd

    from ..data.folder import EXTENSIONS, BadImage, list_image_files, prepare, read_gray
    from ..errors import DataError
    from ..metrics.anatomy import MEASURES, measure_anatomy
    from ..progress import Progress
    from ..runs import atomic_write_text

    root = Path(args.folder).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: is a file (expected a folder of images)")
    files = list_image_files(root)
    if not files:
        raise DataError(f"{root}: holds no image file ({', '.join(EXTENSIONS)})")
    rows, skipped = [], []
    with Progress(len(files), desc=f"anatomy {root.name}", unit="image",
                  enabled=not args.no_progress) as bar:
        for path in files:
            try:
                arr = read_gray(path)
            except (BadImage, OSError) as e:
                skipped.append(f"{path.name}: {e}")
                bar.update(1)
                continue
            size = args.image_size or min(arr.shape)
            img = prepare(arr, size)[None, None]
            m = measure_anatomy(img)
            rows.append({"file": path.relative_to(root).as_posix(), "size": size,
                         **{k: float(m[k][0]) for k in MEASURES}})
            bar.update(1)
    if not rows:
        raise DataError(f"{root}: none of {len(files)} files could be read as an image; "
                        f"first: {skipped[0]}")
    df = pd.DataFrame(rows)
    text = df.to_csv(index=False, float_format="%.5g")
    if args.csv:
        atomic_write_text(args.csv, text)
    else:
        sys.stdout.write(text)
    ok = df[df["plausible"] == 1.0]
    info = sys.stderr if not args.csv else sys.stdout
    print(f"{len(df)} images measured, {len(ok)} plausible (two lung fields and a heart "
          f"border){f'; {len(skipped)} unreadable, e.g. {skipped[0]}' if skipped else ''}",
          file=info)
    for k in MEASURES:
        if k == "plausible" or ok.empty:
            continue
        v = ok[k].to_numpy(np.float64)
        print(f"  {k:16s} mean {v.mean():.4f}  sd {v.std(ddof=1) if len(v) > 1 else 0.0:.4f}  "
              f"range {v.min():.4f} to {v.max():.4f}", file=info)
    if args.csv:
        print(f"per-image rows: {args.csv}", file=info)
    return 0
