"""Memory of a process tree: a child's pages count in the parent's tree, PSS where Linux has it."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from xraygan import proctree

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")

CHILD = ("import sys, time; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); "
         "print('ready', flush=True); time.sleep(30)")


def test_a_child_process_counts_in_the_tree():
    before = proctree.tree_memory()
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        assert child.pid in proctree.tree(proctree.os.getpid())
        with proctree.PeakSampler(interval=0.05) as sampler:
            time.sleep(0.2)
        now = proctree.tree_memory()
        assert now.processes == before.processes + 1
        assert now.rss_bytes - before.rss_bytes > 190 * 2**20  # the child's 200 MiB, touched
        peak = sampler.peak()
        assert peak["peak_rss_bytes"] >= now.rss_bytes - 50 * 2**20
        if peak["peak_pss_bytes"] is not None:
            assert peak["peak_pss_bytes"] <= peak["peak_rss_bytes"]  # shared pages divided
            assert peak["peak_pss_bytes"] > 190 * 2**20
    finally:
        child.kill()
        child.wait()
    assert proctree.process_memory(child.pid) is None  # gone


def test_the_command_line_reports_a_peak(capsys):
    assert proctree.main(["--", sys.executable, "-c", "pass"]) == 0
    import json

    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["exit"] == 0 and out["peak_rss_bytes"] > 0
