"""nox sessions: `nox -l` lists them. Only `tests` and `lint` run by default.

Every session that needs the project runs it from one shared environment, `.nox/xraygan`
(about 6 GB, most of it PyPI's CUDA build of torch): `quickstart`, `report`, `tests` and the
rest install into it once and then only check that it is up to date, instead of building an
environment each. The environment is a standard-library venv made by the Python that runs nox,
so it works where the system Python is externally managed (PEP 668).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True

# torch is pinned to the release this project is tested with. On PyPI it is a CUDA build that
# also runs on the CPU; machines with a local wheel cache (this project's CI) take it from disk.
TORCH = ("torch==2.14.1", "torchvision==0.29.1")
ROOT = Path(__file__).resolve().parent
SHARED = ROOT / ".nox" / "xraygan"
# every extra a session may need, installed together so that sessions never undo each other
EXTRAS = "dev,docs,dashboard"


def shared_env(session: nox.Session) -> Path:
    """Make (first time) and update the shared environment; return its bin/ folder."""
    bin_dir = SHARED / "bin"
    if not (bin_dir / "python").exists():
        session.run(sys.executable, "-m", "venv", str(SHARED), external=True)
    pip = (str(bin_dir / "python"), "-m", "pip", "install", "--quiet")
    session.run(*pip, *TORCH, external=True)
    session.run(*pip, "-e", f"{ROOT}[{EXTRAS}]", external=True)
    return bin_dir


def run(session: nox.Session, bin_dir: Path, tool: str, *args: str) -> None:
    session.run(str(bin_dir / tool), *args, external=True)


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """Run the test suite and build the docs with warnings as errors (under ten minutes on two CPU cores)."""
    bin_dir = shared_env(session)
    run(session, bin_dir, "pytest", "-m", "not slow", *session.posargs)
    if not session.posargs:
        run(session, bin_dir, "mkdocs", "build", "--strict", "--site-dir", str(SHARED / "site"))


@nox.session(venv_backend="none")
def tests_slow(session: nox.Session) -> None:
    """Run every test, the slow ones too (multi-worker sweeps on real-data layouts, signals)."""
    bin_dir = shared_env(session)
    run(session, bin_dir, "pytest", *session.posargs)


@nox.session(venv_backend="none")
def lint(session: nox.Session) -> None:
    """Check style and common bugs with ruff."""
    bin_dir = shared_env(session)
    run(session, bin_dir, "ruff", "check", "gan_core", "ablations", "reports", "benchmarks",
        "tests", "noxfile.py")


@nox.session(venv_backend="none")
def docs(session: nox.Session) -> None:
    """Build the documentation site into site/ with warnings as errors (`-- serve` for a live preview)."""
    bin_dir = shared_env(session)
    if session.posargs[:1] == ["serve"]:
        run(session, bin_dir, "mkdocs", "serve", *session.posargs[1:])
    else:
        run(session, bin_dir, "mkdocs", "build", "--strict", *session.posargs)


# The quick reproduction's seeds and workers: ablations/scale.py (QUICK_SEEDS, QUICK_WORKERS)
# explains them; tests/ablations/test_stats_scale.py checks that these copies agree (nox runs outside the
# project's environment, so it cannot import them).
QUICK_SEEDS = 5
QUICK_WORKERS = 2
QUICK_CELLS = ("adas-elu", "adam-elu")
FULL_SEEDS = 5
FULL_STUDIES = ("table1", "table3", "batchnorm", "fmaps")


def quick_args(posargs: list[str]) -> list[str]:
    """The quickstart's sweep arguments: Table I's headline pair, seeds and workers, then the
    user's flags (later flags win: `-- --workers 1`, `-- --seeds 8` or `-- --cells ...`
    override)."""
    return ["table1", "--quick", "--seeds", str(QUICK_SEEDS), "--workers", str(QUICK_WORKERS),
            "--cells", *QUICK_CELLS, *posargs]


def full_args(study: str, posargs: list[str]) -> list[str]:
    seeds = ["--seeds", str(FULL_SEEDS)] if study == "table1" else []
    return [study, "--full", *seeds, *posargs]


@nox.session(venv_backend="none")
def quickstart(session: nox.Session) -> None:
    """The quick reproduction: Table I's headline pair (AdaS/ELU vs Adam/ELU), 5 seeds each, on the built-in phantoms, then its report (18-22 min predicted on 2 quiet AVX2 cores)."""
    bin_dir = shared_env(session)
    # 10 trials (2 configurations x 5 seeds) on 2 workers of one thread each; the sweep prints
    # its time estimate at the start and a progress line per trial every 30 s (also into a file:
    # `nox -s quickstart > log 2>&1`). posargs go to the sweep (--device cuda, --data dicom:PATH).
    run(session, bin_dir, "xraygan", "sweep", *quick_args(session.posargs))
    run(session, bin_dir, "xraygan", "report", "table1-quick")


