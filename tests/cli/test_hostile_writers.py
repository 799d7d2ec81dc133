"""Writers and names (issue 28 classes 7, 9, 10): a user's files are never replaced without
--force, data specs with a key given twice are refused, unknown names exit 2, and scale_probe
resumes from a log a kill cut short."""

from __future__ import annotations

import json

import pytest
from fuzz_helpers import run_main

from xraygan.ablations import scale_probe


def test_phantom_dicom_refuses_to_replace_a_users_labels(tmp_path):
    out = tmp_path / "cxr"
    out.mkdir()
    mine = "image_id,class_name\nmine,Cardiomegaly\n"
    (out / "train.csv").write_text(mine)
    argv = ["data", "phantom-dicom", str(out), "--series", "v2", "--count", "2", "--size", "32",
            "--codec", "raw"]
    code, _, err = run_main(argv)
    assert code == 2 and "train.csv exists" in err and "--force" in err
    assert (out / "train.csv").read_text() == mine and not (out / "train").exists()
    code, _, _ = run_main([*argv, "--force"])
    assert code == 0 and (out / "train.csv").read_text() != mine
    assert len(list((out / "train").glob("*.dicom"))) == 2
    code, _, err = run_main(argv)  # its own earlier output is a user's folder too
    assert code == 2 and "exists" in err


@pytest.mark.parametrize("argv, says", [
    (["data", "preview", "phantom:v2,cardiomegaly=0,cardiomegaly=1"], "cardiomegaly is given twice"),
    (["data", "phantom-dicom", "{tmp}/x", "--series", "v2,effusion=0.1,effusion=0.2"],
     "effusion is given twice"),
    (["data", "phantom-dicom", "{tmp}/x", "--series", "v2,cardiomegaly=2"], "--series"),
    (["data", "phantom-dicom", "{tmp}/x", "--series", "v1,cardiomegaly=0.5"], "--series"),
    (["claims", "list", "--study", "UNKNOWN"], "--study 'UNKNOWN': no study of that kind"),
])
def test_specs_and_names_that_cannot_mean_one_thing(tmp_path, argv, says):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if argv[1] == "preview":
        argv += ["--png", str(tmp_path / "p.png"), "--count", "2", "--size", "16"]
    code, out, err = run_main(argv)
    assert code == 2 and says in err, err
    assert not (tmp_path / "x").exists() and not (tmp_path / "p.png").exists()


ROW = {"seed": 0, "steps": 10, "batch_size": 8, "t0": {"200": None}, "avx2_quiet_s": 1.0,
       "wall_s": 2.0, "cpu_s": 2.0, "load_avg": [1.0, 1.0]}


def test_scale_probe_resumes_after_a_line_cut_by_a_kill(tmp_path, monkeypatch, capsys):
    out = tmp_path / "probe"
    out.mkdir()
    log = out / "probe.jsonl"
    done = json.dumps({**ROW, "cell": "adas-elu"})
    log.write_text(done + "\n" + json.dumps({**ROW, "cell": "adam-elu"})[:40])  # killed mid-write
    probed = []

    def fake_run(cell, seed, **kw):  # the training itself is tested elsewhere
        probed.append(cell)
        return {**ROW, "cell": cell, "seed": seed, "steps": kw["steps"],
                "batch_size": kw["batch_size"]}

    monkeypatch.setattr(scale_probe, "probe_run", fake_run)
    argv = ["--cells", "adas-elu", "adam-elu", "--seeds", "0", "--steps", "10",
            "--batch-size", "8", "--out", str(out)]
    assert scale_probe.main(argv) == 0
    assert probed == ["adam-elu"]  # the finished run is skipped, the cut one runs again
    assert "probe.jsonl:2: not a complete probe row" in capsys.readouterr().err
    rows = scale_probe.read_log(log)
    assert [r["cell"] for r in rows] == ["adas-elu", "adam-elu"]  # no row glued to the cut one
    assert scale_probe.main(argv) == 0 and probed == ["adam-elu"]
    assert scale_probe.main(["--summary", str(log)]) == 0
    assert capsys.readouterr().out.count("| ada") == 2


@pytest.mark.parametrize("argv, says", [
    (["--summary", "{tmp}/missing.jsonl"], "probe log {tmp}/missing.jsonl does not exist"),
    (["--cells", "adas-elu", "nope", "--steps", "10", "--batch-size", "8", "--out", "{tmp}/o"],
     "--cells: nope not a Table I cell"),
    (["--steps", "-3", "--batch-size", "8", "--out", "{tmp}/o"], "--steps"),
])
def test_scale_probe_input_errors_are_one_line(tmp_path, capsys, argv, says):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        code = scale_probe.main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and says.replace("{tmp}", str(tmp_path)) in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("kind, implausible", [("noise", (1.0, 1.0)), ("phantoms", (0.0, 0.25))])
def test_the_anatomy_measurer_takes_no_noise_for_a_chest(tmp_path, kind, implausible):
    import numpy as np
    import torch
    from report_fixtures import config, make_run

    from xraygan import runs
    from xraygan.config import replace_path
    from xraygan.data.phantom import PhantomSeries, generate_phantoms
    from xraygan.imageio import save_grid

    run = make_run(tmp_path / "runs", kind, replace_path(config(kind), "model.image_size", 32))
    if kind == "noise":
        images = torch.rand(64, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    else:
        ph = generate_phantoms(64, 32, 0, series=PhantomSeries(version=2, cardiomegaly=0.3))
        images = torch.from_numpy(np.asarray(ph, np.float32))[:, None] * 2 - 1
    for grid in runs.sample_paths(run):
        save_grid(images, grid)
    out = tmp_path / "m.json"
    code, _, err = run_main(["metrics", str(run), "--json", str(out)])
    assert code == 0, err
    got = json.loads(out.read_text())[0]["anat_implausible"]
    assert implausible[0] <= got <= implausible[1]
