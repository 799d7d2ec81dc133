"""The quick and full scales (ablations/scale.py) and the nox sessions that run them: the full
scale resolves to the paper's settings, the quick reproduction runs seeds by default, and the
compression-search finding (ablations.compress_search.finding) answers its question."""

import ast
import math
from pathlib import Path

import pytest

from xraygan import paper
from xraygan.ablations import FULL, QUICK, STUDIES, StudyContext, load_studies
from xraygan.ablations.compress_search import BLOCKINESS_MARGIN, FID_TOLERANCE, finding
from xraygan.ablations.scale import (
    FULL_SEEDS,
    FULL_STUDIES,
    QUICK_CELLS,
    QUICK_SEEDS,
    QUICK_WORKERS,
)
from xraygan.cli import build_parser
from xraygan.cli.sweep import build_options
from xraygan.models import build_models, count_parameters

load_studies()
ROOT = Path(__file__).resolve().parents[2]


def noxfile_constants() -> dict:
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


def test_noxfile_copies_of_the_scale_constants_agree():
    c = noxfile_constants()
    assert (c["QUICK_SEEDS"], c["QUICK_WORKERS"]) == (QUICK_SEEDS, QUICK_WORKERS)
    assert tuple(c["QUICK_CELLS"]) == QUICK_CELLS
    assert (c["FULL_SEEDS"], tuple(c["FULL_STUDIES"])) == (FULL_SEEDS, FULL_STUDIES)
    assert QUICK_SEEDS >= 3  # a verdict needs a spread over seeds


def test_trials_record_kid_beside_fid():
    from xraygan.ablations.trial import metric_options

    assert metric_options(QUICK) == {"fid": True, "kid": True, "fid_samples": QUICK.fid_samples}
    assert metric_options(FULL)["kid"] is True
    assert metric_options(QUICK.with_overrides(fid=False))["kid"] is False  # no features, no KID


def test_lint_session_checks_folders_that_exist():
    # ruff stops with E902 on a path that is not in the tree, before it checks anything
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    lint = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "lint")

    def constants(call: ast.Call) -> list:
        return [ast.literal_eval(a) for a in call.args if isinstance(a, ast.Constant)]

    call = next(n for n in ast.walk(lint) if isinstance(n, ast.Call)
                and constants(n)[:2] == ["ruff", "check"])
    paths = constants(call)[2:]
    assert "gan_core" in paths and "tests" in paths
    assert [p for p in paths if not (ROOT / p).exists()] == []


def test_quick_reproduction_is_the_headline_pair_times_seeds():
    cells = STUDIES.get("table1").grid(StudyContext(QUICK, seeds=QUICK_SEEDS))
    assert len(cells) == len(paper.TABLE1) * QUICK_SEEDS == 20
    seeds = {c.key.rsplit("-s", 1)[0]: set() for c in cells}
    for c in cells:
        seeds[c.key.rsplit("-s", 1)[0]].add(c.config.train.seed)
    assert seeds == {k: set(range(QUICK_SEEDS)) for k in paper.TABLE1}
    assert set(QUICK_CELLS) == {"adas-elu", "adam-elu"} <= set(seeds)  # AdaS vs Adam, ELU
    assert all(c.config.train.channels_last for c in cells)


def test_quick_seeds_are_the_a_priori_power_of_the_pilot():
    """Criterion B of ablations/scale.py: 5 seeds per cell for power 0.8 at the declared 20 %
    FID effect, with the pooled per-seed sd of log FID of the last 3-seed quick start (its
    12 FIDs, docs/quick-reproduction.md); the full scale uses the same a priori count."""
    from xraygan.claims.decide import pooled_sd, seeds_for_power

    pilot = [[116.3, 138.9, 95.8], [292.5, 276.1, 303.2], [99.7, 89.5, 107.9],
             [71.4, 87.3, 77.6]]
    sd, df = pooled_sd([[math.log(x) for x in cell] for cell in pilot])
    assert df == 8 and sd == pytest.approx(0.118, abs=1e-3)
    assert seeds_for_power(abs(math.log(0.8)), sd) == QUICK_SEEDS == FULL_SEEDS == 5
    # AdaS must get past its T0 phase (< 200 iterations at this scale) with room to learn
    assert QUICK.steps >= 2 * paper.T0_ADAS_MAX


def sweep_args(*argv: str):
    return build_options(build_parser().parse_args(["sweep", *argv]))


