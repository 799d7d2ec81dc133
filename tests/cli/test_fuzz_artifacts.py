"""Property tests over the artifacts issue 28 hardened (item 8): trial attributes and claims
registrations through `report`, utility caches and labels CSVs through `metrics --utility`,
data and held-out settings through `sweep utility`. The contract (tests/fuzz_helpers.py):
exit 0, 2 or 3, no traceback, bounded peak RSS, nothing previously written lost; and here: no
verdict from impossible data (an impossible trial is always named as excluded) and no cached
number returned that is impossible. `nox -s fuzz` (XRAYGAN_FUZZ=long) runs many more."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import shutil

import pytest
from fuzz_helpers import FUZZ, run_main
from hypothesis import given
from hypothesis import strategies as st
from optuna.trial import TrialState, create_trial
from report_fixtures import make_study, table1_trials

from xraygan.claims.engine import protocols
from xraygan.claims.protocol import REGISTRATION_ATTR, canonical_json, registration
from xraygan.metrics.utility import UTILITY_FILE
from xraygan.trials import InvalidTrial, TrialRecord


HOSTILE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70),
    st.sampled_from([None, True, "", "104", "nan", [], [1.0], {}, {"fid": 1}, -1e-9, 1.0000001]),
    st.text(max_size=8),
)
FIELDS = ["metrics.fid", "metrics.util_gap_synthetic", "metrics.util_auroc_real",
          "metrics.d_loss_var", "metrics.collapse_detected", "metrics", "config", "cell_params",
          "seed", "status", "cell", "memory.measured_peak_bytes", "steps", "config.model",
          "config.model.image_size", "reference", "run_dir"]


def _set(attrs: dict, dotted: str, value) -> None:
    *head, last = dotted.split(".")
    d = attrs
    for part in head:
        d = d.setdefault(part, {}) if isinstance(d.get(part), dict) else d
    d[last] = value


@pytest.fixture(scope="module")
def study_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzzreport")
    storage = f"sqlite:///{root / 'base.db'}"
    make_study(storage, "table1-quick", "table1", table1_trials(seeds=2))
    return root


@FUZZ
@given(data=st.data())
def test_fuzz_trial_attributes_through_report(study_world, tmp_path_factory, data):
    import optuna

    tmp = tmp_path_factory.mktemp("case")
    shutil.copy(study_world / "base.db", tmp / "s.db")
    storage = f"sqlite:///{tmp / 's.db'}"
    study = optuna.load_study(study_name="table1-quick", storage=storage)
    attrs = copy.deepcopy(study.trials[0].user_attrs)
    attrs["cell"], attrs["seed"] = "adam-elu-s7", 7
    for field in data.draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3, unique=True)):
        _set(attrs, field, data.draw(HOSTILE, label=field))
    study.add_trial(create_trial(state=TrialState.COMPLETE, value=1.0, user_attrs=attrs))
    try:
        TrialRecord.from_attrs(attrs)
        impossible = False
    except InvalidTrial:
        impossible = True
    code, out, err = run_main(["report", "table1-quick", "--storage", storage, "--out",
                               str(tmp / "out"), "--no-figures"])
    assert code in (0, 2)
    if impossible and code == 0:  # never counted: named as excluded
        assert f"trial {len(study.trials) - 1} (" in err and "excluded" in err


def _reg_mutations():
    keys = ["key", "version", "statement", "metric", "cells", "alpha", "sesoi", "margin",
            "power", "preconditions", "params", "direction", "studies", "family", "test"]
    return st.lists(st.tuples(st.sampled_from(keys), st.one_of(st.just("<drop>"), HOSTILE)),
                    min_size=1, max_size=3)


@FUZZ
@given(mutations=_reg_mutations(), rehash=st.booleans(), whole=st.one_of(st.none(), HOSTILE))
def test_fuzz_registrations_through_report(study_world, tmp_path_factory, mutations, rehash, whole):
    import optuna

    tmp = tmp_path_factory.mktemp("reg")
    shutil.copy(study_world / "base.db", tmp / "s.db")
    storage = f"sqlite:///{tmp / 's.db'}"
    study = optuna.load_study(study_name="table1-quick", storage=storage)
    reg = registration([p for k, p in protocols().items() if k == "adas_beats_adam"])
    proto = reg["claims"]["adas_beats_adam"]
    for key, value in mutations:
        if value == "<drop>":
            proto.pop(key, None)
        else:
            proto[key] = value
    if rehash:
        reg["json_sha256"] = hashlib.sha256(canonical_json(reg["claims"]).encode()).hexdigest()
    try:
        stored = json.loads(json.dumps(reg if whole is None else whole, allow_nan=False))
    except (ValueError, TypeError):
        return  # not storable as an Optuna attribute
    study.set_user_attr(REGISTRATION_ATTR, stored)
    code, out, err = run_main(["report", "table1-quick", "--storage", storage, "--out",
                               str(tmp / "out"), "--no-figures"])
    assert code in (0, 2)
    if code == 2:
        assert "registration" in err or "claim" in err or "study" in err
    if whole is not None and stored is not None:  # present but not a mapping: never "absent"
        assert code == 2


@pytest.fixture(scope="module")
def utility_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzzutil")
    code, _, err = run_main(["train", "--data", "phantom:v2", "--image-size", "16", "--features",
                             "4", "--steps", "2", "--batch-size", "16", "--num-images", "64",
                             "--sample-every", "2", "--checkpoint-every", "2", "--no-eval",
                             "--no-progress", "--out", str(root / "runs"), "--name", "u"])
    assert code == 0, err
    run = next((root / "runs").glob("*-u"))
    assert run_main(["metrics", str(run), "--utility"])[0] == 0
    return run


JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False),
              st.integers(-(2**40), 2**40), st.text(max_size=6)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8)


@FUZZ
@given(data=st.data())
def test_fuzz_utility_caches_through_metrics(utility_run, tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("cache")
    run = tmp / "run"
    shutil.copytree(utility_run, run)
    kept = json.loads((run / UTILITY_FILE).read_text())
    kind = data.draw(st.sampled_from(["edit", "replace", "bytes"]))
    if kind == "edit":
        name = data.draw(st.sampled_from(sorted(kept["metrics"])))
        kept["metrics"][name] = data.draw(HOSTILE.filter(
            lambda v: not (isinstance(v, float) and not math.isfinite(v))))
        text = json.dumps(kept)
    elif kind == "replace":
        text = json.dumps(data.draw(JSONISH))
    else:
        text = data.draw(st.binary(max_size=64)).decode("latin-1")
    (run / UTILITY_FILE).write_text(text, encoding="latin-1")
    code, out, err = run_main(["metrics", str(run), "--utility", "--json", str(tmp / "m.json")])
    assert code == 0, err
    got = json.loads((tmp / "m.json").read_text())[0]
    for k, v in got.items():  # whatever the cache held, only possible numbers come back
        if k.startswith("util_auroc_") and v is not None:
            assert 0 <= v <= 1
        if k.startswith("util_gap_") and not k.endswith("_se") and v is not None:
            assert -1 <= v <= 1


CLASS_NAMES = st.sampled_from(["Cardiomegaly", "cardiomegaly", " CARDIOMEGALY ", "Cardio megaly",
                               "No finding", "Nodule/Mass", "", "é", "Cardiomegaly\x00"])


@pytest.fixture(scope="module")
def dicom_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzzdicom")
    code, _, err = run_main(["data", "phantom-dicom", str(root / "cxr"), "--series", "v2",
                             "--count", "60", "--size", "32", "--codec", "raw"])
    assert code == 0, err
    return root / "cxr"


@FUZZ
@given(data=st.data())
def test_fuzz_labels_csvs_through_sweep_utility(dicom_world, tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("labels")
    folder = tmp / "cxr"
    shutil.copytree(dicom_world, folder)
    rows = (folder / "train.csv").read_text().splitlines()
    kind = data.draw(st.sampled_from(["names", "drop", "garbage"]))
    if kind == "names":
        header, body = rows[0], rows[1:]
        body = [",".join([r.split(",")[0], data.draw(CLASS_NAMES), *r.split(",")[2:]])
                if data.draw(st.booleans()) else r for r in body]
        text = "\n".join([header, *body]) + "\n"
    elif kind == "drop":
        keep = data.draw(st.integers(0, len(rows)))
        text = "\n".join(rows[:keep]) + "\n"
    else:
        text = data.draw(st.binary(max_size=200)).decode("latin-1")
    (folder / "train.csv").write_text(text, encoding="latin-1")
    holdout = data.draw(st.sampled_from(["0", "0.05", "0.4", "0.5"]))
    out = tmp / "studies"
    code, printed, err = run_main(["sweep", "utility", "--data", f"dicom:{folder}", "--holdout",
                                   holdout, "--image-size", "16", "--features", "4", "--steps",
                                   "2", "--batch-size", "8", "--no-fid", "--dry-run",
                                   "--no-estimate", "--out", str(out)])
    assert code in (0, 2)
    if holdout == "0":
        assert code == 2
    assert not list(out.rglob("checkpoints"))  # nothing trained, whatever the labels
