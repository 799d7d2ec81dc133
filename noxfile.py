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


@nox.session
def quickstart(session: nox.Session) -> None:
    """The quick reproduction: Table I at CPU scale on the built-in phantoms, then its report."""
    install(session)
    # posargs go to the sweep (e.g. --device cuda, --data dicom:PATH); about 20 min on 2 CPU cores
    session.run("xraygan", "sweep", "table1", "--quick", *session.posargs)
    session.run("xraygan", "report", "table1-quick")


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
