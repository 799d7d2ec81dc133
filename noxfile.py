"""nox sessions: `nox -l` lists them. Only `tests` and `lint` run by default."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True

# torch is pinned to the release this project is tested with. On PyPI it is a CUDA build that
# also runs on the CPU; machines with a local wheel cache (this project's CI) take it from disk.
TORCH = ("torch==2.14.1", "torchvision==0.29.1")


def install(session: nox.Session, extras: str = "") -> None:
    session.install(*TORCH)
    session.install("-e", f".[{extras}]" if extras else ".")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (fast: under ten minutes on two CPU cores)."""
    install(session, "dev")
    session.run("pytest", "-m", "not slow", *session.posargs)


@nox.session
def tests_slow(session: nox.Session) -> None:
    """Run the slow tests too (longer training runs, larger images)."""
    install(session, "dev")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and common bugs with ruff."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", "gan_core", "ablations", "reports", "benchmarks", "tests", "noxfile.py")


# The quick reproduction's seeds and workers: ablations/scale.py (QUICK_SEEDS, QUICK_WORKERS)
# explains them; tests/test_stats_scale.py checks that these copies agree (nox runs outside the
# project's environment, so it cannot import them).
QUICK_SEEDS = 3
QUICK_WORKERS = 2
FULL_SEEDS = 3
FULL_STUDIES = ("table1", "table3", "batchnorm", "fmaps")


def quick_args(posargs: list[str]) -> list[str]:
    """The quickstart's sweep arguments: Table I, seeds and workers, then the user's flags
    (later flags win: `-- --workers 1` or `-- --seeds 5` override)."""
    return ["table1", "--quick", "--seeds", str(QUICK_SEEDS), "--workers", str(QUICK_WORKERS),
            *posargs]


def full_args(study: str, posargs: list[str]) -> list[str]:
    seeds = ["--seeds", str(FULL_SEEDS)] if study == "table1" else []
    return [study, "--full", *seeds, *posargs]


@nox.session
def quickstart(session: nox.Session) -> None:
    """The quick reproduction: Table I, 3 seeds per configuration, on the built-in phantoms, then its report (about 25 min on 2 CPU cores)."""
    install(session)
    # 12 trials (4 configurations x 3 seeds) on 2 workers of one thread each; the sweep prints
    # its time estimate at the start and a progress line per trial every 30 s (also into a file:
    # `nox -s quickstart > log 2>&1`). posargs go to the sweep (--device cuda, --data dicom:PATH).
    # the sweep computes the FID reference statistics once on both cores before its 2 workers
    # start (xraygan.cli.sweep.warm_reference)
    session.run("xraygan", "sweep", *quick_args(session.posargs))
    session.run("xraygan", "report", "table1-quick")


@nox.session
def fid_check(session: nox.Session) -> None:
    """Re-score the quickstart's runs with FID at 2,048 samples beside the quick FID, FID_inf and KID (about an hour on 2 CPU cores; resumable; `-- --cells adas-elu adam-elu` for one pair)."""
    install(session)
    session.run("xraygan", "fid-check", "table1-quick", *session.posargs)


@nox.session
def full(session: nox.Session) -> None:
    """The paper's scale for a GPU: Table I (3 seeds), Table III, batch norm and feature maps at 64x64, 150 epochs; nox -s full -- --device cuda [--data dicom:PATH]."""
    install(session)
    # first every study's cells and calibrated time estimate (--dry-run), then the sweeps
    for study in FULL_STUDIES:
        session.run("xraygan", "sweep", *full_args(study, session.posargs), "--dry-run")
    for study in FULL_STUDIES:
        session.run("xraygan", "sweep", *full_args(study, session.posargs))
    session.run("xraygan", "report", *[f"{s}-full" for s in FULL_STUDIES])


@nox.session
def gpu_check(session: nox.Session) -> None:
    """The GPU check (at most 8 min on one H100/H200): AMP steps, memory, Inception on CUDA vs CPU, throughput, a short full-scale Table I; writes gpu-check/gpu_check.{json,md} (docs/gpu-check.md)."""
    install(session)
    # posargs go to benchmarks/gpu_check.py (--out DIR, --parts amp inception, sizes)
    session.run("python", "benchmarks/gpu_check.py", "--device", "cuda", *session.posargs)


