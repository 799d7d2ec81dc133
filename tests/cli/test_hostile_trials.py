"""Hostile trial data and registrations through ``xraygan report`` (issue 28 classes 1, 4, 5):
impossible or duplicated trials are excluded and named, never counted; attributes of the
wrong type and malformed registrations are a one-line error (exit 2) or an excluded trial,
never a traceback and never "no registration"."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import optuna
import pytest
from fuzz_helpers import run_main
from optuna.trial import TrialState, create_trial
from report_fixtures import make_run, make_study, table1_trials

from xraygan.claims.engine import protocols
from xraygan.claims.protocol import REGISTRATION_ATTR, canonical_json, registration
from xraygan.runs import EVALUATIONS, SUMMARY



def _report(tmp_path: Path, storage: str, name: str = "table1-quick") -> tuple[int, str, str]:
    return run_main(["report", name, "--storage", storage, "--out", str(tmp_path / "out"),
                     "--no-figures"])


def _verdict(out: str, key: str) -> str:
    return next(line.split()[0] for line in out.splitlines() if f" {key}" in line)


def _study(tmp_path: Path, trials=None) -> tuple[str, optuna.Study]:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    return storage, make_study(storage, "table1-quick", "table1",
                               trials if trials is not None else table1_trials(seeds=3))


def _add(study: optuna.Study, attrs: dict) -> None:
    study.add_trial(create_trial(state=TrialState.COMPLETE, value=1.0, user_attrs=attrs))


def test_the_fixture_study_decides(tmp_path):
    code, out, _ = _report(tmp_path, _study(tmp_path)[0])
    assert code == 0 and _verdict(out, "adas_beats_adam") == "holds"


def test_negative_fids_are_excluded_not_clipped(tmp_path):
    trials = table1_trials(seeds=3)
    for t in trials:  # Adam's FIDs made impossible: clipped, log(1e-9) made AdaS "beat" it
        if t["cell"].startswith("adam-elu"):
            t["metrics"]["fid"] = -300.0
        elif t["cell"].startswith("adas-elu-s"):
            t["metrics"]["fid"] = 250.0
    code, out, err = _report(tmp_path, _study(tmp_path, trials)[0])
    assert code == 0
    assert err.count("metric fid is -300, expected a FID >= 0") == 3
    assert _verdict(out, "adas_beats_adam") != "holds"
    page = (tmp_path / "out" / "table1-quick.md").read_text()
    assert "invalid" in page and "metric fid is -300" in page


@pytest.mark.parametrize("change, says", [
    (lambda a: a["metrics"].update(fid="104"), "metric fid is a str"),
    (lambda a: a.update(metrics=[1, 2]), "attribute metrics is a list"),
    (lambda a: a.update(config="adas"), "attribute config is a str"),
    (lambda a: a["metrics"].update(fid=float("inf")), "metric fid is inf"),
    (lambda a: a.update(seed="0"), "attribute seed is a str"),
    (lambda a: a["memory"].update(measured_peak_bytes=-5), "memory measured_peak_bytes is -5"),
    (lambda a: a["config"]["model"].update(image_size="16"), "config model.image_size is a str"),
])
def test_attributes_of_the_wrong_type_exclude_the_trial(tmp_path, change, says):
    storage, study = _study(tmp_path)
    attrs = copy.deepcopy(study.trials[0].user_attrs)
    attrs["cell"], attrs["seed"] = "adas-elu-s9", 9
    change(attrs)
    _add(study, attrs)
    code, _, err = _report(tmp_path, storage)
    assert code == 0
    assert f"trial {len(study.trials) - 1} (" in err and says in err


def test_a_trial_stored_twice_counts_once(tmp_path):
    storage, study = _study(tmp_path, table1_trials(seeds=2))
    for t in list(study.trials):
        _add(study, copy.deepcopy(t.user_attrs))  # every run twice: n would double
    code, out, err = _report(tmp_path, storage)
    assert code == 0 and err.count("same cell and seed as trial") == 8
    page = (tmp_path / "out" / "table1-quick.md").read_text()
    assert "| ours | 2 |" in page and "| ours | 4 |" not in page


def test_an_impossible_auroc_gap_decides_nothing(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    from xraygan.claims.utility import STAND_IN_CELL

    make_study(storage, "utility-quick", "utility", [
        {"cell": STAND_IN_CELL, "metrics": {"util_gap_synthetic": 5.0, "util_gap_synthetic_se": 0.01,
                                            "util_auroc_real": 0.9, "util_auroc_synthetic": 0.95,
                                            "d_loss_mean": 1.0}}])
    code, out, err = _report(tmp_path, storage, "utility-quick")
    assert code == 0 and "metric util_gap_synthetic is 5, expected an AUROC gap in [-1, 1]" in err
    assert _verdict(out, "synthetic_stands_in") != "holds"


@pytest.mark.parametrize("attr, value, says", [
    ("scale", "quick", "study attribute scale is a str"),
    ("sweep_memory", [1], "study attribute sweep_memory is a list"),
    ("sweep_memory", {"peak_rss_bytes": "many"}, "sweep_memory.peak_rss_bytes is a str"),
    ("scale", {"name": "quick", "fid_samples": -1}, "scale.fid_samples is a int"),
])
def test_study_attributes_of_the_wrong_type_are_one_line(tmp_path, attr, value, says):
    storage, study = _study(tmp_path)
    study.set_user_attr(attr, value)
    code, _, err = _report(tmp_path, storage)
    assert code == 2 and says in err and "study table1-quick" in err


def _registered(study: optuna.Study, edit=None, rehash: bool = True) -> None:
    reg = registration([p for k, p in protocols().items() if k == "adas_beats_adam"])
    if edit:
        edit(reg["claims"]["adas_beats_adam"])
    if rehash:
        reg["json_sha256"] = hashlib.sha256(canonical_json(reg["claims"]).encode()).hexdigest()
    study.set_user_attr(REGISTRATION_ATTR, json.loads(json.dumps(reg)))


@pytest.mark.parametrize("edit, says", [
    (lambda p: p.pop("metric"), "protocol lacks metric"),
    (lambda p: p.update(alpha="0.05"), "alpha is a str"),
    (lambda p: p.update(preconditions="none"), "preconditions is a str"),
    (lambda p: p.update(preconditions=[{"key": "past_t0"}]), "precondition 1 is"),
    (lambda p: p.update(version="2"), "version is '2'"),
    (lambda p: p.update(cells="adas-elu"), "cells is a str"),
])
def test_malformed_registrations_are_unreadable_not_absent(tmp_path, edit, says):
    storage, study = _study(tmp_path)
    _registered(study, edit)
    code, out, err = _report(tmp_path, storage)
    assert code == 2 and "unreadable" in err and says in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("value", [["claims"], "registered", 3])
def test_a_registration_that_is_not_a_mapping_is_not_no_registration(tmp_path, value):
    storage, study = _study(tmp_path)
    study.set_user_attr(REGISTRATION_ATTR, value)
    code, _, err = _report(tmp_path, storage)
    assert code == 2 and "registration unreadable" in err


def test_an_older_registration_without_a_newer_field_is_read(tmp_path):
    storage, study = _study(tmp_path)
    _registered(study, lambda p: (p.pop("power"), p.pop("transfer")))
    code, out, _ = _report(tmp_path, storage)
    assert code == 0 and _verdict(out, "adas_beats_adam") == "holds"


def test_run_folders_with_malformed_metrics_are_excluded(tmp_path):
    root = tmp_path / "runs"
    good = make_run(root, "good", metrics={"fid": 100.0})
    listed = make_run(root, "listed")
    summary = json.loads((listed / SUMMARY).read_text())
    summary["metrics"] = [1, 2]
    (listed / SUMMARY).write_text(json.dumps(summary))
    arrayed = make_run(root, "arrayed")
    (arrayed / EVALUATIONS).write_text("[1, 2]\n")
    code, _, err = run_main(["report", "--runs", str(root), "--out", str(tmp_path / "out"),
                             "--no-figures"])
    assert code == 0
    assert "summary.json: metrics is list, expected an object" in err
    assert "evaluations.jsonl: record 1 is list, expected an object" in err
    assert str(good.name) not in err


def test_reports_into_one_folder_keep_every_study_in_the_index(tmp_path):
    from report_fixtures import table3_trials

    storage, _ = _study(tmp_path)
    make_study(storage, "table3-quick", "table3", table3_trials())
    assert _report(tmp_path, storage, "table1-quick")[0] == 0
    assert _report(tmp_path, storage, "table3-quick")[0] == 0
    index = (tmp_path / "out" / "index.md").read_text()
    assert "[table1-quick](table1-quick.md)" in index and "[table3-quick](table3-quick.md)" in index
    assert "Decided from the studies of the latest report into this folder (table3-quick)" in index
    assert _report(tmp_path, storage, "table1-quick")[0] == 0  # again: listed once, not twice
    index = (tmp_path / "out" / "index.md").read_text()
    assert index.count("[table1-quick](table1-quick.md)") == 1 and "[table3-quick]" in index
    (tmp_path / "out" / "table3-quick.md").unlink()  # a page removed leaves the index
    assert _report(tmp_path, storage, "table1-quick")[0] == 0
    assert "[table3-quick]" not in (tmp_path / "out" / "index.md").read_text()
