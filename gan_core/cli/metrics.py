"""``xraygan metrics RUN...``: end-of-run metrics of finished runs.

Each run's metrics are appended to its evaluations.jsonl; a table is printed, and with several
runs the Pearson and Spearman correlations between FID and the D-loss statistics (Fig. 5).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from .. import runs

TABLE_COLUMNS = ("run", "d_loss_mean", "d_loss_var", "d_loss_std", "t0", "d_loss_after_t0_mean",
                 "collapse_onset", "blockiness", "diversity_ratio", "fid")  # fmt: skip


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "metrics",
        help="compute the metrics of finished runs",
        description="D-loss statistics (Table I), T0, mode-collapse signature, blockiness and "
        "diversity of samples, and FID with --fid. Appends to RUN/evaluations.jsonl.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders, or folders of runs")
    p.add_argument("--fid", action="store_true", help="also compute FID (Inception, slow on CPU)")
    p.add_argument("--kid", action="store_true", help="with --fid: also KID")
    p.add_argument("--fid-samples", type=int, default=2048)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", type=Path, metavar="OUT", help="write all results as JSON")
    p.add_argument("--csv", type=Path, metavar="OUT", help="write the table as CSV")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..metrics import run_metrics
    from ..metrics.correlation import correlation_matrices

    rows = []
    for run_dir in runs.find_runs(args.runs):
        result = run_metrics(run_dir, fid=args.fid, kid=args.kid, fid_samples=args.fid_samples,
                             device=args.device)  # fmt: skip
        runs.append_evaluation(run_dir, {"kind": "metrics", "time": time.time(), **result})
        rows.append({"run": run_dir.name, **result})
    table = pd.DataFrame(rows)
    shown = [c for c in TABLE_COLUMNS if c in table.columns]
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table[shown].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        if len(table) >= 2:
            pearson, spearman = correlation_matrices(table)
            print("\nPearson correlation\n" + pearson.round(3).to_string())
            print("\nSpearman correlation\n" + spearman.round(3).to_string())
    if args.json:
        runs.atomic_write_json(args.json, rows)
    if args.csv:
        runs.atomic_write_text(args.csv, table.to_csv(index=False))
    return 0
