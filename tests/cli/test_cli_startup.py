"""`xraygan --help`, every subcommand's help and tab completion load no heavy library: torch,
pandas, Optuna, numpy and matplotlib are imported only when a command runs. Checked on
sys.modules in a fresh interpreter, so the check does not depend on the machine's speed."""

import json
import os
import subprocess
import sys

import pytest

from xraygan.cli import COMMANDS

HEAVY = ("torch", "pandas", "optuna", "numpy", "scipy", "matplotlib", "PIL", "sqlalchemy")

PROBE = """
import json, os, sys

def report():
    print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)), file=sys.stderr)

real_exit = os._exit
def exit_after_report(code):  # argcomplete ends the process with os._exit
    report()
    sys.stderr.flush()
    real_exit(code)
os._exit = exit_after_report

from xraygan.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
report()
"""


def loaded_after(*argv: str, env: dict | None = None) -> list[str]:
    code = PROBE.format(heavy=HEAVY)
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                       env={**os.environ, **(env or {})}, timeout=120)
    return json.loads(r.stderr.strip().splitlines()[-1])


def test_top_level_help_loads_no_heavy_library():
    assert loaded_after("--help") == []


@pytest.mark.parametrize("command", [c.replace("_", "-") for c in COMMANDS])
def test_subcommand_help_loads_no_heavy_library(command):
    assert loaded_after(command, "--help") == []


def test_tab_completion_loads_no_heavy_library():
    # what bash's completion hook sets (argcomplete's protocol); the candidates go to fd 8
    line = "xraygan train --pre"
    env = {"_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
           "_ARGCOMPLETE_SUPPRESS_SPACE": "1", "_ARGCOMPLETE_STDOUT_FILENAME": os.devnull}
    assert loaded_after(env=env) == []


def test_the_probe_sees_a_heavy_import():
    # the check above can fail: a command that runs does load torch
    assert "torch" in loaded_after("presets", "paper-elu")
