"""Imports run one way, checked on the source, statically.

Inside the library (gan_core/, installed as ``xraygan``) every module stands on a floor of
:data:`FLOORS` and imports only from its own floor or below: documents and configs, then the
builders, the run folder and what reads it, the trainer, measurement, the claims engine, and
the command line on top. Across the packages: the library never imports the studies
(``xraygan.ablations``) or the reports; the claims engine (``xraygan.claims``) neither; the
studies never import the reports or the command line; the reports never the command line.
An import is every ``import``/``from`` statement, at the top or inside a function, and every
module named as a string to ``importlib.import_module``, ``__import__`` or ``lazy_module``.
Only the command line (gan_core/cli/) ties the packages together.

``violations(root)`` holds every rule; the tests below run it on the tree and, on a temporary
copy with planted imports, show that each rule catches what it forbids.
"""

import ast
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"gan_core": "xraygan", "ablations": "xraygan.ablations", "reports": "xraygan.reports"}

FLOORS = (
    ("ground", {"errors", "lazy", "registry", "budget", "progress", "proctree", "markdown",
                "paper", "trials", "__init__"}),
    ("documents", {"safeio", "documents"}),
    ("config", {"config"}),
    ("builders", {"models", "optim", "losses", "presets", "step"}),
    ("run folder", {"runs", "process", "fingerprint", "precision", "guard", "data", "imageio",
                    "faults", "checkpoint", "sampling", "tensorboard"}),
    ("metrics", {"metrics"}),
    ("trainer", {"train"}),
    ("measurement", {"memory", "costmodel"}),
    ("claims", {"claims"}),
    ("command line", {"cli", "__main__"}),
)
"""The library's floors, ground first: a module of gan_core/ (a file, or a folder as a whole)
imports from its own floor and those below it only."""

LOADERS = {"import_module", "__import__", "lazy_module"}


def module_of(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).parts
    rest = [*parts[1:-1], path.stem] if path.stem != "__init__" else list(parts[1:-1])
    return ".".join([PACKAGES[parts[0]], *rest])


def _string_imports(node: ast.Call, package: str) -> set[str]:
    """Modules a call to importlib.import_module / __import__ / lazy_module names by a string
    (an f-string's fixed parts with ``__name__``/``__package__`` as the module's package)."""
    fn = node.func
    name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
    if name not in LOADERS or not node.args:
        return set()
    arg = node.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        text = arg.value
    elif isinstance(arg, ast.JoinedStr):
        text = ""
        for v in arg.values:
            if isinstance(v, ast.Constant):
                text += str(v.value)
            elif isinstance(v, ast.FormattedValue) and isinstance(v.value, ast.Name) and \
                    v.value.id in ("__name__", "__package__"):
                text += package
            else:
                text += "?"
    else:
        return set()
    if text.startswith("."):  # import_module(".x", __name__): relative to the package
        text = package + text
    return {text} if text.startswith("xraygan") else set()


def imported(path: Path, root: Path = ROOT) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved, names
    given to the importlib functions included)."""
    here = module_of(path, root)
    package = here if path.stem == "__init__" else here.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Call):
            out |= _string_imports(node, package)
    return out


def sources(folder: str, root: Path = ROOT) -> list[Path]:
    return sorted((root / folder).rglob("*.py"))


def floor_of(module: str) -> int | None:
    """The floor of a library module (``xraygan.models.geometry`` -> builders); None for
    names outside the library's floors (the studies, the reports, third-party modules)."""
    parts = module.split(".")
    if parts[0] != "xraygan" or module.startswith(("xraygan.ablations", "xraygan.reports")):
        return None
    room = parts[1] if len(parts) > 1 else "__init__"
    for i, (_, rooms) in enumerate(FLOORS):
        if room in rooms:
            return i
    return None


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def violations(root: Path = ROOT) -> list[str]:
    """Every import of the tree at ``root`` that runs the wrong way, one line each."""
    out = []
    for path in sources("gan_core", root):
        here = module_of(path, root)
        rel = path.relative_to(root)
        mine = floor_of(here)
        if mine is None:
            out.append(f"{rel}: on no floor of FLOORS (place {_room(here)!r} on one)")
            continue
        for m in sorted(imported(path, root)):
            if m.startswith(("xraygan.ablations", "xraygan.reports")) and "cli" not in rel.parts:
                what = "the claims engine" if "claims" in rel.parts else "the library"
                out.append(f"{rel}: {what} imports {m}")
            theirs = floor_of(m)
            if theirs is not None and theirs > mine and m != "xraygan":
                out.append(f"{rel}: floor {FLOORS[mine][0]!r} imports {m} "
                           f"(floor {FLOORS[theirs][0]!r}, above it)")
    for path in sources("ablations", root):
        rel = path.relative_to(root)
        for m in sorted(imported(path, root)):
            if m.startswith(("xraygan.reports", "xraygan.cli")):
                out.append(f"{rel}: a study imports {m}")
    for path in sources("reports", root):
        rel = path.relative_to(root)
        for m in sorted(imported(path, root)):
            if m.startswith("xraygan.cli"):
                out.append(f"{rel}: the reports import {m}")
    return out


