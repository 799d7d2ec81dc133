"""``xraygan metrics RUN...``: end-of-run metrics of finished runs.

Each run's metrics are appended to its evaluations.jsonl; a table is printed (the metrics beyond
FID in a second block), and with several runs the Pearson and Spearman correlations between FID
and the D-loss statistics (Fig. 5; the std is left out: it is the square root of the variance,
so their correlation is 1 by construction). With ``--fid`` one Inception pass per image set
(generated, training, held-out) feeds FID, KID, precision/recall/density/coverage and the
memorization test; the run folder gets spectrum.json and closest_pairs.png for the report.
"""

from __future__ import annotations

import argparse
import time

from .. import runs
from ..errors import RunFolderError

TABLE_COLUMNS = ("run", "d_loss_mean", "d_loss_var", "d_loss_std", "t0", "d_loss_after_t0_mean",
                 "collapse_onset", "blockiness", "diversity_ratio", "fid")  # fmt: skip
QUALITY_COLUMNS = ("run", "kid", "precision", "recall", "density", "coverage", "mem_ct",
                   "mem_px_ct", "mem_copy_fraction", "mem_copying", "spectral_distance",
                   "hf_deficit", "lf_deficit")  # fmt: skip
ANATOMY_COLUMNS = ("run", "anat_ctr_w1", "anat_ctr_ks", "anat_lung_area_w1", "anat_lung_area_ks",
                   "anat_implausible", "util_auroc_real", "util_auroc_synthetic",
                   "util_auroc_mixed", "util_gap_synthetic", "util_gap_mixed")  # fmt: skip
CORRELATION_COLUMNS = ("fid", "d_loss_mean", "d_loss_var", "precision", "recall", "hf_deficit")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from .argtypes import add_device_argument, int_type, output_file

    p = sub.add_parser(
        "metrics",
        help="compute the metrics of finished runs",
        description="D-loss statistics (Table I), T0, mode-collapse signature, blockiness and "
        "diversity of samples, power spectra; with --fid also FID, precision/recall, density/"
        "coverage and the memorization test. Appends to RUN/evaluations.jsonl.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders, or folders of runs")
    p.add_argument("--fid", action="store_true",
                   help="also the Inception metrics: FID, precision/recall, density/coverage and "
                   "the memorization test (slow on CPU)")
    p.add_argument("--kid", action="store_true", help="with --fid: also KID")
    p.add_argument("--fid-samples", type=int_type(min=2, max=10**6), default=2048, metavar="N",
                   help="generated images for FID")
    p.add_argument("--k", type=int_type(min=1, max=100), default=5,
                   help="neighbours of precision/recall and density/coverage")
    p.add_argument("--heldout-samples", type=int_type(min=10, max=10**6), default=512,
                   metavar="N", help="held-out real images of the memorization test (at most)")
    p.add_argument("--utility", action="store_true",
                   help="also the downstream utility test: classifiers trained on real, "
                   "generated and mixed images, tested on held-out real ones (minutes on CPU; "
                   "labelled data: phantom:v2, VinBigData, or a folder with labels.csv; "
                   "docs/utility.md)")
    add_device_argument(p)
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar or progress lines while features are extracted")
    p.add_argument("--json", type=output_file, metavar="FILE", help="write all results as JSON")
    p.add_argument("--csv", type=output_file, metavar="FILE", help="write the table as CSV")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .early import check_device, check_paths_exist

    check_paths_exist(args.runs, "a run folder or a folder of runs")  # before torch loads
    check_device(args.device)
    from ..metrics import CHEAP_METRICS, run_metrics
    from ..metrics.correlation import correlation_matrices
    from ..train import resolve_device

    device = str(resolve_device(args.device))

    names = (*CHEAP_METRICS, "utility") if args.utility else None

    rows, damaged = [], []
    for run_dir in runs.find_runs(args.runs):
        try:
            result = run_metrics(run_dir, fid=args.fid, kid=args.kid, fid_samples=args.fid_samples,
                                 device=device, k=args.k, metrics=names,
                                 heldout_samples=args.heldout_samples,
                                 progress=not args.no_progress, echo=lambda s: print(s, flush=True))  # fmt: skip
        except RunFolderError as e:  # a damaged run: go on with the others, fail at the end
            damaged.append(str(e))
            continue
        runs.append_evaluation(run_dir, {"kind": "metrics", "time": time.time(), **result})
        rows.append({"run": run_dir.name, **result})
    if damaged and not rows:
        raise RunFolderError(damaged[0] if len(damaged) == 1 else
                             f"{len(damaged)} runs could not be evaluated: {'; '.join(damaged)}")
    import pandas as pd

    table = pd.DataFrame(rows)
    shown = [c for c in TABLE_COLUMNS if c in table.columns]
    quality = [c for c in QUALITY_COLUMNS if c in table.columns]
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table[shown].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        for block in (quality, [c for c in ANATOMY_COLUMNS if c in table.columns]):
            if len(block) > 1:
                print("\n" + table[block].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        if "notes" in table.columns:
            for name, note in zip(table["run"], table["notes"], strict=True):
                if isinstance(note, str) and note:
                    print(f"{name}: {note}")
        if len(table) >= 2:
            pearson, spearman = correlation_matrices(table, CORRELATION_COLUMNS)
            print("\nPearson correlation\n" + pearson.round(3).to_string())
            print("\nSpearman correlation\n" + spearman.round(3).to_string())
    if args.json:
        runs.atomic_write_json(args.json, rows)
    if args.csv:
        runs.atomic_write_text(args.csv, table.to_csv(index=False))
    if damaged:  # the table above has the readable runs; the exit status says some were not
        raise RunFolderError(f"{len(damaged)} of {len(damaged) + len(rows)} runs could not be "
                             f"evaluated: {'; '.join(damaged)}")
    return 0
