"""``xraygan data``: prepare a DICOM folder into a cache, write phantom DICOMs, preview a dataset.

    xraygan data prepare /data/vinbigdata --image-size 64 128 --labels "No finding" --workers 2
    xraygan data phantom-dicom demo-cxr --count 200 --size 1024 --codec j2k
    xraygan data preview dicom:/data/vinbigdata --png grid.png --image-size 64
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..data.imageops import SQUARE_POLICIES
from ..data.limits import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV

# Upper bounds of flags that size an allocation or a folder: a phantom DICOM is rendered one
# image at a time (``--size`` 8192 needs about 17 GiB of working memory, see phantom_bytes), and a
# preview grid is one image in memory.
MAX_PHANTOM_FILES = 1_000_000
MAX_PHANTOM_SIDE = 8192
MAX_PREVIEW = 1024
MAX_LISTED = 10  # skipped files named on the console; all of them are in index.json


def add_parser(sub: argparse._SubParsersAction) -> None:
    from .argtypes import int_type, output_file, seed_type

    p = sub.add_parser("data", help="prepare DICOM folders, write phantom DICOMs, preview data",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    pr = dsub.add_parser(
        "prepare",
        help="decode a DICOM folder once into a cache (resumable, reused when unchanged)",
        description="Decode every DICOM file of SOURCE (VinBigData layout: train/*.dicom, "
        "test/*.dicom, train.csv; or any folder of DICOM files) into square uint8 images at the "
        "given sizes. Bad files are skipped and listed. Train on it with "
        "--data dicom:SOURCE or --data cache:CACHE.",
    )
    pr.add_argument("source", type=Path, help="folder of DICOM files")
    pr.add_argument("--image-size", "--sizes", dest="sizes", type=int_type(16, 4096), nargs="+", default=[64, 128],
                    metavar="N", help="image sides (default: 64 128)")
    pr.add_argument("--limit", type=int_type(0, 10_000_000), default=0,
                    help="at most N usable images, a seeded random choice (default: 0, all)")
    pr.add_argument("--subset-seed", "--seed", dest="seed", type=seed_type(), default=0,
                    help="seed of the --limit choice (default: 0)")
    pr.add_argument("--labels", nargs="+", default=[], metavar="CLASS",
                    help='keep images with these train.csv classes (names or ids), e.g. "No finding"')
    pr.add_argument("--workers", type=int_type(1, 64), default=None, help="decoding processes (default: CPUs, at most 8)")
    pr.add_argument("--square", choices=SQUARE_POLICIES, default="crop",
                    help="crop: centre square (default); pad: add black borders; squash: resize")
    pr.add_argument("--cache", type=Path, default=None, metavar="DIR",
                    help="cache folder (default: $XRAYGAN_CACHE_DIR or ~/.cache/xraygan/<name>-<hash>)")
    pr.add_argument("--max-pixels", type=_positive_int, default=None, metavar="N",
                    help="refuse files whose header claims more than N pixels (rows x columns "
                    f"x frames), before decoding (default: ${MAX_PIXELS_ENV} or "
                    f"{DEFAULT_MAX_PIXELS:,}, 8000x8000)")
    pr.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown)")
    pr.set_defaults(func=run_prepare)

    ph = dsub.add_parser("phantom-dicom", help="write phantom radiographs as a VinBigData-shaped DICOM folder")
    ph.add_argument("out", type=Path, help="folder to write (train/, test/, train.csv)")
    ph.add_argument("--count", type=int_type(1, MAX_PHANTOM_FILES), default=64, help="train images (default: 64)")
    ph.add_argument("--test-count", type=int_type(0, MAX_PHANTOM_FILES), default=0, help="unlabelled test images (default: 0)")
    ph.add_argument("--size", type=int_type(16, MAX_PHANTOM_SIDE), default=512, help="longer side in pixels (default: 512)")
    ph.add_argument("--data-seed", "--seed", dest="seed", type=seed_type(), default=0,
                    help="seed of the phantom generator (default: 0)")
    ph.add_argument("--codec", choices=("j2k", "raw"), default="j2k",
                    help="j2k: JPEG 2000 lossless, as VinBigData (default); raw: uncompressed")
    ph.add_argument("--series", metavar="SPEC", default=None,
                    help="phantom series whose own findings label train.csv, e.g. v2 or "
                    "v2,cardiomegaly=0.4 (docs/anatomy.md; default: the original phantoms with "
                    "random labels)")
    ph.add_argument("--force", action="store_true",
                    help="replace a train.csv and DICOM files of the same names in OUT "
                    "(default: refuse, nothing is written)")
    ph.set_defaults(func=run_phantom)

    pv = dsub.add_parser("preview", help="write a grid of images of any dataset spec")
    pv.add_argument("spec", help="phantom | folder:PATH | dicom:PATH | cache:PATH")
    pv.add_argument("--png", "--out", dest="out", type=output_file, required=True, metavar="FILE",
                    help="PNG file to write")
    pv.add_argument("--image-size", "--size", dest="size", type=int_type(16, 4096), default=64, metavar="N",
                    help="image side (default: 64)")
    pv.add_argument("--count", type=int_type(1, MAX_PREVIEW), default=64, help="images in the grid (default: 64)")
    pv.add_argument("--data-seed", "--seed", dest="seed", type=seed_type(), default=0,
                    help="seed of the dataset spec (phantoms, subsets; default: 0)")
    pv.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown)")
    pv.set_defaults(func=run_preview)


def _positive_int(text: str) -> int:
    try:
        value = int(float(text))
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"expected a whole number of pixels, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of pixels >= 1, got {text!r}")
    return value


def skipped_report(skipped: list[tuple[str, str]], total: int, limit: int = MAX_LISTED,
                   where: str = "index.json") -> list[str]:
    """Lines counting the skipped files by reason and naming the first ``limit`` of them."""
    from ..data.cache import reason_counts

    if not skipped:
        return []
    counts = ", ".join(f"{n} {r}" for r, n in reason_counts(skipped).items())
    lines = [f"skipped {len(skipped)} of {total} files ({counts}):"]
    lines += [f"  {path}: {reason}" for path, reason in skipped[:limit]]
    if len(skipped) > limit:
        lines.append(f"  ... and {len(skipped) - limit} more (all listed in {where})")
    return lines


def label_report(problems: list[str], limit: int = MAX_LISTED) -> list[str]:
    """Lines about the train.csv rows that were left out."""
    if not problems:
        return []
    lines = [f"train.csv: {len(problems)} row(s) left out:"] + [f"  {p}" for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more (all listed in index.json)")
    return lines


def run_prepare(args: argparse.Namespace) -> int:
    from ..data.dicom import PrepSettings, default_workers, prepare

    kw = {} if args.max_pixels is None else {"max_pixels": args.max_pixels}
    settings = PrepSettings(sizes=tuple(args.sizes), square=args.square, **kw)
    result = prepare(
        args.source, settings, labels=args.labels, limit=args.limit, seed=args.seed,
        workers=args.workers or default_workers(), cache_dir=args.cache,
        progress=not args.no_progress,
    )
    idx = result.index
    sizes = ", ".join(map(str, idx["sizes"]))
    if result.reused:
        print(f"cache up to date: {result.count} images at {sizes} px in {result.cache_dir}")
    else:
        st = idx["stats"]
        print(f"prepared {result.count} images at {sizes} px from {idx['source']} into "
              f"{result.cache_dir} (decoded {result.decoded}, from an earlier run "
              f"{result.from_journal}, {st['seconds']:.1f} s)")
    for line in skipped_report(result.skipped, result.count + len(result.skipped)):
        print(line)
    for line in label_report(idx.get("label_problems", [])):
        print(line)
    print(f"train with: --data cache:{result.cache_dir}  (or --data dicom:{args.source})")
    return 0


def run_phantom(args: argparse.Namespace) -> int:
    from ..data.dicom_writer import write_phantom_dicoms
    from ..data.phantom import PhantomSeries, phantom_bytes
    from ..guard import check_allocation

    series = None if args.series is None else PhantomSeries.parse(args.series, "--series")

    # one image is rendered (and encoded: a 16-bit copy) at a time
    check_allocation(phantom_bytes(1, args.size, itemsize=4, extra_per_pixel=2),
                     f"rendering one {args.size}x{args.size} phantom DICOM", "--size")
    paths = write_phantom_dicoms(args.out, args.count, args.size, args.seed, codec=args.codec,
                                 test_count=args.test_count, series=series, force=args.force)
    print(f"wrote {len(paths)} phantom DICOM files ({args.codec}) and train.csv under {args.out}")
    return 0


def run_preview(args: argparse.Namespace) -> int:
    from ..config import DataConfig
    from ..data import load_dataset
    from ..imageio import save_grid

    data = load_dataset(DataConfig(source=args.spec, num_images=args.count, seed=args.seed),
                        args.size, 1, progress=not args.no_progress)
    save_grid(data.images[: args.count], args.out)
    print(f"{data.description}; wrote {min(args.count, len(data))} images to {args.out}")
    for line in skipped_report(data.skipped, len(data) + len(data.skipped), where="the dataset"):
        print(line, file=sys.stderr)
    return 0
