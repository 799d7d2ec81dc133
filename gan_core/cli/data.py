"""``xraygan data``: prepare a DICOM folder into a cache, write phantom DICOMs, preview a dataset.

    xraygan data prepare /data/vinbigdata --sizes 64 128 --labels "No finding" --workers 2
    xraygan data phantom-dicom demo-cxr --count 200 --size 1024 --codec j2k
    xraygan data preview dicom:/data/vinbigdata --out grid.png --size 64
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..data.imageops import SQUARE_POLICIES

MAX_LISTED = 50  # skipped files printed by prepare; all of them are in index.json


def add_parser(sub: argparse._SubParsersAction) -> None:
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
    pr.add_argument("--sizes", type=int, nargs="+", default=[64, 128], help="image sides (default: 64 128)")
    pr.add_argument("--limit", type=int, default=0,
                    help="at most N usable images, a seeded random choice (default 0: all)")
    pr.add_argument("--seed", type=int, default=0, help="seed of the --limit choice")
    pr.add_argument("--labels", nargs="+", default=[],
                    help='keep images with these train.csv classes (names or ids), e.g. "No finding"')
    pr.add_argument("--workers", type=int, default=None, help="decoding processes (default: CPUs, at most 8)")
    pr.add_argument("--square", choices=SQUARE_POLICIES, default="crop",
                    help="crop: centre square (default); pad: add black borders; squash: resize")
    pr.add_argument("--cache", type=Path, default=None,
                    help="cache folder (default: $XRAYGAN_CACHE_DIR or ~/.cache/xraygan/<name>-<hash>)")
    pr.add_argument("--no-progress", action="store_true", help="no progress bar")
    pr.set_defaults(func=run_prepare)

    ph = dsub.add_parser("phantom-dicom", help="write phantom radiographs as a VinBigData-shaped DICOM folder")
    ph.add_argument("out", type=Path, help="folder to write (train/, test/, train.csv)")
    ph.add_argument("--count", type=int, default=64, help="train images (default 64)")
    ph.add_argument("--test-count", type=int, default=0, help="unlabelled test images (default 0)")
    ph.add_argument("--size", type=int, default=512, help="longer side in pixels (default 512)")
    ph.add_argument("--seed", type=int, default=0)
    ph.add_argument("--codec", choices=("j2k", "raw"), default="j2k",
                    help="j2k: JPEG 2000 lossless, as VinBigData (default); raw: uncompressed")
    ph.set_defaults(func=run_phantom)

    pv = dsub.add_parser("preview", help="write a grid of images of any dataset spec")
    pv.add_argument("spec", help="phantom | folder:PATH | dicom:PATH | cache:PATH")
    pv.add_argument("--out", type=Path, required=True, help="PNG file to write")
    pv.add_argument("--size", type=int, default=64)
    pv.add_argument("--count", type=int, default=64)
    pv.add_argument("--seed", type=int, default=0)
    pv.set_defaults(func=run_preview)


def skipped_report(skipped: list[tuple[str, str]], total: int, limit: int = MAX_LISTED) -> list[str]:
    """Lines naming the skipped files and counting them by reason."""
    from ..data.cache import reason_counts

    if not skipped:
        return []
    counts = ", ".join(f"{n} {r}" for r, n in reason_counts(skipped).items())
    lines = [f"skipped {len(skipped)} of {total} files ({counts}):"]
    lines += [f"  {path}: {reason}" for path, reason in skipped[:limit]]
    if len(skipped) > limit:
        lines.append(f"  ... and {len(skipped) - limit} more (all listed in index.json)")
    return lines


def run_prepare(args: argparse.Namespace) -> int:
    from ..data.dicom import PrepSettings, default_workers, prepare

    settings = PrepSettings(sizes=tuple(args.sizes), square=args.square)
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
    print(f"train with: --data cache:{result.cache_dir}  (or --data dicom:{args.source})")
    return 0


def run_phantom(args: argparse.Namespace) -> int:
    from ..data.dicom_writer import write_phantom_dicoms

    paths = write_phantom_dicoms(args.out, args.count, args.size, args.seed, codec=args.codec,
                                 test_count=args.test_count)
    print(f"wrote {len(paths)} phantom DICOM files ({args.codec}) and train.csv under {args.out}")
    return 0


def run_preview(args: argparse.Namespace) -> int:
    from ..config import DataConfig
    from ..data import load_dataset
    from ..imageio import save_grid

    data = load_dataset(DataConfig(source=args.spec, num_images=args.count, seed=args.seed),
                        args.size, 1)
    save_grid(data.images[: args.count], args.out)
    print(f"{data.description}; wrote {min(args.count, len(data))} images to {args.out}")
    for line in skipped_report(data.skipped, len(data) + len(data.skipped), limit=10):
        print(line, file=sys.stderr)
    return 0
