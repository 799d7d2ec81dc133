"""Study definitions: the right configurations, valid geometries, CLI listing. No training."""

from __future__ import annotations

import math

import optuna
import pytest

from xraygan.ablations import FULL, QUICK, STUDIES, StudyContext, load_studies
from xraygan.ablations.compress_search import reference_params, stride_options, suggest
from xraygan.ablations.table3 import merged_strides
from xraygan.cli import main
from xraygan.errors import ConfigError
from xraygan.models import check_model_config, plan_discriminator, plan_generator
from xraygan.optim import resolved_lrs

load_studies()


def grid(name: str, scale=QUICK, **kw):
    return {c.key: c for c in STUDIES.get(name).grid(StudyContext(scale, **kw))}


def test_registry_lists_every_study():
    # (other test modules may register test studies of their own)
    assert {"batchnorm", "compress-search", "fmaps", "seeds", "table1", "table3"} <= set(STUDIES.names())
    with pytest.raises(ConfigError, match="unknown study 'nope'; choose one of: batchnorm"):
        STUDIES.get("nope", field="study")


@pytest.mark.parametrize("scale", [QUICK, FULL])
def test_table1_four_rows(scale):
    cells = grid("table1", scale)
    assert list(cells) == ["adas-elu", "adam-elu", "adas-elu-ttur", "adas-dcgan"]
    rows = {k: (c.config.optim.name, c.config.optim.ttur, c.config.model.g_activation,
                c.config.model.d_activation) for k, c in cells.items()}
    assert rows == {
        "adas-elu": ("adas", False, "elu", "elu"),
        "adam-elu": ("adam", False, "elu", "elu"),
        "adas-elu-ttur": ("adas", True, "elu", "elu"),
        "adas-dcgan": ("adas", False, "relu", "leaky_relu"),
    }
    for c in cells.values():  # only the table's columns differ: Table II's batch norm in D
        assert c.config.model.batchnorm == "d"
        assert c.config.model.image_size == scale.image_size
        assert c.config.model.g_features == scale.features
    lr_g, lr_d = resolved_lrs(cells["adas-elu-ttur"].config.optim)
    assert lr_d == 4 * lr_g  # TTUR: D learns faster


def test_scales():
    # the quick scale (ablations/scale.py): long enough for every probed seed of the compared
    # configurations to leave T0 (issue 26); 2,000 iterations were measured too short
    from xraygan.claims.table1 import t0_shortfall

    assert (QUICK.image_size, QUICK.batch_size, QUICK.fid, QUICK.fid_samples) == (32, 32, True, 128)
    assert t0_shortfall(32, QUICK.features, 32, QUICK.steps) == ""
    assert "untestable at this scale" in t0_shortfall(32, QUICK.features, 32, 2000)
    assert t0_shortfall(32, QUICK.features, 32, 2500) == "" and t0_shortfall(64, 64, 128, 1) == ""
    assert (FULL.image_size, FULL.epochs, FULL.steps) == (64, 150.0, 0)
    assert FULL.fid_samples >= 10_000


