"""Claims registered before the data: `xraygan sweep` stores the protocols of a study's claims
in the Optuna study before its first trial, never replaces them, and `xraygan claims list`
prints them."""

from __future__ import annotations

import dataclasses
import json

from xraygan.ablations import QUICK, StudyContext
from xraygan.ablations.registration import study_protocols
from xraygan.ablations.runner import SweepOptions, open_study
from xraygan.claims.protocol import REGISTRATION_ATTR, registered_protocols, registration
from xraygan.cli import main


def _opts(tmp_path, claims):
    return SweepOptions(study="table1", ctx=StudyContext(QUICK), out=tmp_path, claims=claims)


def test_sweep_registers_protocols_once_before_any_trial(tmp_path):
    protos = study_protocols("table1")
    assert {p.key for p in protos} >= {"adas_beats_adam", "dloss_inverse_fid", "no_data_copying"}
    study, _, created = open_study(_opts(tmp_path, registration(protos)))
    assert created and not study.trials
    got = registered_protocols(study.user_attrs)
    assert got == {p.key: p for p in protos}
    import datetime

    at = datetime.datetime.fromisoformat(study.user_attrs[REGISTRATION_ATTR]["registered_at"])
    assert abs((datetime.datetime.now(datetime.UTC) - at).total_seconds()) < 120
    # a later sweep with changed rules joins the study; the registration stays the first one
    changed = [dataclasses.replace(p, version=p.version + 1) for p in protos]
    study, _, created = open_study(_opts(tmp_path, registration(changed)))
    assert not created
    assert registered_protocols(study.user_attrs) == {p.key: p for p in protos}
    assert study.user_attrs[REGISTRATION_ATTR]["json_sha256"] == registration(protos)["json_sha256"]


def test_cli_sweep_options_carry_the_registration(tmp_path):
    from xraygan.cli import build_parser
    from xraygan.cli.sweep import build_options

    args = build_parser().parse_args(["sweep", "table1", "--quick", "--out", str(tmp_path)])
    opts = build_options(args)
    want = registration(study_protocols("table1"))
    assert opts.claims["json_sha256"] == want["json_sha256"]
    assert set(opts.claims["source_sha256"]) == set(want["claims"])


def test_claims_list_prints_every_rule(capsys, tmp_path):
    assert main(["claims", "list"]) == 0
    out = capsys.readouterr().out
    for key in ("adas_beats_adam", "hf_bias", "bn_saving", "blurry_squares"):
        assert f"{key} (version " in out
    assert "Preconditions (else untestable): seeds: " in out and "past_t0: every compared run" in out
    assert main(["claims", "list", "--study", "table1", "--json", str(tmp_path / "r.json")]) == 0
    assert "blurry_squares" not in capsys.readouterr().out
    reg = json.loads((tmp_path / "r.json").read_text())
    assert reg == registration(study_protocols("table1"))
