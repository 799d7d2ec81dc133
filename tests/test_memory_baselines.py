"""Memory regression check: the committed figures of benchmarks/baselines/memory.json.

Fails when a figure of a baseline config grows beyond its tolerance, naming both. After a
deliberate change, rewrite the baselines with ``xraygan memory --update-baselines`` and commit
the file with the change.
"""

import pytest

from gan_core.memory.baselines import (
    BASELINE_CONFIGS,
    BASELINE_PATH,
    FIGURE_TOLERANCES,
    Regression,
    compare,
    compute_figures,
    read_baselines,
)

UPDATE_HINT = "if the growth is intended: xraygan memory --update-baselines, and commit the file"


def test_baseline_file_covers_every_config_and_figure():
    data = read_baselines()
    assert set(data["configs"]) == set(BASELINE_CONFIGS)
    for entry in data["configs"].values():
        assert set(entry["figures"]) == set(FIGURE_TOLERANCES)


@pytest.mark.parametrize("name", sorted(BASELINE_CONFIGS))
def test_memory_figures_do_not_grow(name):
    baseline = read_baselines()["configs"][name]["figures"]
    regressions = compare(name, baseline, compute_figures(name))
    assert not regressions, "; ".join(map(str, regressions)) + f" ({UPDATE_HINT}: {BASELINE_PATH})"


def test_compare_names_the_config_and_the_figure():
    base = {"param_bytes": 1000, "measured_peak_bytes": 10_000}
    assert compare("cfg", base, {"param_bytes": 1000, "measured_peak_bytes": 10_150}) == []
    assert compare("cfg", base, {"param_bytes": 900, "measured_peak_bytes": 9000}) == []  # shrinking
    (reg,) = compare("cfg", base, {"param_bytes": 1004, "measured_peak_bytes": 10_000})
    assert isinstance(reg, Regression)
    assert str(reg).startswith("cfg: param_bytes grew +0.40% (1,000 -> 1,004 bytes")
    (reg,) = compare("cfg", base, {"param_bytes": 1000, "measured_peak_bytes": 10_300})
    assert reg.figure == "measured_peak_bytes" and "tolerance 2.0%" in str(reg)