def test_full_scale_resolves_to_the_papers_settings():
    # paper.md: 64x64, Table II widths (64), 150 epochs, batch 128 (the batch that worked with
    # Adam), FID on 10,000 samples
    opts = sweep_args("table1", "--full", "--seeds", str(FULL_SEEDS), "--device", "cuda")
    s = opts.ctx.scale
    assert (s.name, s.image_size, s.features, s.epochs, s.steps, s.batch_size) == \
        ("full", 64, 64, 150.0, 0, 128)
    assert s.fid and s.fid_samples == 10_000 and s.device == "cuda"
    cells = STUDIES.get("table1").grid(opts.ctx)
    assert len(cells) == 4 * FULL_SEEDS
    for c in cells:
        t = c.config.train
        assert (t.epochs, t.steps, t.batch_size, t.device) == (150.0, 0, 128, "cuda")
        assert c.config.model.image_size == 64
    # the adas-elu cell is Table II exactly (one image channel): the parameter counts
    adas = next(c for c in cells if c.key.startswith("adas-elu-s"))
    G, D = build_models(adas.config.model)
    assert (count_parameters(G), count_parameters(D)) == (3_573_697, 2_763_585)


@pytest.mark.parametrize("study", FULL_STUDIES)
def test_every_full_study_builds_at_64px(study):
    opts = sweep_args(study, "--full", "--data", "dicom:/data/vinbigdata")
    assert opts.ctx.scale == FULL and opts.ctx.data == "dicom:/data/vinbigdata"
    sizes = {c.config.model.image_size for c in STUDIES.get(study).grid(opts.ctx)}
    assert 64 in sizes


def attrs(params_g, blockiness, fid, depth, *, reference=False, status="completed", key="x"):
    return {"status": status, "reference": reference, "cell": key, "params_g": params_g,
            "cell_params": {"g_depth": depth, "g_strides": "2-2-2"},
            "metrics": {"blockiness": blockiness, "fid": fid}, "run_dir": f"/runs/{key}"}


def test_compress_search_finds_the_smallest_shallower_generator_within_margins():
    ref = attrs(370_000, 0.10, 100.0, 4, reference=True, key="reference")
    trials = [
        ref,
        attrs(50_000, 0.12, 110.0, 3, key="small-ok"),  # shallower, within both margins
        attrs(20_000, 0.30, 105.0, 2, key="blocky"),  # smaller but blocky
        attrs(30_000, 0.11, 200.0, 3, key="bad-fid"),  # FID too far
        attrs(10_000, 0.10, 100.0, 4, key="not-shallower"),  # as deep as the reference
        attrs(5_000, 0.10, 100.0, 2, status="pruned", key="pruned"),
    ]
    f = finding(trials)
    assert f.found and f.best["cell"] == "small-ok"
    assert f.trials == 5 and f.reference["cell"] == "reference"
    assert "small-ok" in f.text and f"{1 + FID_TOLERANCE:.2f}" in f.text
    assert f"{BLOCKINESS_MARGIN}" in f.text and "/runs/small-ok" in f.text


def test_compress_search_reports_none_found_in_n_trials():
    ref = attrs(370_000, 0.10, 100.0, 4, reference=True, key="reference")
    f = finding([ref, attrs(20_000, 0.30, 105.0, 2, key="blocky")])
    assert not f.found and f.best is None
    assert "none of 1 trial" in f.text


def test_compress_search_without_a_reference_cannot_answer():
    f = finding([attrs(20_000, 0.1, 100.0, 2)])
    assert not f.found and "no finished reference" in f.text
    assert math.isnan(f.blockiness_limit)


def test_reference_warmup_skips_a_scale_without_fid():
    from xraygan.ablations.reference import warm_scale

    assert warm_scale(QUICK.with_overrides(fid=False)) == {}


def test_fid_check_table_shows_both_sample_sizes_and_the_effects():
    from xraygan.ablations.rescore import check
    from xraygan.reports.rescore_table import markdown_table

    assert check([{"status": "pruned", "run_dir": "/x"}]) == []  # nothing to re-score
    rows = [{"cell": c, "seed": s, "n_small": 256, "fid_small": f + 40, "fid_infinity_small": f + 5,
             "kid_small": 0.01, "n_large": 2048, "fid_large": f + 8, "fid_infinity_large": f,
             "kid_large": 0.01}
            for c, base in (("adas-elu", 100.0), ("adam-elu", 250.0)) for s, f in
            enumerate((base, base + 10, base - 10))]
    md = markdown_table(rows)
    assert "| FID@256 | FID_inf from 256 | KID@256 | FID@2048 |" in md
    assert "| adas-elu | 0 | 140.0 | 105.0 | 0.0100 | 108.0 | 100.0 | 0.0100 |" in md
    assert "- FID@2048: AdaS − Adam = -150.0 [" in md
    assert markdown_table([]) == "No completed trials to re-score.\n"