# Where the example report lives in the docs, and the study it is made from: a quick start of
# its own, kept apart from the user's studies/ so that regenerating it never mixes the two.
EXAMPLE_DIR = ROOT / "docs" / "example-report"
EXAMPLE_STUDIES = ROOT / ".nox" / "example-study"


@nox.session(venv_backend="none")
def example_report(session: nox.Session) -> None:
    """Regenerate docs/example-report/ (markdown and figures) from a real quick start (about 20 min on 2 CPU cores; resumable). posargs go to the sweep."""
    bin_dir = shared_env(session)
    run(session, bin_dir, "xraygan", "sweep", *quick_args(session.posargs),
        "--out", str(EXAMPLE_STUDIES))
    staging = EXAMPLE_STUDIES / "report"
    shutil.rmtree(staging, ignore_errors=True)
    run(session, bin_dir, "xraygan", "report", "table1-quick", "--out", str(staging),
        "--storage", f"sqlite:///{EXAMPLE_STUDIES / 'table1-quick.db'}")
    # replace the committed page only once the new one is complete
    shutil.rmtree(EXAMPLE_DIR, ignore_errors=True)
    shutil.copytree(staging, EXAMPLE_DIR)
    run(session, bin_dir, "mkdocs", "build", "--strict", "--site-dir", str(SHARED / "site"))
    session.log(f"wrote {EXAMPLE_DIR.relative_to(ROOT)}/: review and commit it")


@nox.session(venv_backend="none")
def fid_check(session: nox.Session) -> None:
    """Re-score the quickstart's runs with FID at 2,048 samples beside the quick FID, FID_inf and KID (about an hour on 2 CPU cores; resumable; `-- --cells adas-elu adam-elu` for one pair)."""
    bin_dir = shared_env(session)
    run(session, bin_dir, "xraygan", "fid-check", "table1-quick", *session.posargs)


@nox.session(venv_backend="none")
def full(session: nox.Session) -> None:
    """The paper's scale for a GPU: Table I (3 seeds), Table III, batch norm and feature maps at 64x64, 150 epochs; nox -s full -- --device cuda [--data dicom:PATH]."""
    bin_dir = shared_env(session)
    # first every study's cells and calibrated time estimate (--dry-run), then the sweeps
    for study in FULL_STUDIES:
        run(session, bin_dir, "xraygan", "sweep", *full_args(study, session.posargs), "--dry-run")
    for study in FULL_STUDIES:
        run(session, bin_dir, "xraygan", "sweep", *full_args(study, session.posargs))
    run(session, bin_dir, "xraygan", "report", *[f"{s}-full" for s in FULL_STUDIES])


