"""Mistakes in paths, data specs, the device and a study's identity answer before torch, data,
Inception or the study load: one line naming the flag or field, exit 2, in about a second."""

import json
import subprocess
import sys

import optuna
import pytest

from xraygan.cli import build_parser, early
from xraygan.cli.sweep import build_options
from xraygan.errors import ConfigError, DataError


def run_cli(*args: str) -> tuple[int, str, bool]:
    """Exit status, stderr and whether torch was imported by the time the command ended (the
    early checks answer before any heavy library loads)."""
    p = subprocess.run([sys.executable, "-c", "import sys\nfrom xraygan.cli import main\ntry:\n"
                        "    rc = main(sys.argv[1:])\nfinally:\n"
                        "    print('torch' in sys.modules)\nsys.exit(rc)", *args],
                       capture_output=True, text=True)
    return p.returncode, p.stderr.strip(), p.stdout.strip().endswith("True")


def test_data_kinds_are_the_registered_ones():
    from xraygan.data.sources import dataset_kinds  # imports every loader, which registers it

    assert tuple(sorted(dataset_kinds())) == early.DATA_KINDS


def test_a_bare_path_suggests_the_spec_it_meant(tmp_path):
    with pytest.raises(ConfigError, match=f"did you mean --data folder:{tmp_path}\\?"):
        early.check_data_spec(str(tmp_path))
    (tmp_path / "a.dcm").write_bytes(b"")
    with pytest.raises(ConfigError, match=f"did you mean --data dicom:{tmp_path}\\?"):
        early.check_data_spec(str(tmp_path))
    with pytest.raises(ConfigError, match="unknown dataset 'bogus'"):
        early.check_data_spec("bogus")
    with pytest.raises(DataError, match="/nope/x does not exist .expected a folder of images"):
        early.check_data_spec("folder:/nope/x")
    with pytest.raises(DataError, match="is a file"):
        early.check_data_spec(f"cache:{tmp_path / 'a.dcm'}")
    for ok in ("phantom", "phantom:v2", f"folder:{tmp_path}", f"dicom:{tmp_path}"):
        early.check_data_spec(ok)


def test_cuda_without_a_driver_is_refused(monkeypatch):
    monkeypatch.setattr(early, "cuda_driver_present", lambda: False)
    with pytest.raises(ConfigError, match="--device cuda: no CUDA device on this machine"):
        early.check_device("cuda")
    early.check_device("cpu")
    early.check_device("auto")
    monkeypatch.setattr(early, "cuda_driver_present", lambda: True)
    early.check_device("cuda:0")  # torch decides later


def test_differences_name_the_leaf_field():
    have = {"study": "table1", "scale": {"name": "quick", "steps": 2000}, "seeds": 3}
    want = {"study": "table1", "scale": {"name": "quick", "steps": 500}, "seeds": 3}
    assert early.differences(have, want) == ["scale.steps: 2000 in the study, 500 now"]


def test_a_rerun_with_other_flags_names_the_field_before_any_work(tmp_path):
    parser = build_parser()
    args = parser.parse_args(["sweep", "table1", "--out", str(tmp_path), "--steps", "40"])
    opts = build_options(args)
    from xraygan.ablations.runner import study_attrs

    study = optuna.create_study(study_name=opts.name, storage=opts.url)
    for k, v in study_attrs(opts).items():
        study.set_user_attr(k, v)
    # the same flags pass
    early.check_study_identity(opts.url, opts.name, study_attrs(opts))
    before = sorted(p for p in tmp_path.rglob("*") if p.suffix != ".db")
    rc, err, _ = run_cli("sweep", "table1", "--out", str(tmp_path), "--steps", "50", "--dry-run")
    assert rc == 2 and "scale.steps: 40 in the study, 50 now" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    # refused before any work: no phantoms, statistics or run folders written
    assert sorted(p for p in tmp_path.rglob("*") if p.suffix != ".db") == before


@pytest.mark.parametrize("args, says", [
    (("sweep", "table1", "--data", "/some/path", "--dry-run"), "did you mean --data folder:/some/path"),
    (("sweep", "table1", "--data", "folder:/nope/x", "--dry-run"), "/nope/x does not exist"),
])
def test_sweep_answers_a_bad_data_spec_at_once(args, says):
    rc, err, torch_loaded = run_cli(*args)
    assert rc == 2 and says in err and len(err.splitlines()) == 1
    assert not torch_loaded  # answered before torch, phantoms or features


def test_fid_and_metrics_name_a_missing_input_before_torch(tmp_path):
    with pytest.raises(DataError, match="nope: not found; expected an image folder"):
        early.check_sample_source(str(tmp_path / "nope"))
    early.check_sample_source("phantom")
    early.check_sample_source(str(tmp_path))
    with pytest.raises(DataError, match="/nope/x does not exist"):
        early.check_sample_source("folder:/nope/x")
    rc, err, torch_loaded = run_cli("metrics", str(tmp_path / "gone"))
    assert rc == 2 and "gone: does not exist (expected a run folder" in err and not torch_loaded


def test_stored_attrs_of_a_missing_storage_are_none(tmp_path):
    assert early.stored_study_attrs(f"sqlite:///{tmp_path / 'none.db'}", "x") is None
    assert not (tmp_path / "none.db").exists()
    assert early.stored_study_attrs("postgresql://h/db", "x") is None
    (tmp_path / "junk.db").write_text(json.dumps({"not": "sqlite"}))
    assert early.stored_study_attrs(f"sqlite:///{tmp_path / 'junk.db'}", "x") is None
