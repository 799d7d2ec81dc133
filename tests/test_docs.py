"""The README stays a short entry point whose commands are the ones CI runs; its links and the
docs carry no development history. (The docs site itself builds with warnings as errors in the
tests nox session: mkdocs build --strict.)"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PAGES = sorted((ROOT / "docs").rglob("*.md"))
HISTORY = re.compile(r"\bissue[ -]?\d+|until this session|\bRun [ABC]\b|the rule before|"
                     r"sections merged below|re-?exported for callers", re.I)


def test_readme_is_short():
    assert len(README.splitlines()) <= 250


def test_ci_runs_the_readme_test_command():
    (command,) = [line.split("#")[0].strip() for line in README.splitlines()
                  if line.startswith("python3 -m venv") and "nox -s tests" in line]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in [line.strip() for line in ci if not line.startswith("#")]


def test_readme_links_exist():
    broken = [link for link in re.findall(r"\]\(([^)#]+)\)", README)
              if not link.startswith("http") and not (ROOT / link).exists()]
    assert broken == []


@pytest.mark.parametrize("path", [ROOT / "README.md", ROOT / "CHANGELOG.md", *PAGES],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_development_history_in_the_docs(path):
    assert HISTORY.findall(path.read_text()) == []


def test_the_history_check_can_fail():
    assert HISTORY.findall("as measured in issue 10 (Run B)") == ["issue 10", "Run B"]
