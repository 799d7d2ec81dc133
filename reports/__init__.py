"""Reports: the paper's tables and figures regenerated from our studies and run folders, the
paper's numbers beside ours, and a verdict on each of its claims.

    paper.py     the paper's numbers (Table I, T0 ranges, memory example, BN saving range)
    load.py      Optuna studies and run folders -> one trials DataFrame
    stats.py     mean and t confidence interval, growth-law fits
    tables.py    markdown tables (Table I, Table III, memory, BN saving, growth, throughput)
    figures.py   seaborn PNGs (Fig. 3-8, mode collapse); each returns the data it plotted
    claims.py    each claim: evidence, rule, verdict
    protocol.py  data, sizes, steps, FID samples, weights checksum, seeds, hardware, software
    build.py     build_report(studies, out_dir, storage=..., runs=...) -> index.md + one page each

Reports read only what ablations and training write (ARCHITECTURE.md): nothing here trains.
"""

from .build import DEFAULT_OUT, Report, build_report

__all__ = ["DEFAULT_OUT", "Report", "build_report"]