# Forced kernel dispatch levels: each runs other kernels than the developer's CPU picks, so a
# tolerance fitted to one machine's rounding fails here instead of on a user's CPU
# (docs/reproducibility.md). ATen's vectorized CPU kernels, oneDNN's convolutions (bf16 is
# emulated at AVX512_CORE), MKL's GEMMs (torch), OpenBLAS's (numpy, scipy) and numpy's SIMD loops.
ISA_LEVELS = {
    "aten-default": {"ATEN_CPU_CAPABILITY": "default"},
    "aten-avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "onednn-sse41": {"ONEDNN_MAX_CPU_ISA": "SSE41"},
    "onednn-avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "onednn-avx512-no-bf16": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
    "openblas-haswell": {"OPENBLAS_CORETYPE": "Haswell"},
    "openblas-sandybridge": {"OPENBLAS_CORETYPE": "Sandybridge"},
    "mkl-avx2": {"MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "numpy-no-avx512": {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"},
    "lowest": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
               "OPENBLAS_CORETYPE": "Sandybridge", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
}
ISA_TESTS = ("tests/test_frechet.py", "tests/test_memory.py", "tests/test_optim.py",
             "tests/test_metrics_prdc.py", "tests/test_precision.py", "tests/test_fast_step.py",
             "tests/test_stats_fid_infinity.py", "tests/test_determinism.py", "tests/test_isa.py")


@nox.session
def isa(session: nox.Session) -> None:
    """Run the numerics and memory tests under forced dispatch levels (ATen, oneDNN, MKL, OpenBLAS, numpy); `-- onednn-avx2 lowest` picks levels."""
    install(session, "dev")
    levels = session.posargs or list(ISA_LEVELS)
    unknown = [name for name in levels if name not in ISA_LEVELS]
    if unknown:
        session.error(f"unknown level(s) {unknown}; valid: {', '.join(ISA_LEVELS)}")
    for name in levels:
        session.log(f"dispatch level {name}: {ISA_LEVELS[name]}")
        session.run("pytest", "-q", "-m", "not slow", *ISA_TESTS,
                    env={**ISA_LEVELS[name], "XRAYGAN_THREADS": "1"})


@nox.session
def benchmarks(session: nox.Session) -> None:
    """Run the pytest-benchmark suites and save JSON under .benchmarks/ (compare with --benchmark-compare)."""
    install(session, "dev")
    session.run("pytest", "benchmarks", "--benchmark-only", "--benchmark-autosave", *session.posargs)


@nox.session
def ablation(session: nox.Session) -> None:
    """Run an ablation study: nox -s ablation -- table1 --quick (see xraygan sweep --help)."""
    install(session)
    if not session.posargs:
        session.error("name a study: nox -s ablation -- table1 --quick (xraygan sweep --list)")
    session.run("xraygan", "sweep", *session.posargs)


@nox.session
def dashboard(session: nox.Session) -> None:
    """Open optuna-dashboard on a study storage: nox -s dashboard -- sqlite:///studies/table1-quick.db"""
    install(session, "dashboard")
    storage = session.posargs or ["sqlite:///studies/table1-quick.db"]
    session.run("optuna-dashboard", *storage)


@nox.session
def report(session: nox.Session) -> None:
    """Write the report (markdown, figures, claims) of every study in studies/ under reports/out."""
    from pathlib import Path

    install(session)
    # posargs pass through (study names, --runs, --memory, --out); default: all swept studies
    args = session.posargs or sorted(p.stem for p in Path("studies").glob("*.db"))
    if not args:
        session.error("no studies/*.db yet: run `xraygan sweep table1` first, or pass arguments")
    session.run("xraygan", "report", *args)


@nox.session
def fuzz(session: nox.Session) -> None:
    """The long fuzz run of the CLI flags, config documents, .npz statistics, checkpoints and run folders (XRAYGAN_FUZZ=long: 400 examples per property, the subprocess cases under RLIMIT_AS; about 30 min on 2 CPU cores). `-- -x` etc. go to pytest; XRAYGAN_FUZZ_EXAMPLES=N sets the count."""
    install(session, "dev")
    session.env.setdefault("XRAYGAN_FUZZ", "long")
    session.run("pytest", "tests/test_fuzz_cli.py", "tests/test_fuzz_config.py",
                "tests/test_hostile_documents.py", "tests/test_hostile_stats.py",
                "tests/test_hostile_checkpoints.py", "--hypothesis-show-statistics",
                *session.posargs)
