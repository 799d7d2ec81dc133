"""Memory regression check: the committed figures of benchmarks/baselines/memory.json.

Machine-independent figures are compared exactly on every machine; the measured peak against
the entry of this machine's class (xraygan.fingerprint.machine_class), or, on a class with no
entry, against the project's estimate within the band set from data. After a deliberate
change, rewrite the baselines with ``xraygan memory --update-baselines`` and commit the file.
"""

import functools
import json

import pytest

from xraygan.memory import baselines as bl
from xraygan.memory.baselines import (
    BASELINE_CONFIGS,
    BASELINE_PATH,
    ESTIMATE_BAND,
    EXACT_FIGURES,
    MEASURED,
    EstimateMismatch,
    Regression,
    check,
    compare,
    compute_figures,
    read_baselines,
)

UPDATE_HINT = "if the growth is intended: xraygan memory --update-baselines, and commit the file"
FOREIGN = "cpu-sve256-torch9.9"  # a class no committed entry has
AVX512 = "cpu-avx512-torch2.14"  # the committed peaks of the AVX-512 EPYC (Zen 4)


@functools.cache
def figures(name: str) -> dict[str, int]:
    return compute_figures(name)  # measured once per config for the whole module


def test_baseline_file_covers_every_config_and_figure():
    data = read_baselines()
    assert set(data["configs"]) == set(BASELINE_CONFIGS)
    for entry in data["configs"].values():
        assert set(entry["figures"]) == set(EXACT_FIGURES)
    assert AVX512 in data["measured"]
    for cls, entry in data["measured"].items():
        assert set(entry["peaks"]) == set(BASELINE_CONFIGS), cls
        assert entry["machine"]["cpu_capability"], cls  # every entry says where it was made
    assert tuple(data["estimate_band"]) == ESTIMATE_BAND


@pytest.mark.parametrize("name", sorted(BASELINE_CONFIGS))
def test_memory_figures_do_not_grow(name):
    problems, how = check(name, read_baselines(), figures(name))
    assert not problems, "; ".join(map(str, problems)) + f" ({UPDATE_HINT}: {BASELINE_PATH})"


@pytest.mark.parametrize("name", sorted(BASELINE_CONFIGS))
def test_unknown_machine_checks_the_peak_against_the_estimate(name, monkeypatch):
    monkeypatch.setattr(bl, "machine_class", lambda fp=None: FOREIGN)
    data = read_baselines()
    assert FOREIGN not in data["measured"]
    problems, how = check(name, data, figures(name))
    assert how.startswith(f"against the estimate (no {FOREIGN} baseline; ratio ")
    assert not problems, "; ".join(map(str, problems))
    # ... and the fallback is a real check: a peak past the band's top fails, naming the class
    est = figures(name)["estimate_bytes"]
    grown = {**figures(name), MEASURED: int(est * (ESTIMATE_BAND[1] + 0.01))}
    (problem,) = check(name, data, grown)[0]
    assert isinstance(problem, EstimateMismatch)
    assert f"no measured baseline for machine class {FOREIGN}" in str(problem)
    # a broken measurement (below the band) does not pass silently either
    assert check(name, data, {**figures(name), MEASURED: int(est * (ESTIMATE_BAND[0] - 0.01))})[0]


def test_growth_beyond_tolerance_fails_for_the_known_class():
    name = "paper-elu-16-w8-b8-adas"
    data = read_baselines()
    base = data["measured"][AVX512]["peaks"][name]
    current = {**{k: data["configs"][name]["figures"][k] for k in EXACT_FIGURES}, MEASURED: base}
    assert check(name, data, current, machine=AVX512) == ([], f"against the {AVX512} baseline")
    ok = {**current, MEASURED: int(base * 1.015)}
    assert check(name, data, ok, machine=AVX512)[0] == []
    (reg,) = check(name, data, {**current, MEASURED: int(base * 1.03)}, machine=AVX512)[0]
    assert isinstance(reg, Regression) and reg.figure == MEASURED and "tolerance 2.0%" in str(reg)
    # machine-independent figures are exact on every class, known or not
    (reg,) = check(name, data, {**current, "param_bytes": current["param_bytes"] + 4},
                   machine=FOREIGN)[0]
    assert reg.figure == "param_bytes"


def test_update_baselines_keeps_other_classes(tmp_path, monkeypatch):
    path = tmp_path / "memory.json"
    committed = read_baselines()
    foreign = {"machine": {"cpu_capability": "SVE256"}, "threads": 1,
               "peaks": {n: 123 for n in BASELINE_CONFIGS}}
    committed["measured"] = {FOREIGN: foreign, AVX512: committed["measured"][AVX512]}
    path.write_text(json.dumps(committed))
    fake = {n: {**{k: i + 1 for i, k in enumerate(EXACT_FIGURES)}, MEASURED: 1000 + j}
            for j, n in enumerate(BASELINE_CONFIGS)}
    monkeypatch.setattr(bl, "compute_figures", fake.__getitem__)
    monkeypatch.setattr(bl, "machine_class", lambda fp=None: "cpu-test-torch0.0")
    monkeypatch.setattr(bl, "BASELINE_PATH", path)
    from xraygan.cli import main

    assert main(["memory", "--update-baselines"]) == 0
    data = read_baselines(path)
    assert data["measured"][FOREIGN] == foreign  # untouched
    assert data["measured"][AVX512] == committed["measured"][AVX512]
    mine = data["measured"]["cpu-test-torch0.0"]
    assert mine["peaks"] == {n: f[MEASURED] for n, f in fake.items()}
    assert "process" not in mine["machine"] and mine["machine"]["cpu_model"]
    assert data["configs"][next(iter(BASELINE_CONFIGS))]["figures"] == {
        k: i + 1 for i, k in enumerate(EXACT_FIGURES)}


def test_compare_names_the_config_and_the_figure():
    base = {"param_bytes": 1000, "measured_peak_bytes": 10_000}
    assert compare("cfg", base, {"param_bytes": 1000, "measured_peak_bytes": 10_150}) == []
    assert compare("cfg", base, {"param_bytes": 900, "measured_peak_bytes": 9000}) == []  # shrinking
    (reg,) = compare("cfg", base, {"param_bytes": 1004, "measured_peak_bytes": 10_000})
    assert isinstance(reg, Regression)
    assert str(reg).startswith("cfg: param_bytes grew +0.40% (1,000 -> 1,004 bytes")
    (reg,) = compare("cfg", base, {"param_bytes": 1000, "measured_peak_bytes": 10_300})
    assert reg.figure == "measured_peak_bytes" and "tolerance 2.0%" in str(reg)
