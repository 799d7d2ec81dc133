"""Imports run one way (config -> builders -> trainer -> metrics -> ablations -> reports): the
library never imports the studies or the reports, the studies never import the reports. Only
the command line (gan_core/cli/) ties them together. Checked on the source, statically."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    package = {"gan_core": "xraygan", "ablations": "xraygan.ablations",
               "reports": "xraygan.reports"}[path.relative_to(ROOT).parts[0]]
    sub = path.relative_to(ROOT).parts[1:-1]
    here = ".".join([package, *sub])
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")[: len(here.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return out


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", [p for p in sources("gan_core") if "cli" not in p.parts],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_the_library_imports_neither_studies_nor_reports(path):
    bad = {m for m in imported(path)
           if m.startswith(("xraygan.ablations", "xraygan.reports"))}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", sources("ablations"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_studies_do_not_import_the_reports(path):
    bad = {m for m in imported(path) if m.startswith("xraygan.reports")}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_import_scan_resolves_relative_and_absolute_imports():
    names = imported(ROOT / "gan_core" / "memory" / "estimate.py")
    assert "xraygan.optim.factory.state_bytes" in names  # from ..optim.factory import ...
    assert any(m.startswith("xraygan.ablations") for m in imported(ROOT / "gan_core/cli/sweep.py"))


@pytest.mark.parametrize("path", sources("ablations") + sources("reports"),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_runs_under_a_second_name(path):
    # `python -m ablations.x` from the repository root would load a second copy of the package
    # beside xraygan.ablations: a module run as a program is named by its installed name
    text = path.read_text()
    assert "python -m ablations" not in text and "python -m reports" not in text
