"""The paper's scale (``--full``) exercised on the CPU: every cell of every study ``nox -s full``
runs is validated and built at its real image size and widths, and a representative of each
study's distinct geometries trains a step, is scored (FID on a tiny sample) and reported, so a
GPU user's first run does not meet a crash a CPU could have found."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from xraygan.ablations import FULL, STUDIES, StudyContext, load_studies
from xraygan.ablations.scale import FULL_STUDIES
from xraygan.cli import main
from xraygan.config import validate

load_studies()

# A representative of each study's distinct geometries: Table I and batch norm share the 64x64
# width-64 DCGAN (bn-none: the stack without normalization); Table III's "both" cells combine its
# D and G changes (strided stacks without pooling layers, FC layers: the largest Table III
# model, 40 M parameters); fmaps: the 128-px stack. Every other cell, up to the 565 M parameters
# of w320-s128 (a CPU test cannot hold its optimizer state), is built on the meta device below.
TRAINED = {
    "table1": ["adas-elu-ttur"],
    "table3": ["strides-both", "fc-both"],
    "batchnorm": ["bn-none"],
    "fmaps": ["w32-s128"],
}
FLAGS = ["--full", "--steps", "1", "--batch-size", "2", "--num-images", "4", "--fid-samples", "2",
         "--sample-every", "1", "--checkpoint-every", "1", "--device", "cpu", "--no-estimate",
         "--no-progress"]


def test_trained_cells_cover_every_full_study():
    assert set(TRAINED) == set(FULL_STUDIES)


@pytest.mark.parametrize("study", FULL_STUDIES)
def test_every_full_cell_validates_and_builds_at_its_real_size(study):
    from xraygan.models import build_models

    cells = STUDIES.get(study).grid(StudyContext(FULL))
    assert {c.key for c in cells} >= set(TRAINED[study])
    for cell in cells:
        m = cell.config.model
        validate(cell.config)
        assert m.image_size in (64, 128)
        with torch.device("meta"):
            G, D = build_models(m)
            x = G(torch.zeros(2, m.latent_dim))
            assert tuple(x.shape) == (2, m.channels, m.image_size, m.image_size), cell.key
            assert D(x).shape[0] == 2, cell.key


def test_full_studies_train_score_and_report_on_cpu(weights, tmp_path, monkeypatch):
    monkeypatch.setenv("XRAYGAN_FID_STATS", str(tmp_path / "stats"))
    out = tmp_path / "studies"
    for study, cells in TRAINED.items():
        js = tmp_path / f"{study}.json"
        assert main(["sweep", study, *FLAGS, "--out", str(out), "--cells", *cells,
                     "--json", str(js)]) == 0
        rows = json.loads(js.read_text())["trials"]
        assert sorted(r["cell"] for r in rows) == sorted(cells)
        assert all(r["state"] == "COMPLETE" and r["objective"] == "fid" for r in rows), rows
        assert all(np.isfinite(r["value"]) for r in rows)
    import optuna

    st = optuna.load_study(study_name="fmaps-full", storage=f"sqlite:///{out}/fmaps-full.db")
    sizes = {t.user_attrs["cell"]: t.user_attrs["config"]["model"]["image_size"] for t in st.trials}
    assert sizes == {"w32-s128": 128}
    assert all(t.user_attrs["steps"] == 1 for t in st.trials)
    report = tmp_path / "report"
    names = [f"{s}-full" for s in TRAINED]
    for name in names:
        assert main(["report", name, "--storage", f"sqlite:///{out}/{name}.db", "--out",
                     str(report)]) == 0
        assert (report / f"{name}.md").read_text().count("|") > 10


def test_cells_flag_names_the_valid_cells(tmp_path, capsys):
    assert main(["sweep", "table1", "--full", "--cells", "nope", "--dry-run", "--no-estimate", "--no-fid",
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--cells: nope not in study table1" in err and "adas-elu-ttur" in err
    assert main(["sweep", "table1", "--full", "--seeds", "2", "--cells", "adam-elu", "--no-fid",
                 "--num-images", "4", "--steps", "1",
                 "--dry-run", "--no-estimate", "--out", str(tmp_path)]) == 0
    keys = [ln.split()[0] for ln in capsys.readouterr().out.splitlines()[2:]]
    assert keys == ["adam-elu-s0", "adam-elu-s1"]
