"""The whole report: fixture studies and run folders -> index.md, one page per study, figures,
claims; the `xraygan report` command; and (slow) a report of a tiny real table1 sweep."""

from __future__ import annotations

import json
import re

import pytest
from report_fixtures import make_run, make_study, memory_rows, table1_trials

from xraygan.claims.engine import FAILS, HOLDS
from xraygan.cli import main
from xraygan.errors import XrayganError
from xraygan.reports import build_report


@pytest.fixture
def inputs(tmp_path):
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    trials = table1_trials(seeds=3)
    for t in trials:  # every trial gets a run folder, so figures have curves and samples
        t["run_dir"] = make_run(tmp_path / "runs", t["cell"], seed=t["seed"],
                                kind="collapse" if t["cell"] == "adam-elu-s0" else "t0",
                                metrics=t["metrics"])
    trials[3]["metrics"]["collapse_detected"] = 1.0
    trials[3]["metrics"]["collapse_onset"] = 165.0
    make_study(storage, "table1-quick", "table1", trials)
    mem = tmp_path / "memory.json"
    mem.write_text(json.dumps({"rows": memory_rows()}))
    return storage, mem, tmp_path


def test_build_report_writes_pages_figures_and_claims(inputs):
    storage, mem, tmp_path = inputs
    out = tmp_path / "out"
    report = build_report(["table1-quick"], out, storage=storage, memory=[mem], checksum=False)
    assert set(report.pages) == {"table1-quick", "memory-memory"}
    index = report.index.read_text()
    for page in report.pages.values():
        assert page.is_file() and f"]({page.name})" in index
    page = report.pages["table1-quick"].read_text()
    assert "## Table I" in page and "| adas-elu | AdaS | ELU | no | paper |" in page
    assert "## Protocol" in page and "| Seeds (train.seed) | 0, 1, 2 |" in page
    # every figure linked from the page exists and is a PNG
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page)
    assert {"table1-quick/fig3_4_losses.png", "table1-quick/fig5_correlation.png",
            "table1-quick/fig6_samples.png", "table1-quick/collapse_adam-elu-s0.png"} <= set(links)
    for link in links:
        assert (out / link).read_bytes()[:4] == b"\x89PNG"
    assert len(report.figures["table1-quick"]) == 4
    verdicts = {c.key: c.verdict for c in report.claims}
    assert verdicts["adas_beats_adam"] == HOLDS  # the fixture: 104 ± 15 vs 238 ± 19, n = 3
    assert verdicts["dloss_inverse_fid"] == HOLDS  # the fixture's mean D loss = 2 - FID/120
    assert verdicts["bn_saving"] == HOLDS and verdicts["memory_exponential"] == FAILS
    mem_page = report.pages["memory-memory"].read_text()
    assert "**holds**" in index and "**does not hold**" in index
    # each claim in full once, on its study's page; the index links there
    assert "<details>" not in index and "](table1-quick.md#adas-beats-adam-holds)" in index
    assert page.count("### AdaS beats Adam: holds") == 1 and "<details>" in page
    assert "Holds here:" in page and "Does not hold here:" in index + mem_page
    # every page that shows FID states how it was computed
    for text in (index, page):
        assert "FID protocol: pytorch-fid's Inception v3" in text and "clean-fid" in text
    mem_page = report.pages["memory-memory"].read_text()
    assert "## Growth law" in mem_page and "fig7_8_memory_vs_width.png" in mem_page


def test_a_report_without_memory_data_decides_no_memory_claim(inputs):
    storage, _, tmp_path = inputs
    report = build_report(["table1-quick"], tmp_path / "out", storage=storage, checksum=False)
    keys = {c.key for c in report.claims}
    assert "adas_beats_adam" in keys
    assert not keys & {"bn_saving", "memory_exponential"}
    assert "batch norm" not in report.index.read_text().lower()


def test_build_report_from_run_folders_only(tmp_path):
    make_run(tmp_path / "runs", "a", metrics={"d_loss_mean": 0.7, "t0": 100.0})
    make_run(tmp_path / "runs", "b", seed=1, metrics={"d_loss_mean": 0.9, "t0": 100.0})
    report = build_report([], tmp_path / "out", runs=[tmp_path / "runs"], checksum=False,
                          draw=False)
    page = report.pages["runs"].read_text()
    assert "| a | AdaS | ELU | no | ours | 1 | 0.700 |" in page
    assert report.figures["runs"] == []


