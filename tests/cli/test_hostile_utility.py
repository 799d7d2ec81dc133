"""The utility test's inputs (issue 28 classes 2, 3, 6): RUN/utility.json is validated and
keyed by everything its numbers depend on, read bounded; labels are checked before any
training, by one matching rule, and `metrics --utility` refuses what `sweep utility` refuses."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from fuzz_helpers import run_main

from xraygan.metrics.utility import UTILITY_FILE

TINY = ["--image-size", "16", "--features", "4", "--steps", "4", "--batch-size", "16",
        "--sample-every", "4", "--checkpoint-every", "4", "--no-eval", "--no-progress"]


def _train(root: Path, data: str, name: str, *extra: str) -> Path:
    code, _, err = run_main(["train", "--data", data, *TINY, *extra, "--out", str(root),
                             "--name", name])
    assert code == 0, err
    return next(root.glob(f"*-{name}"))


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    root = tmp_path_factory.mktemp("utility")
    return _train(root / "runs", "phantom:v2", "v2", "--num-images", "96")


def _utility(run: Path) -> tuple[int, str, str, dict]:
    code, out, err = run_main(["metrics", str(run), "--utility"])
    kept = json.loads((run / UTILITY_FILE).read_text()) if (run / UTILITY_FILE).is_file() else {}
    return code, out, err, kept


def test_the_cache_is_reused_and_never_trusted_blindly(labelled, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(labelled, run)
    code, out, _, kept = _utility(run)
    assert code == 0 and "utility: real:" in out
    good = kept["metrics"]["util_auroc_real"]
    assert {"checkpoint_sha256", "data", "heldout_data", "labels_sha256",
            "labels_file_sha256"} <= set(kept["key"])
    code, out, _, _ = _utility(run)
    assert code == 0 and "utility: real:" not in out  # reused: nothing trained again

    cases = [
        (lambda k: k["metrics"].update(util_auroc_real=1.7), "util_auroc_real is 1.7"),
        (lambda k: k["metrics"].update(util_gap_synthetic=5.0), "util_gap_synthetic is 5"),
        (lambda k: k["metrics"].update(util_auroc_mixed="0.9"), "util_auroc_mixed is a str"),
        (lambda k: k["metrics"].pop("util_auroc_real"), "lacks util_auroc_real"),
        (lambda k: k["key"].update(checkpoint_sha256="0" * 64), "computed for other inputs"),
        (lambda k: k["key"].update(labels_sha256="0" * 64), "computed for other inputs"),
    ]
    for edit, says in cases:
        kept = json.loads((run / UTILITY_FILE).read_text())
        edit(kept)
        (run / UTILITY_FILE).write_text(json.dumps(kept))
        code, out, _, again = _utility(run)
        assert code == 0 and says in out and "computed again" in out and "utility: real:" in out
        assert again["metrics"]["util_auroc_real"] == pytest.approx(good)
    for text, says in (("[1, 2]", "not a cached result"), ("{", "not valid JSON")):
        (run / UTILITY_FILE).write_text(text)
        code, out, _, again = _utility(run)
        assert code == 0 and says in out and again["metrics"]["util_auroc_real"] == pytest.approx(good)


def test_a_huge_cache_is_not_read(labelled, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(labelled, run)
    with open(run / UTILITY_FILE, "wb") as f:  # sparse: 5 GiB claimed, nothing stored
        f.truncate(5 << 30)
    code, out, _, kept = _utility(run)  # run_main asserts the peak RSS stayed bounded
    assert code == 0 and "over the limit" in out and "XRAYGAN_MAX_CACHE_BYTES" in out
    assert 0 <= kept["metrics"]["util_auroc_real"] <= 1


def test_unlabelled_phantoms_are_refused_as_the_sweep_refuses_them(tmp_path):
    run = _train(tmp_path / "runs", "phantom", "v1", "--num-images", "32")
    code, out, err, kept = _utility(run)
    assert code == 2 and "the utility test needs labelled images" in err
    assert not kept and "utility: real:" not in out


@pytest.fixture(scope="module")
def dicoms(tmp_path_factory):
    root = tmp_path_factory.mktemp("dicom")
    code, _, err = run_main(["data", "phantom-dicom", str(root / "cxr"), "--series",
                             "v2,cardiomegaly=0.4", "--count", "80", "--size", "32", "--codec",
                             "raw"])
    assert code == 0, err
    return root / "cxr"


def test_labels_match_by_one_rule_and_their_file_keys_the_cache(dicoms, tmp_path):
    data = tmp_path / "cxr"
    shutil.copytree(dicoms, data)
    csv = data / "train.csv"
    original = csv.read_text()
    # hand-edited labels: lower case and stray spaces must still mean Cardiomegaly
    csv.write_text(original.replace(",Cardiomegaly,", ",  cardiomegaly ,"))
    run = _train(tmp_path / "runs", f"dicom:{data}", "d", "--holdout", "0.4")
    code, out, err, kept = _utility(run)
    assert code == 0, err
    assert 0.2 < kept["metrics"]["util_real_positive"] < 0.6  # not 0 %: the rule matched
    rows = original.splitlines()
    positives = [r for r in rows if ",Cardiomegaly," in r]
    flipped = {r.split(",")[0] for r in positives[: len(positives) // 2]}
    csv.write_text("\n".join(r if r.split(",")[0] not in flipped
                             else r.split(",")[0] + ",No finding,14,R8,,,," for r in rows) + "\n")
    code, out, _, again = _utility(run)
    assert code == 0 and "computed for other inputs" in out
    assert again["metrics"]["util_real_positive"] < kept["metrics"]["util_real_positive"]


SWEEP = ["sweep", "utility", "--image-size", "16", "--features", "4", "--steps", "4",
         "--batch-size", "16", "--no-fid", "--no-estimate", "--no-progress"]


@pytest.mark.parametrize("case, says", [
    ("no-labels", "no train.csv"),
    ("holdout-0", "--holdout 0 of --data dicom:"),
    ("tiny-holdout", "the utility test needs at least 20"),
])
def test_sweep_utility_refuses_before_any_training(dicoms, tmp_path, case, says):
    data = tmp_path / "cxr"
    shutil.copytree(dicoms, data)
    holdout = {"holdout-0": "0", "tiny-holdout": "0.05"}.get(case, "0.4")
    if case == "no-labels":
        os.remove(data / "train.csv")
    out = tmp_path / "studies"
    code, printed, err = run_main([*SWEEP, "--data", f"dicom:{data}", "--holdout", holdout,
                                   "--out", str(out)])
    assert code == 2 and says in err, err
    assert not list(out.rglob("config.json"))  # no GAN trained


def test_metrics_utility_refuses_a_run_without_labels(dicoms, tmp_path):
    data = tmp_path / "cxr"
    shutil.copytree(dicoms, data)
    run = _train(tmp_path / "runs", f"dicom:{data}", "d", "--holdout", "0.4")
    os.remove(data / "train.csv")
    code, out, err, kept = _utility(run)
    assert code == 2 and "no train.csv" in err and not kept
