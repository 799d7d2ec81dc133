"""Imports sit at the top of modules: only the command line's ``run()`` bodies (gan_core/cli/)
and package ``__init__`` files defer imports (PEP 562 ``__getattr__``); a heavy third-party
module that a light module needs is bound at its top through ``xraygan.lazy.lazy_module``.
What is left inside functions is counted and capped; and the report and claims packages
import without torch (checked on ``sys.modules`` in a fresh interpreter)."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCAL_IMPORTS_MAX = 60


def local_imports(path: Path) -> list[int]:
    """Line numbers of the import statements inside a function of ``path``."""
    lines: set[int] = set()
    for fn in ast.walk(ast.parse(path.read_text())):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines |= {n.lineno for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))}
    return sorted(lines)


def counted_files() -> list[Path]:
    out = []
    for folder in ("gan_core", "ablations", "reports"):
        for p in sorted((ROOT / folder).rglob("*.py")):
            if p.name == "__init__.py" or (folder == "gan_core" and p.parts[len(ROOT.parts) + 1] == "cli"):
                continue
            out.append(p)
    return out


def test_function_local_imports_are_few():
    found = {str(p.relative_to(ROOT)): local_imports(p) for p in counted_files()}
    total = sum(len(v) for v in found.values())
    worst = sorted(found.items(), key=lambda kv: -len(kv[1]))[:8]
    assert total <= LOCAL_IMPORTS_MAX, (
        f"{total} function-local imports outside gan_core/cli/ and __init__.py (at most "
        f"{LOCAL_IMPORTS_MAX}); most: " + ", ".join(f"{k} {len(v)}" for k, v in worst))


def test_the_count_sees_a_local_import(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import os\n\ndef f():\n    import json\n    def g():\n        from x import y\n")
    assert local_imports(f) == [4, 6]
    assert not any("cli" in p.parts or p.name == "__init__.py" for p in counted_files())


HEAVY = ("torch", "torchvision")


def loaded_after(module: str) -> list[str]:
    code = (f"import json, sys, {module}\n"
            f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", [
    "xraygan.reports", "xraygan.reports.build", "xraygan.claims", "xraygan.claims.engine",
    "xraygan.claims.calibration", "xraygan.claims.quality", "xraygan.claims.table1",
    "xraygan.claims.memory", "xraygan.claims.utility", "xraygan.metrics", "xraygan.config"])
def test_the_report_and_the_claims_import_without_torch(module):
    assert loaded_after(module) == []


def test_the_probe_sees_torch():
    assert "torch" in loaded_after("xraygan.metrics.main")