def test_fid_check_resumes_from_the_runs_evaluations(tmp_path, monkeypatch, capsys):
    from xraygan import metrics, runs
    from xraygan.ablations.rescore import check

    calls = []

    def fake_fid(ctx):
        calls.append((ctx.run.name, ctx.fid_samples))
        return {"fid": 50.0 + len(calls), "fid_n1": ctx.fid_samples, "kid": 0.01}

    monkeypatch.setattr(metrics.METRICS, "get", lambda name, field=None: fake_fid)
    trials = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        trials.append({"status": "completed", "run_dir": str(tmp_path / name), "cell": f"adas-elu-s{len(trials)}",
                       "seed": len(trials), "cell_params": {"seed": 0}, "metrics": {"fid": 1.0, "fid_n1": 256}})
    first = check(trials, fid_samples=64)
    assert [c[0] for c in calls] == ["a", "b"] and [r["fid_large"] for r in first] == [51.0, 52.0]
    assert "fid_check: 2/2 adas-elu-s1: FID@64 52.0" in capsys.readouterr().err
    again = check(trials, fid_samples=64)  # read back: no second Inception pass
    assert len(calls) == 2 and [r["fid_large"] for r in again] == [51.0, 52.0]
    assert check(trials, fid_samples=64, cells=["adam-elu"]) == []  # only the groups asked for
    assert len(check(trials, fid_samples=64, cells=["adas-elu"])) == 2
    check(trials[:1], fid_samples=128)  # another sample count is another measurement
    assert calls[-1] == ("a", 128)
    assert [e["fid_samples"] for e in runs.read_evaluations(tmp_path / "a")] == [64, 128]


def test_compress_search_page_states_the_finding():
    import pandas as pd

    from xraygan.reports.build import SECTIONS, StudyData, study_sections

    assert "compression" in study_sections("compress-search")[0]
    ref = attrs(370_000, 0.10, 100.0, 4, reference=True, key="reference")
    data = StudyData("compress-search-quick", "compress-search", pd.DataFrame(), {},
                     [ref, attrs(50_000, 0.12, 110.0, 3, key="small-ok")])

    class Page:
        d = data

    text = SECTIONS["compression"](Page())
    assert "## Did the search find a compressed generator?" in text
    assert "small-ok" in text and "/runs/small-ok" in text


def test_sweep_warms_the_reference_statistics_on_every_core_before_its_workers(monkeypatch, capsys):
    import types

    import torch

    from xraygan.ablations import reference
    from xraygan.cli.sweep import warm_reference

    calls = []

    def fake_warm(scale, data, device, holdout=None):
        assert holdout is None  # phantoms: the sweep's default (none needed)
        calls.append((scale.name, data, device, torch.get_num_threads()))
        return {"training": 12.0, "held-out": 3.0}

    monkeypatch.setattr(reference, "warm_scale", fake_warm)
    monkeypatch.setattr("xraygan.process.cores_available", lambda: 2)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    opts = types.SimpleNamespace(ctx=StudyContext(QUICK.with_overrides(device="cpu"), data="phantom"),
                                 workers=2)
    try:
        assert warm_reference(opts) == {"training": 12.0, "held-out": 3.0}
        assert calls == [("quick", "phantom", "cpu", 2)]  # all cores while warming
        assert torch.get_num_threads() == 1  # the worker share restored afterwards
        assert "reference statistics: training 12 s, held-out 3 s" in capsys.readouterr().out
        opts.workers = 1  # one worker fills the cache in its first trial with every core
        assert warm_reference(opts) == {} and len(calls) == 1
        opts.workers, opts.ctx = 2, StudyContext(QUICK.with_overrides(fid=False))
        assert warm_reference(opts) == {} and len(calls) == 1
    finally:
        torch.set_num_threads(before)


def test_fid_check_is_a_cli_subcommand_with_one_line_errors(tmp_path, capsys):
    from xraygan.cli import main

    assert main(["fid-check", "nosuch", "--storage", f"sqlite:///{tmp_path}/none.db"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("xraygan fid-check: error: ") and "none.db" in err and "\n" not in err
    assert main(["fid-check", "table1-quick", "--fid-samples", "0"]) == 2  # bounded flag