def test_imports_run_one_way():
    found = violations()
    assert not found, "\n".join(found)


def test_the_import_scan_resolves_relative_absolute_and_string_imports():
    names = imported(ROOT / "gan_core" / "memory" / "estimate.py")
    assert "xraygan.optim.factory.state_bytes" in names  # from ..optim.factory import ...
    assert any(m.startswith("xraygan.ablations") for m in imported(ROOT / "gan_core/cli/sweep.py"))
    assert "xraygan.models.generator" in _string_imports(
        ast.parse('importlib.import_module(".generator", __name__)').body[0].value, "xraygan.models")
    assert "xraygan.ablations.table1" in _string_imports(
        ast.parse('importlib.import_module(f"{__name__}.table1")').body[0].value, "xraygan.ablations")
    assert floor_of("xraygan.models.geometry") < floor_of("xraygan.train") < floor_of("xraygan.cli")
    assert floor_of("torch") is None and floor_of("xraygan.reports.build") is None


PLANTED = {
    "an importlib string, library -> studies": (
        "gan_core/runs.py", 'import importlib\nimportlib.import_module("xraygan.ablations.spec")\n',
        "the library imports xraygan.ablations.spec"),
    "library -> reports, inside a function": (
        "gan_core/train.py", "def _f():\n    from xraygan.reports import build\n",
        "the library imports xraygan.reports"),
    "library -> command line": (
        "gan_core/metrics/kid.py", "from ..cli import main\n", "imports xraygan.cli"),
    "claims engine -> reports": (
        "gan_core/claims/stats.py", "from xraygan.reports.tables import fmt_value\n",
        "the claims engine imports xraygan.reports.tables"),
    "order inside the library: config -> builders": (
        "gan_core/config.py", "from .models.activations import ACTIVATIONS\n",
        "floor 'config' imports xraygan.models.activations"),
    "order inside the library, by a lazy string": (
        "gan_core/safeio.py", 'from .lazy import lazy_module\nguard = lazy_module("xraygan.guard")\n',
        "floor 'documents' imports xraygan.guard"),
    "studies -> reports": (
        "ablations/table1.py", "from xraygan.reports.load import load_study\n",
        "a study imports xraygan.reports.load"),
    "studies -> command line": (
        "ablations/runner.py", "from xraygan.cli.sweep import build_options\n",
        "a study imports xraygan.cli.sweep"),
    "reports -> command line": (
        "reports/build.py", "from xraygan.cli import build_parser\n",
        "the reports import xraygan.cli"),
    "a module on no floor": (
        "gan_core/newroom.py", "X = 1\n", "on no floor of FLOORS"),
}


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    dst = tmp_path_factory.mktemp("tree")
    for folder in PACKAGES:
        shutil.copytree(ROOT / folder, dst / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


@pytest.mark.parametrize("case", sorted(PLANTED))
def test_each_rule_catches_a_planted_violation(copy, case):
    file, code, expected = PLANTED[case]
    target = copy / file
    before = target.read_text() if target.exists() else None
    target.write_text((before or "") + "\n" + code)
    try:
        found = violations(copy)
    finally:
        if before is None:
            target.unlink()
        else:
            target.write_text(before)
    assert any(expected in line and file in line for line in found), found
    assert not violations(copy)  # the copy is clean again: each case stands alone


@pytest.mark.parametrize("path", sources("ablations") + sources("reports"),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_runs_under_a_second_name(path):
    # `python -m ablations.x` from the repository root would load a second copy of the package
    # beside xraygan.ablations: a module run as a program is named by its installed name
    text = path.read_text()
    assert "python -m ablations" not in text and "python -m reports" not in text