def test_missing_inputs_are_user_errors(tmp_path):
    with pytest.raises(XrayganError, match="nothing to report"):
        build_report([], tmp_path)
    with pytest.raises(XrayganError, match="no database"):
        build_report(["table9-quick"], tmp_path, storage=f"sqlite:///{tmp_path / 'none.db'}")
    storage = f"sqlite:///{tmp_path / 's.db'}"
    make_study(storage, "table1-quick", "table1", table1_trials(seeds=1))
    with pytest.raises(XrayganError, match="it holds: table1-quick"):
        build_report(["table3-quick"], tmp_path, storage=storage)


def test_report_cli(inputs, capsys):
    storage, mem, tmp_path = inputs
    out = tmp_path / "cli"
    assert main(["report", "table1-quick", "--storage", storage, "--memory", str(mem),
                 "--out", str(out), "--no-figures"]) == 0
    printed = capsys.readouterr().out
    assert "holds          adas_beats_adam" in printed and f"index: {out / 'index.md'}" in printed
    assert not (out / "table1-quick").exists()  # --no-figures
    assert main(["report", "nosuch", "--storage", storage, "--out", str(out)]) != 0
    assert "study 'nosuch' is not in" in capsys.readouterr().err


def test_report_of_a_tiny_real_table1_sweep(tmp_path, capsys):
    """The quick study in CI size through the real runner: trains 4 tiny runs (~1 min on CPU)."""
    studies = tmp_path / "studies"
    assert main(["sweep", "table1", "--image-size", "16", "--features", "4", "--steps", "10",
                 "--batch-size", "8", "--num-images", "32", "--no-fid", "--sample-every", "5",
                 "--checkpoint-every", "10", "--out", str(studies), "--no-estimate"]) == 0
    # the sweep names the report command that finds a study written with --out
    printed = capsys.readouterr().out
    assert f"xraygan report table1-quick --studies {studies} " in printed
    assert main(["report", "table1-quick", "--studies", str(studies), "--no-figures",
                 "--out", str(tmp_path / "by-folder")]) == 0
    assert (tmp_path / "by-folder" / "table1-quick.md").is_file()
    assert not list(studies.rglob(".lock"))  # finished run folders keep no lock file
    report = build_report(["table1-quick"], tmp_path / "out",
                          storage=f"sqlite:///{studies / 'table1-quick.db'}")
    page = report.pages["table1-quick"].read_text()
    assert page.count("| ours | 1 |") == 4
    assert "FID was not computed at this scale" in page
    assert (tmp_path / "out" / "table1-quick" / "fig3_4_losses.png").is_file()


def test_runs_page_shows_the_metrics_beyond_fid_and_their_figures(tmp_path):
    from xraygan.metrics import SPECTRUM_FILE

    quality = {"precision": 0.8, "recall": 0.05, "density": 1.1, "coverage": 0.3, "fid_n1": 256,
               "mem_ct": -0.5, "mem_px_ct": 0.1, "mem_copying": 0.0, "mem_copy_fraction": 0.04,
               "spectral_distance": 0.4, "hf_deficit": 0.7, "lf_deficit": 0.05}
    a = make_run(tmp_path / "runs", "a", metrics={"d_loss_mean": 0.7, "t0": 100.0, **quality})
    make_run(tmp_path / "runs", "b", seed=1, metrics={"d_loss_mean": 0.9, "t0": 100.0})
    curve = [0.0, 1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005]
    (a / SPECTRUM_FILE).write_text(json.dumps({"real": curve, "generated": [c / 2 for c in curve]}))
    report = build_report([], tmp_path / "out", runs=[tmp_path / "runs"], checksum=False)
    page = report.pages["runs"].read_text()
    assert "## Beyond FID" in page and "| a | 1 | 0.800 | 0.050 | 1.100 | 0.300 | -0.50 |" in page
    assert "runs/spectrum.png" in page and (tmp_path / "out" / "runs" / "spectrum.png").is_file()
    assert "Closest pairs: not drawn: no run has a memorization test" in page
    # one tested run: a configuration's runs are the units, one run cannot show "no copying"
    assert "### Synthetic images do not copy training images: untestable" in page
    assert "with one run" in page
    assert "need at least" not in page  # missing figures are explained in words


def test_every_study_declares_known_sections_and_claims():
    import xraygan.ablations as ablations
    from xraygan.claims.engine import CLAIMS, claims_for_study
    from xraygan.reports.build import SECTIONS, study_sections

    ablations.load_studies()
    for name in ablations.STUDIES.names():
        spec = ablations.STUDIES.get(name)
        assert set(spec.sections) <= set(SECTIONS), name
        assert set(spec.claims) <= set(CLAIMS), name
    assert "quality" in study_sections("table1")[0] and "spectrum" in study_sections("runs")[0]
    assert {"adas_beats_adam", "no_data_copying", "best_fid_best_recall"} <= set(
        claims_for_study("table1"))
