"""Studies of different scale, data, image size or FID sample size never pool: the report
keys trials on (study kind, scale, data, image size, FID N) and shows populations side by
side."""

from __future__ import annotations

import pandas as pd

from xraygan.claims.verdicts import HOLDS, INCONCLUSIVE
from xraygan.reports.build import StudyData, claims_by_population, decide_claims, populations
from xraygan.reports.load import by_population, population_label, with_fid_n


def frame(scale: str, size: int, fid_n: int, adas: list[float], adam: list[float]) -> pd.DataFrame:
    rows = []
    for g, values in (("adas-elu", adas), ("adam-elu", adam)):
        for s, f in enumerate(values):
            rows.append({"group": g, "cell": f"{g}-s{s}", "seed": s, "status": "completed",
                         "study": "table1", "scale": scale, "image_size": size,
                         "data_source": "phantom", "num_images": 1024, "fid": f, "t0": 100.0,
                         "d_loss_mean": 1.0, "fid_n1": fid_n})
    return pd.DataFrame(rows)


def test_with_fid_n_prefers_the_declared_scale_and_fills_failed_trials():
    df = frame("quick", 32, 128, [1.0], [2.0])
    df.loc[0, "fid_n1"] = float("nan")  # a failed trial has no FID
    out = with_fid_n(df, {"fid": True, "fid_samples": 128})
    assert list(out["fid_n"]) == [128.0, 128.0]
    assert len(by_population(out)) == 1
    assert population_label(next(iter(by_population(out)))) == (
        "scale quick, phantom data (1024 images), 32 px, FID on 128 samples")


def test_two_scales_are_decided_apart_and_shown_side_by_side():
    # each scale alone: AdaS clearly better at quick scale, equal-ish at full scale; pooled, the
    # 32 px / 128-sample FIDs (much larger) would swamp the 64 px ones
    quick = with_fid_n(frame("quick", 32, 128, [200, 205, 198], [400, 410, 405]))
    full = with_fid_n(frame("full", 64, 10000, [100, 130, 90], [110, 95, 125]))
    data = [StudyData("table1-quick", "table1", quick), StudyData("table1-full", "table1", full)]
    pops = populations(data)
    assert len(pops) == 2 and all(len(p.frames["table1"]) == 6 for p in pops)
    claims = [c for c in decide_claims(data, None) if c.key == "adas_beats_adam"]
    by = {c.population: c for c in claims}
    assert by["scale quick, phantom data (1024 images), 32 px, FID on 128 samples"].verdict == HOLDS
    assert by["scale full, phantom data (1024 images), 64 px, FID on 10000 samples"].verdict == INCONCLUSIVE
    text = claims_by_population(claims)
    assert "verdicts side by side" in text and text.count("### Decided on: scale") == 2
    assert "| AdaS beats Adam | holds | inconclusive |" in text and "adas_beats_adam" not in text
