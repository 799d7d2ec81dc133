"""The README stays a short entry point whose commands are the ones CI runs; its links and the
docs carry no development history. (The docs site itself builds with warnings as errors in the
tests nox session: mkdocs build --strict.)"""

import re
import subprocess
import sys
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


# --------------------------------------------------------------------------- against the CLI
def _parsers():
    import argparse

    from xraygan.cli import build_parser

    def walk(parser, name=()):
        yield name, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, p in action.choices.items():
                    yield from walk(p, (*name, sub))

    return dict(walk(build_parser()))


def _flags(parser) -> set[str]:
    """The flags ``--help`` lists (older spellings still parse but are not listed: the docs
    use the current names)."""
    shown = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", parser.format_help()))
    return {s for a in parser._actions for s in a.option_strings} & shown


DOC_TEXTS = {"README.md": README, **{str(p.relative_to(ROOT)): p.read_text() for p in PAGES}}
COMMAND = re.compile(r"xraygan ([a-z][a-z-]*)((?: [^\s`|#;)&]+)*)")


def doc_flags() -> list[tuple[str, tuple[str, ...], str]]:
    """(page, subcommand path, flag) of every flag written after ``xraygan SUB`` on one line."""
    parsers = _parsers()
    out = []
    for page, text in DOC_TEXTS.items():
        for line in text.splitlines():
            for m in COMMAND.finditer(line):
                words = m.group(2).split()
                path = (m.group(1),)
                if words and (*path, words[0]) in parsers:
                    path = (*path, words[0])
                if path not in parsers:
                    continue
                out += [(page, path, w.split("=")[0]) for w in words
                        if re.fullmatch(r"--[a-z][a-z0-9-]*(=\S*)?", w)]
    return out


def test_every_flag_in_the_docs_exists():
    parsers = _parsers()
    stale = sorted({f"{page}: xraygan {' '.join(path)} {flag}" for page, path, flag in doc_flags()
                    if flag not in _flags(parsers[path])})
    assert stale == [], "flags the commands do not have:\n" + "\n".join(stale)


# flags of other tools (benchmarks/gpu_check.py, pytest-benchmark) and the older spellings
# cli.md names as such
NOT_XRAYGAN = {"--sweep-args", "--table1-steps", "--benchmark-compare", "--benchmark-compare-fail",
               "--image-sizes", "--sizes"}


def test_every_backquoted_flag_is_some_commands():
    every = set().union(*(_flags(p) for p in _parsers().values())) | NOT_XRAYGAN
    odd = sorted({f"{page}: {flag}" for page, text in DOC_TEXTS.items()
                  for flag in re.findall(r"`(--[a-z][a-z0-9-]*)[ =`]", text)
                  if flag not in every})
    assert odd == [], "flags no command lists:\n" + "\n".join(odd)


def test_the_flag_check_can_fail():
    assert "--seed" not in _flags(_parsers()[("fid",)])  # fid's noise seed is --noise-seed


def test_cli_page_lists_every_subcommand():
    text = (ROOT / "docs" / "cli.md").read_text()
    listed = set(re.findall(r"^\| `xraygan ([a-z-]+)", text, re.M))
    commands = {p[0] for p in _parsers() if len(p) == 1}
    assert listed == commands, f"missing: {commands - listed}; not commands: {listed - commands}"


def test_every_list_of_studies_is_complete():
    # the studies `xraygan sweep --list` prints, in a fresh process (tests register their own)
    listed = subprocess.run([sys.executable, "-c", "import sys; from xraygan.cli import main; "
                             "sys.exit(main(['sweep', '--list']))"], capture_output=True,
                            text=True, check=True).stdout
    names = {line.split()[0] for line in listed.splitlines() if line.strip()}
    assert {"table1", "utility"} <= names
    # an enumeration of studies starts "table1, table3" (README, cli.md, sweeps.md ...)
    lists = [(page, m.group(0)) for page, text in DOC_TEXTS.items()
             for m in re.finditer(r"table1, table3(?:, [a-z][a-z0-9-]*)*", text)]
    assert lists, "no list of studies found: the pattern is stale"
    short = [f"{page}: {found} lacks {sorted(names - set(found.split(', ')))}"
             for page, found in lists if not names <= set(found.split(", "))]
    assert short == []
    table = (ROOT / "docs" / "sweeps.md").read_text()
    assert set(re.findall(r"^\| `([a-z0-9-]+)` \|", table, re.M)) >= names


def test_phantom_v2_is_in_train_help_and_training_page():
    help_text = " ".join(_parsers()[("train",)].format_help().split())
    assert "phantom:v2" in help_text
    assert "phantom:v2" in (ROOT / "docs" / "training.md").read_text()