@pytest.mark.parametrize("scale", [QUICK, FULL])
def test_table3_twelve_valid_cells(scale):
    cells = grid("table3", scale)
    base = cells.pop("baseline")
    assert base.reference and len(cells) == 12
    assert {(c.params["factor"], c.params["side"]) for c in cells.values()} == {
        (f, s) for f in ("strides", "fc", "latent", "fmaps") for s in ("d", "g", "both")}
    b = base.config.model
    for key, c in cells.items():
        m = c.config.model
        check_model_config(m)  # every geometry builds
        factor, side = c.params["factor"], c.params["side"]
        g_changed = (m.g_strides, m.g_fc_layers, m.latent_dim, m.g_features) != (
            b.g_strides, b.g_fc_layers, b.latent_dim, b.g_features)
        d_changed = (m.d_strides, m.d_fc_layers, m.d_features) != (b.d_strides, b.d_fc_layers, b.d_features)
        assert g_changed == (side in ("g", "both")), key
        assert d_changed == (side in ("d", "both")), key
        if factor == "strides" and side in ("g", "both"):
            plans = plan_generator(m)
            strided = [p for p in plans[1:] if p.kind == "convT"]
            # fewer layers than DCGAN, and eq. 5's kernel K = S + 2P for each
            assert len(strided) < len(plan_generator(b)) - 1
            assert all(p.kernel == p.stride + 2 * p.padding for p in strided)
            assert plans[-1].out_size == scale.image_size
    assert merged_strides(64) == (4, 4) and merged_strides(32) == (4, 2) and merged_strides(128) == (4, 4, 2)
    assert plan_discriminator(cells["latent-d"].config.model)[-1].kernel == 2  # logit reads 2x2
    assert cells["latent-g"].config.model.latent_dim == 16


def test_batchnorm_cells():
    cells = grid("batchnorm")
    assert {k: c.config.model.batchnorm for k, c in cells.items()} == {
        "bn-none": "none", "bn-d": "d", "bn-g": "g", "bn-both": "both"}


def test_fmaps_widths_and_sizes():
    full = grid("fmaps", FULL)
    assert sorted({c.config.model.g_features for c in full.values()}) == [32, 64, 128, 192, 256, 320]
    assert sorted({c.config.model.image_size for c in full.values()}) == [64, 128]
    assert len(full) == 12
    for c in full.values():
        assert c.config.model.d_features == c.config.model.g_features
        assert c.config.model.image_size == c.params["image_size"]
    assert len(grid("fmaps", QUICK)) == 8


def test_seeds_repeat_cells():
    cells = grid("table1", seeds=3)
    assert len(cells) == 12 and "adam-elu-s2" in cells
    assert cells["adam-elu-s2"].config.train.seed == 2
    seeds = grid("seeds", seeds=4)
    assert list(seeds) == ["seed0", "seed1", "seed2", "seed3"]
    assert [c.config.train.seed for c in seeds.values()] == [0, 1, 2, 3]
    assert len({c.config.model for c in seeds.values()}) == 1
    with pytest.raises(ConfigError, match="--seeds: expected >= 1"):
        grid("table1", seeds=0)


def test_compress_search_space():
    opts = stride_options(32)
    assert (8,) in opts and (2, 2, 2) in opts and (4, 2) in opts
    assert all(math.prod(s) == 8 for s in opts)
    ctx = StudyContext(QUICK)
    ref = suggest(optuna.trial.FixedTrial(reference_params(ctx)), ctx)
    assert ref.config.model.g_strides == (2, 2, 2) and ref.config.model.latent_dim == 100
    small = suggest(optuna.trial.FixedTrial(
        {"g_strides": "8", "g_features": 8, "latent_dim": 16, "g_fc_layers": 1}), ctx)
    m = small.config.model
    check_model_config(m)
    assert (m.g_strides, m.g_features, m.g_fc_layers) == ((8,), 8, 1)
    assert m.d_strides == () and m.d_features == QUICK.features  # D stays the deep model


def test_cli_list_and_dry_run(capsys, tmp_path):
    assert main(["sweep", "--list"]) == 0
    out = capsys.readouterr().out
    assert "table1" in out and "13 cells (quick)" in out and "search, 12 trials" in out
    assert main(["sweep", "table3", "--full", "--dry-run", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "strides-both" in out and '"image_size": 64' in out
    assert not any(tmp_path.iterdir())  # a dry run writes nothing
    assert main(["sweep", "table1", "--cell", "table1:adas-elu"]) == 2
    assert "--cell and --config choose the configuration of the seeds study only" in capsys.readouterr().err
    assert main(["sweep", "seeds", "--cell", "table1:nope", "--dry-run"]) == 2
    assert "has no cell 'nope'" in capsys.readouterr().err
