"""Studies of different scale, data, image size, widths, batch, run length or FID sample size
never pool: the report keys trials on them and shows populations side by side; a study given
twice is refused; the registration's time is checked against the first trial's start."""

from __future__ import annotations

import pandas as pd
import pytest

from xraygan.claims.table1 import T0_PARAMS
from xraygan.claims.verdicts import FAILS, HOLDS, INCONCLUSIVE
from xraygan.errors import XrayganError
from xraygan.reports.build import (
    StudyData,
    claims_by_population,
    decide_claims,
    populations,
    registration_timing,
)
from xraygan.reports.load import by_population, population_label, with_fid_n

QUICK = "scale quick, phantom data (1024 images), 32 px, width 32, 3500 steps of batch 32"


def frame(scale: str, size: int, fid_n: int, adas: list[float], adam: list[float], *,
          steps: int = 3500, name: str = "t") -> pd.DataFrame:
    rows = []
    for g, values in (("adas-elu", adas), ("adam-elu", adam)):
        for s, f in enumerate(values):
            rows.append({"group": g, "cell": f"{g}-s{s}", "seed": s, "status": "completed",
                         "study": "table1", "scale": scale, "image_size": size,
                         "data_source": "phantom", "num_images": 1024, "fid": f, "t0": 100.0,
                         "t0_past": 1.0, **dict(T0_PARAMS), "g_features": 32,
                         "d_features": 32, "batch_size": 32, "config_steps": steps,
                         "config_epochs": 0.0, "d_loss_mean": 1.0, "fid_n1": fid_n,
                         "run_dir": f"/runs/{name}/{g}-s{s}", "started": "2026-12-01T10:00:00+00:00"})
    return pd.DataFrame(rows)


def test_with_fid_n_prefers_the_declared_scale_and_fills_failed_trials():
    df = frame("quick", 32, 128, [1.0], [2.0])
    df.loc[0, "fid_n1"] = float("nan")  # a failed trial has no FID
    out = with_fid_n(df, {"fid": True, "fid_samples": 128})
    assert list(out["fid_n"]) == [128.0, 128.0]
    assert len(by_population(out)) == 1
    assert population_label(next(iter(by_population(out)))) == f"{QUICK}, FID on 128 samples"


def test_two_scales_are_decided_apart_and_shown_side_by_side():
    # each scale alone: AdaS clearly better at quick scale, equal-ish at full scale; pooled, the
    # 32 px / 128-sample FIDs (much larger) would swamp the 64 px ones
    quick = with_fid_n(frame("quick", 32, 128, [200, 205, 198], [400, 410, 405], name="q"))
    full = with_fid_n(frame("full", 64, 10000, [100, 130, 90], [110, 95, 125], name="f"))
    data = [StudyData("table1-quick", "table1", quick), StudyData("table1-full", "table1", full)]
    pops = populations(data)
    assert len(pops) == 2 and all(len(p.frames["table1"]) == 6 for p in pops)
    claims = [c for c in decide_claims(data, None) if c.key == "adas_beats_adam"]
    by = {c.population: c for c in claims}
    assert by[f"{QUICK}, FID on 128 samples"].verdict == HOLDS
    full_label = ("scale full, phantom data (1024 images), 64 px, width 32, 3500 steps of "
                  "batch 32, FID on 10000 samples")
    assert by[full_label].verdict == INCONCLUSIVE
    text = claims_by_population(claims)
    assert "verdicts side by side" in text and text.count("### Decided on: scale") == 2
    assert "| AdaS beats Adam | holds | inconclusive |" in text and "adas_beats_adam" not in text


def test_run_lengths_are_never_pooled():
    # 2,500 iterations: AdaS and Adam equal; 6,000: AdaS 30 % lower. Pooled, the length would
    # decide; apart, each length gets its own verdict.
    short = with_fid_n(frame("quick", 32, 128, [300, 310, 305, 302], [301, 306, 309, 303],
                             steps=2500, name="a"))
    long = with_fid_n(frame("quick", 32, 128, [140, 145, 150], [200, 210, 205], steps=6000,
                            name="b"))
    data = [StudyData("t1-short", "table1", short), StudyData("t1-long", "table1", long)]
    pops = populations(data)
    assert len(pops) == 2
    claims = {c.population: c for c in decide_claims(data, None) if c.key == "adas_beats_adam"}
    assert {c.verdict for c in claims.values()} == {FAILS, HOLDS}
    assert any("2500 steps" in k for k in claims) and any("6000 steps" in k for k in claims)


def test_a_study_given_twice_is_refused():
    df = with_fid_n(frame("quick", 32, 128, [200, 205, 198], [400, 410, 405]))
    with pytest.raises(XrayganError, match="study t1 is given twice"):
        populations([StudyData("t1", "table1", df), StudyData("t1", "table1", df)])
    with pytest.raises(XrayganError, match="share 6 run folder"):  # a copy under another name
        populations([StudyData("t1", "table1", df), StudyData("t1-copy", "table1", df)])


def test_the_registration_time_is_checked_against_the_first_trial():
    df = frame("quick", 32, 128, [1.0], [2.0])
    reg = {"claims_protocol": {"registered_at": "2026-12-01T09:59:00+00:00"}}
    assert "before its first trial started" in registration_timing(StudyData("s", "table1", df, reg))
    late = {"claims_protocol": {"registered_at": "2026-12-02T00:00:00+00:00"}}
    assert "AFTER its first trial started" in registration_timing(StudyData("s", "table1", df, late))
    assert "stored no registration time" in registration_timing(
        StudyData("s", "table1", df, {"claims_protocol": {}}))
