"""Reports: the paper's tables and figures regenerated from our studies and run folders, the
paper's numbers beside ours, and a verdict on each of its claims.

    paper.py     the paper's numbers (Table I, T0 ranges, memory example, BN saving range)
    load.py      Optuna studies and run folders -> one trials DataFrame
    stats.py     mean and t confidence interval, growth-law fits
    tables.py    markdown tables (Table I, Table III, memory, BN saving, growth, throughput)
    figures.py   seaborn PNGs (Fig. 3-8, mode collapse); each returns the data it plotted
    claims.py    the claim registry (one declaration per claim), deciding, the Table I claims
    claims_quality.py, claims_memory.py   the other claims
    claim_protocol.py  a claim's protocol as data, its canonical JSON and hash (registration)
    decide.py    the tests (Welch, TOST, Pearson, binomial), Holm, verdicts, a priori seeds
    verdicts.py  the verdict vocabulary (one enum)
    calibration.py   every rule on simulated studies with known truth
    protocol.py  data, sizes, steps, FID samples, weights checksum, seeds, hardware, software
    build.py     build_report(studies, out_dir, storage=..., runs=...) -> index.md + one page each

Reports read only what ablations and training write (ARCHITECTURE.md): nothing here trains.
"""

from .build import DEFAULT_OUT, Report, build_report

__all__ = ["DEFAULT_OUT", "Report", "build_report"]
