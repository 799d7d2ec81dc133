"""``xraygan report [STUDY ...]``: markdown tables, figures and claim verdicts from studies
and run folders (reports/)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .argtypes import existing_dir, input_file, out_dir


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write the report: tables, figures, the paper's claims with verdicts",
        description="Write one markdown page per study (Table I / III, memory, throughput, "
        "figures, claims) and an index linking them. STUDY is an Optuna study name as "
        "`xraygan sweep` created it (table1-quick); it is read from DIR/STUDY.db, DIR being the "
        "sweep's --out (--studies DIR; default: studies), or from --storage URL.",
    )
    p.add_argument("studies", nargs="*", metavar="STUDY", help="study names (e.g. table1-quick)")
    p.add_argument("--out", type=out_dir, default=None, metavar="DIR",
                   help="output folder (default: reports/out)")
    p.add_argument("--studies", dest="studies_dir", type=existing_dir, default=Path("studies"),
                   metavar="DIR",
                   help="the folder xraygan sweep --out wrote the studies to (default: studies)")
    p.add_argument("--storage", metavar="URL", help="Optuna storage URL holding the studies "
                   "(default: sqlite:///DIR/STUDY.db per study)")
    p.add_argument("--runs", nargs="+", default=(), metavar="RUN",
                   help="also report these run folders (or folders of runs; default: none)")
    p.add_argument("--memory", nargs="+", default=(), metavar="FILE", type=input_file,
                   help="also report xraygan memory --json (or --csv) files (default: none)")
    p.add_argument("--no-figures", action="store_true", help="tables and claims only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from xraygan.reports import DEFAULT_OUT, build_report

    out = args.out or DEFAULT_OUT
    report = build_report(args.studies, out, storage=args.storage, runs=args.runs,
                          memory=args.memory, draw=not args.no_figures,
                          studies_dir=args.studies_dir)
    for name, page in report.pages.items():
        print(f"{name}: {page} ({len(report.figures[name])} figures)")
    for c in report.claims:
        where = f"  [{c.population}]" if c.population else ""
        why = f" ({c.reason})" if c.verdict == "untestable" else ""
        print(f"  {c.verdict:14s} {c.key}{where}{why}")
    for note in report.notes:  # trials no table or claim counted, each with its reason
        if ": excluded " in note:
            print(f"report: {note}", file=sys.stderr)
    print(f"index: {report.index}")
    return 0