@nox.session(venv_backend="none")
def gpu_check(session: nox.Session) -> None:
    """The GPU check (at most 8 min on one H100/H200): AMP steps, memory, Inception on CUDA vs CPU, throughput, a short full-scale Table I; writes gpu-check/gpu_check.{json,md} (docs/gpu-check.md)."""
    bin_dir = shared_env(session)
    # posargs go to benchmarks/gpu_check.py (--out DIR, --parts amp inception, sizes)
    run(session, bin_dir, "python", "benchmarks/gpu_check.py", "--device", "cuda", *session.posargs)


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
ISA_TESTS = ("tests/metrics/test_frechet.py", "tests/memory/test_memory.py", "tests/optim/test_optim.py",
             "tests/metrics/test_metrics_prdc.py", "tests/core/test_precision.py", "tests/core/test_fast_step.py",
             "tests/metrics/test_stats_fid_infinity.py", "tests/core/test_determinism.py", "tests/core/test_isa.py")


@nox.session(venv_backend="none")
def isa(session: nox.Session) -> None:
    """Run the numerics and memory tests under forced dispatch levels (ATen, oneDNN, MKL, OpenBLAS, numpy); `-- onednn-avx2 lowest` picks levels."""
    levels = session.posargs or list(ISA_LEVELS)
    unknown = [name for name in levels if name not in ISA_LEVELS]
    if unknown:
        session.error(f"unknown level(s) {unknown}; valid: {', '.join(ISA_LEVELS)}")
    bin_dir = shared_env(session)
    for name in levels:
        session.log(f"dispatch level {name}: {ISA_LEVELS[name]}")
        session.run(str(bin_dir / "pytest"), "-q", "-m", "not slow", *ISA_TESTS, external=True,
                    env={**ISA_LEVELS[name], "XRAYGAN_THREADS": "1"})


@nox.session(venv_backend="none")
def benchmarks(session: nox.Session) -> None:
    """Run the pytest-benchmark suites, print their tables (trainer vs reference loop: benchmarks/out/trainer.md) and save JSON under .benchmarks/."""
    bin_dir = shared_env(session)
    run(session, bin_dir, "pytest", "benchmarks", "--benchmark-only", "--benchmark-autosave",
        "-s", *session.posargs)


@nox.session(venv_backend="none")
def ablation(session: nox.Session) -> None:
    """Run an ablation study: nox -s ablation -- table1 --quick (see xraygan sweep --help)."""
    if not session.posargs:
        session.error("name a study: nox -s ablation -- table1 --quick (xraygan sweep --list)")
    bin_dir = shared_env(session)
    run(session, bin_dir, "xraygan", "sweep", *session.posargs)


@nox.session(venv_backend="none")
def dashboard(session: nox.Session) -> None:
    """Open optuna-dashboard on a study storage: nox -s dashboard -- sqlite:///studies/table1-quick.db"""
    bin_dir = shared_env(session)
    storage = session.posargs or ["sqlite:///studies/table1-quick.db"]
    run(session, bin_dir, "optuna-dashboard", *storage)


@nox.session(venv_backend="none")
def report(session: nox.Session) -> None:
    """Write the report (markdown, figures, claims) of every study in studies/ under reports/out."""
    # posargs pass through (study names, --runs, --memory, --out); default: all swept studies
    args = session.posargs or sorted(p.stem for p in Path("studies").glob("*.db"))
    if not args:
        session.error("no studies/*.db yet: run `xraygan sweep table1` first, or pass arguments")
    bin_dir = shared_env(session)
    run(session, bin_dir, "xraygan", "report", *args)


@nox.session(venv_backend="none")
def fuzz(session: nox.Session) -> None:
    """The long fuzz run of the CLI flags, config documents, .npz statistics, checkpoints and run folders (XRAYGAN_FUZZ=long: 400 examples per property, the subprocess cases under RLIMIT_AS; about 30 min on 2 CPU cores). `-- -x` etc. go to pytest; XRAYGAN_FUZZ_EXAMPLES=N sets the count."""
    bin_dir = shared_env(session)
    session.env.setdefault("XRAYGAN_FUZZ", "long")
    run(session, bin_dir, "pytest", "tests/cli/test_fuzz_cli.py", "tests/core/test_fuzz_config.py",
        "tests/core/test_hostile_documents.py", "tests/metrics/test_hostile_stats.py",
        "tests/core/test_hostile_checkpoints.py", "--hypothesis-show-statistics", *session.posargs)
