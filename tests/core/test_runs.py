import json
import os

import pytest

from xraygan import runs
from xraygan.config import ExperimentConfig
from xraygan.errors import RunFolderError


def test_new_run_dirs_are_numbered(tmp_path):
    a = runs.new_run_dir(tmp_path, "paper elu/adas")
    b = runs.new_run_dir(tmp_path, "x")
    assert a.name == "0001-paper-elu-adas" and b.name == "0002-x"


def test_atomic_write_leaves_no_temp_files_and_keeps_old_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "f.json"
    runs.atomic_write_json(path, {"a": 1})

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        runs.atomic_write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_metrics_log_round_trip_and_truncate_on_resume(tmp_path):
    with runs.MetricsLog(tmp_path) as log:
        for s in range(1, 6):
            log.write({"step": s, "loss_d": s / 10, "loss_g": 1.0})
    df = runs.read_metrics(tmp_path)
    assert list(df.columns) == list(runs.METRIC_COLUMNS)
    assert df["step"].tolist() == [1, 2, 3, 4, 5]
    with runs.MetricsLog(tmp_path, resume_step=3) as log:
        log.write({"step": 4, "loss_d": 9.0})
    df = runs.read_metrics(tmp_path)
    assert df["step"].tolist() == [1, 2, 3, 4] and df["loss_d"].iloc[-1] == 9.0


def test_config_summary_evaluations(tmp_path):
    cfg = ExperimentConfig(name="z")
    runs.write_config(tmp_path, cfg)
    assert runs.read_config(tmp_path) == cfg
    runs.update_summary(tmp_path, a=1)
    assert runs.update_summary(tmp_path, b=2) == {"a": 1, "b": 2}
    runs.append_evaluation(tmp_path, {"fid": 3.5})
    with open(tmp_path / runs.EVALUATIONS, "a") as f:
        f.write('{"cut": ')  # a line cut by a crash
    assert runs.read_evaluations(tmp_path) == [{"fid": 3.5}]


def test_find_runs(tmp_path):
    for name in ("0001-a", "0002-b"):
        runs.write_config(tmp_path / name, ExperimentConfig())
        runs.update_summary(tmp_path / name, status="completed")
    runs.write_config(tmp_path / "0003-failed-start", ExperimentConfig())  # no summary.json
    (tmp_path / "other").mkdir()
    skipped = []
    assert [p.name for p in runs.find_runs([tmp_path], skipped)] == ["0001-a", "0002-b"]
    assert [p.name for p in skipped] == ["0003-failed-start"]
    with pytest.raises(RunFolderError, match="only config.json and no summary.json"):
        runs.find_runs([tmp_path / "0003-failed-start"])
    with pytest.raises(RunFolderError, match="no run folders"):
        runs.find_runs([tmp_path / "other"])
    with pytest.raises(RunFolderError, match="no config.json"):
        runs.read_config(tmp_path / "other")


def test_json_files_are_strict_json(tmp_path):
    runs.update_summary(tmp_path, metrics={"t0": float("nan"), "x": [1.0, float("inf")]})
    text = (tmp_path / runs.SUMMARY).read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert runs.read_summary(tmp_path)["metrics"] == {"t0": None, "x": [1.0, None]}
    runs.append_evaluation(tmp_path, {"fid": float("nan")})
    assert runs.read_evaluations(tmp_path) == [{"fid": None}]
