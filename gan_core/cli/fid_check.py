"""``xraygan fid-check STUDY``: re-score a finished sweep's runs with FID at 2,048 samples beside
the reduced FID, FID_inf and KID it recorded. The study is loaded here (xraygan.reports.load),
re-scored by xraygan.ablations.rescore and tabulated by xraygan.reports.rescore_table: only the
command line imports both. It runs under the CLI's process policy (the OpenMP wait policy is
set before torch loads)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .argtypes import add_device_argument, existing_dir, int_type, output_file


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fid-check",
        help="re-score a sweep's runs with FID at 2,048 samples beside its reduced FID",
        description="Per trial: the sweep's FID, FID_inf and KID at its sample count next to "
        "FID, FID_inf and KID at --fid-samples; then the AdaS-vs-Adam effect under each. "
        "Resumable: results are kept in each run's evaluations.jsonl.",
    )
    # the flags here, not in xraygan.ablations.rescore: building the parser must not import
    # torch (every `xraygan` command builds all parsers)
    p.add_argument("study", help="study name, e.g. table1-quick")
    p.add_argument("--studies", dest="studies_dir", type=existing_dir, default=Path("studies"),
                   metavar="DIR", help="the folder xraygan sweep --out wrote the study to "
                   "(default: studies)")
    p.add_argument("--storage", default=None, metavar="URL",
                   help="Optuna storage URL (default: sqlite:///DIR/STUDY.db)")
    p.add_argument("--fid-samples", type=int_type(min=2, max=10**6), default=2048, metavar="N",
                   help="generated images per trial (default: 2048)")
    add_device_argument(p)
    p.add_argument("--cells", nargs="+", metavar="KEY", default=None,
                   help="only these cell groups, e.g. --cells adas-elu adam-elu (default: all); "
                   "results already computed are read back from each run's evaluations.jsonl")
    p.add_argument("--md", type=output_file, default=Path("reports/out/fid_check.md"),
                   metavar="FILE", help="markdown output (default: reports/out/fid_check.md)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Re-score, write the markdown, print it; XrayganError (no such study) propagates."""
    from xraygan.ablations.rescore import check
    from xraygan.reports.load import load_study
    from xraygan.reports.rescore_table import markdown_table

    from ..runs import atomic_write_text
    from ..train import resolve_device

    study = load_study(args.study, args.storage, args.studies_dir)
    rows = check([t.user_attrs for t in study.trials], args.fid_samples,
                 str(resolve_device(args.device)), args.cells)
    text = f"# {args.study}: reduced FID against FID at {args.fid_samples}\n\n" + markdown_table(rows)
    atomic_write_text(args.md, text)
    print(text)
    return 0
