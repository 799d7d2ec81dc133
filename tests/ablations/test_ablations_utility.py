"""The utility study end to end at a tiny scale: CLI sweep with progress lines, trial attrs,
resuming without re-running, and its report page."""

from __future__ import annotations

import optuna
import pytest

from xraygan.ablations import FULL, QUICK, STUDIES, StudyContext, load_studies
from xraygan.ablations.utility import LABELLED_PHANTOMS
from xraygan.cli import main
from xraygan.errors import ConfigError
from xraygan.reports import build_report

load_studies()
TINY = ["--image-size", "16", "--features", "4", "--steps", "8", "--batch-size", "16",
        "--num-images", "96", "--no-fid", "--sample-every", "4", "--checkpoint-every", "8",
        "--device", "cpu", "--no-estimate"]


@pytest.mark.parametrize("scale", [QUICK, FULL])
def test_cells_train_on_labelled_data(scale):
    cells = STUDIES.get("utility").grid(StudyContext(scale, data=LABELLED_PHANTOMS))
    assert [c.key for c in cells] == ["adas-elu", "adam-elu"]
    assert {c.config.data.source for c in cells} == {LABELLED_PHANTOMS}
    assert [c.config.optim.name for c in cells] == ["adas", "adam"]
    dicom = STUDIES.get("utility").grid(StudyContext(scale, data="dicom:/data/vinbig"))
    assert all(c.config.data.holdout > 0 for c in dicom)  # a held-out test set of real images
    for unlabelled in ("phantom", "folder:/x"):
        with pytest.raises(ConfigError, match="needs labelled images"):
            STUDIES.get("utility").grid(StudyContext(scale, data=unlabelled))


def test_cli_refuses_unlabelled_data_in_one_line(tmp_path, capsys):
    assert main(["sweep", "utility", "--data", "phantom", "--out", str(tmp_path), "--dry-run",
                 "--no-estimate"]) == 2
    err = capsys.readouterr().err
    assert "needs labelled images" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def utility_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("utility")
    return out


def test_utility_sweep_end_to_end_resumes_and_reports(utility_sweep, capsys):
    out = utility_sweep / "studies"
    assert main(["sweep", "utility", *TINY, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("utility: real:") == 2 and "AUROC" in printed  # progress lines per model
    storage = f"sqlite:///{out / 'utility-quick.db'}"
    study = optuna.load_study(study_name="utility-quick", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    for t in study.trials:
        m = t.user_attrs["metrics"]
        assert t.user_attrs["objective"] == "util_gap_synthetic"
        assert t.value == pytest.approx(m["util_gap_synthetic"])
        assert m["util_n_real"] == 96 and m["util_n_test"] > 0 and m["util_label"] == "cardiomegaly"
        assert 0 <= m["util_auroc_real"] <= 1 and m["util_auroc_real_lo"] <= m["util_auroc_real_hi"]
        assert "anat_ctr_w1" in m and 0 <= m["anat_implausible"] <= 1
    # a second sweep finds every cell done: nothing is trained again
    assert main(["sweep", "utility", *TINY, "--out", str(out)]) == 0
    assert "utility: real:" not in capsys.readouterr().out
    assert len(optuna.load_study(study_name="utility-quick", storage=storage).trials) == 2

    report = build_report(["utility-quick"], utility_sweep / "report", storage=storage)
    page = report.pages["utility-quick"].read_text()
    assert "## Downstream utility: train on synthetic, test on real" in page
    assert "| (a) real | (b) synthetic |" in page and page.count("| adas-elu |") >= 1
    assert "## Anatomy of generated images (beside FID)" in page and "CTR W1" in page

    # evaluating a run again (a retried trial) reuses RUN/utility.json instead of retraining
    from xraygan.metrics import run_metrics
    from xraygan.metrics.utility import UTILITY_FILE

    t = study.trials[0]
    kept = (utility_sweep / "studies" / "utility-quick").glob(f"*/{UTILITY_FILE}")
    path = next(p for p in kept if str(p.parent) == t.user_attrs["run_dir"])
    before = path.stat().st_mtime_ns
    lines: list[str] = []
    again = run_metrics(path.parent, metrics=("utility",), echo=lines.append)
    assert path.stat().st_mtime_ns == before and not lines
    assert again["util_auroc_real"] == pytest.approx(t.user_attrs["metrics"]["util_auroc_real"])
