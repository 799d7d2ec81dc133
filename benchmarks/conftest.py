"""Benchmark suite setup: every benchmark's JSON says which machine made it.

pytest-benchmark saves ``extra_info`` with each benchmark; the fixture below puts the machine
fingerprint (xraygan.fingerprint) there, so a figure read back later names its CPU class,
cores, torch and oneDNN versions and the process settings it ran under. Tests that do not use
the ``benchmark`` fixture are left alone (no fixture is requested for them).
"""

from __future__ import annotations

import pytest
import torch

from xraygan.fingerprint import fingerprint


@pytest.fixture(autouse=True)
def _stamp_machine(request: pytest.FixtureRequest) -> None:
    if "benchmark" not in request.fixturenames:
        return
    benchmark = request.getfixturevalue("benchmark")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    benchmark.extra_info["machine"] = fingerprint(device)
