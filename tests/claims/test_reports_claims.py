"""Claim verdicts on constructed data: each rule's holds / does not hold / inconclusive /
untestable case, Holm within a family, and the registered protocol deciding."""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest
from report_fixtures import memory_rows

from xraygan.claims import engine, table1
from xraygan.claims.protocol import registered_protocols, registration
from xraygan.claims.verdicts import FAILS, HOLDS, INCONCLUSIVE, UNTESTABLE, Verdict
from xraygan.reports import claim_page, tables

NAN = float("nan")


RULE = dict(table1.T0_PARAMS)  # the thresholds t0_phase decided each run's T0 with


def t1(fids: dict[str, list[float]], means: dict[str, list[float]] | None = None,
       t0: dict[str, list[float]] | None = None) -> pd.DataFrame:
    rows = []
    for g, values in fids.items():
        for i, f in enumerate(values):
            t = (t0 or {}).get(g, [100.0] * len(values))[i]
            rows.append({"group": g, "cell": f"{g}-s{i}", "status": "completed", "fid": f,
                         "d_loss_mean": (means or {}).get(g, [1.0] * len(values))[i],
                         "t0": t, "t0_past": float(math.isfinite(t)), **RULE,
                         "study": "table1", "seed": i, "scale": "quick", "image_size": 32,
                         "data_source": "phantom", "num_images": 2048, "fid_n1": 256})
    return pd.DataFrame(rows)


def test_verdicts_are_one_enum_of_four():
    assert [v.value for v in Verdict] == ["holds", "does not hold", "inconclusive", "untestable"]
    assert f"{FAILS}" == "does not hold" and FAILS == "does not hold"


@pytest.mark.parametrize("adas,adam,verdict", [
    ([100, 104, 98], [230, 240, 236], HOLDS),
    ([230, 240, 236], [100, 104, 98], FAILS),  # significant in the opposite direction
    ([100, 200, 150], [140, 180, 160], INCONCLUSIVE),
    ([100], [240], UNTESTABLE),  # one run each: no test, however large the gap
    ([100, 100, 100], [240, 240, 240], UNTESTABLE),  # no spread between seeds: not p = 0
    ([100, 104, 98], [104, 108, 102], FAILS),  # 4 % lower, shown inside the 10 % margin
    ([100.0, 100.5, 99.5, 100.2], [100.3, 99.8, 100.1, 100.0], FAILS),  # equivalent (TOST)
    ([184.8, 248.4, 271.6], [396.5, 361.3, 413.6], HOLDS),  # the quick scale's 3 seeds
])
def test_adas_beats_adam(adas, adam, verdict):
    c = table1.adas_beats_adam(t1({"adas-elu": adas, "adam-elu": adam}))
    assert c.verdict == verdict, c.reason
    # the paper's number beside ours, quoted as in the statement (one formatter), with its scope
    assert "104.6 vs 238.3" in c.evidence and "104.6 vs 238.3" in c.statement
    assert "Paper (64 px" in c.evidence and "Does not transfer to: 64 px" in c.scope
    assert c.key == "adas_beats_adam" and c.version == 3 and len(c.sha256) == 64
    if verdict == UNTESTABLE:  # no p-value beside an untestable verdict
        assert math.isnan(c.p) and math.isnan(c.p_adjusted) and math.isnan(c.estimate)


def test_adas_beats_adam_is_untestable_before_t0():
    df = t1({"adas-elu": [100, 104, 98], "adam-elu": [390, 400, 410]},
            t0={"adam-elu": [NAN, NAN, 300.0]})  # Adam's D wins in 2 of 3 seeds
    c = table1.adas_beats_adam(df)
    assert c.verdict == UNTESTABLE
    assert c.reason.startswith("past_t0") and "adam-elu past T0 in 1 of 3 seeds" in c.reason
    assert c.excluded == "adam-elu: 2 not past T0 of 3" and math.isnan(c.p)


def test_seeds_not_past_t0_are_left_out_and_counted():
    df = t1({"adas-elu": [100, 104, 98], "adam-elu": [230, 240, 236, 120]},
            t0={"adam-elu": [1800.0, 1750.0, 1900.0, NAN]})  # the 4th never left T0
    c = table1.adas_beats_adam(df)
    assert c.verdict == HOLDS and "adam-elu past T0 in 3 of 4 seeds (T0 mean 1817, n = 3)" \
        in c.evidence
    assert "left out: adam-elu: 1 not past T0 of 4" in c.evidence
    assert c.n_per_cell == "adas-elu 3, adam-elu 3"


def test_a_t0_decided_by_another_rule_is_refused():
    df = t1({"adas-elu": [100, 104, 98], "adam-elu": [230, 240, 236]})
    c = table1.adas_beats_adam(df.assign(t0_leave_level=0.5))
    assert c.verdict == UNTESTABLE and "t0_leave_level 0.500, the registered rule says 0.3" \
        in c.reason
    c = table1.adas_beats_adam(df.drop(columns=["t0_past"]))  # metrics from before the rule
    assert c.verdict == UNTESTABLE and "predate the T0 rule" in c.reason


def test_missing_data_is_untestable_and_named():
    df = t1({"adas-elu": [1.0], "adam-elu": [2.0]}).assign(fid=NAN)
    assert table1.adas_beats_adam(df).verdict == UNTESTABLE
    c = table1.adas_beats_adam(None)
    assert c.verdict == UNTESTABLE and c.reason == "data: no table1 study"


def test_elu_ttur_adas_best():
    base = {"adas-elu": [110, 112, 111], "adam-elu": [230, 240, 235], "adas-dcgan": [120, 121, 119]}
    assert table1.elu_ttur_adas_best(t1({**base, "adas-elu-ttur": [80, 81, 79]})).verdict == HOLDS
    assert table1.elu_ttur_adas_best(t1({**base, "adas-elu-ttur": [130, 131, 129]})).verdict == FAILS
    assert table1.elu_ttur_adas_best(
        t1({**base, "adas-elu-ttur": [80, 120, 100]})).verdict == INCONCLUSIVE
    # a registered cell missing (all its runs diverged) is untestable, never "best of the rest"
    diverged = t1({**base, "adas-elu-ttur": [100, 101, 99]})
    diverged.loc[diverged["group"] == "adam-elu", "status"] = "diverged"
    c = table1.elu_ttur_adas_best(diverged)
    assert c.verdict == UNTESTABLE and "adam-elu 0 of 3 runs usable" in c.reason
    assert "adam-elu: 3 diverged of 3" in c.excluded


def _configs(fid_means, d_means, seeds=3, within=0.0):
    fids, ds = {}, {}
    for i, (f, d) in enumerate(zip(fid_means, d_means, strict=True)):
        fids[f"c{i}"] = [f + within * (s - 1) for s in range(seeds)]
        ds[f"c{i}"] = [d - within / 100 * (s - 1) for s in range(seeds)]
    return t1(fids, ds)


def test_dloss_inverse_fid_counts_configurations_not_runs():
    inverse = _configs([100, 120, 140, 160, 180, 200], [2.0, 1.8, 1.5, 1.4, 1.1, 0.9])
    c = table1.dloss_inverse_fid(inverse)
    assert c.verdict == HOLDS and "over 6 configuration means" in c.evidence
    assert "paper's own Table I: r = -0.902" in c.evidence
    assert table1.dloss_inverse_fid(
        _configs([100, 120, 140, 160, 180, 200], [0.9, 1.1, 1.4, 1.5, 1.8, 2.0])).verdict == FAILS
    # 4 configurations, 3 seeds each, a within-configuration link only: the runs' pooled r
    # is strong, the configuration means' is not significant at n = 4
    noisy = _configs([100, 140, 120, 160], [1.0, 1.1, 1.2, 0.9], within=30)
    c = table1.dloss_inverse_fid(noisy)
    assert c.verdict == INCONCLUSIVE and "over 4 configuration means" in c.evidence
    assert "pooled" not in c.evidence  # the retired pooled-runs r is not shown
    c = table1.dloss_inverse_fid(t1({"a": [1.0, 2.0], "b": [3.0, 4.0]}))
    assert c.verdict == UNTESTABLE and c.reason.startswith("configurations")


def test_paper_dloss_correlation_from_table1():
    r, p, n = table1.paper_dloss_correlation()
    assert n == 4 and r == pytest.approx(-0.902, abs=1e-3) and p > 0.05  # not significant at n=4


def test_holm_within_family_adjusts_each_claims_p():
    df = t1({"adas-elu": [100, 104, 98], "adam-elu": [230, 240, 236],
             "adas-elu-ttur": [95, 99, 97], "adas-dcgan": [120, 121, 119]},
            {"adas-elu": [1.2] * 3, "adam-elu": [0.4] * 3, "adas-elu-ttur": [1.3] * 3,
             "adas-dcgan": [1.1] * 3})
    out = {c.key: c for c in engine.evaluate_claims({"table1": df})}
    fam = [out[k] for k in ("adas_beats_adam", "elu_ttur_adas_best", "dloss_inverse_fid")]
    assert {c.family for c in fam} == {"table1"}
    raws = sorted(c.p for c in fam)
    adj = sorted(c.p_adjusted for c in fam)
    assert adj[0] == pytest.approx(min(1.0, 3 * raws[0]))  # Holm: m * smallest
    assert all(a >= r for a, r in zip(adj, raws, strict=True))
    assert "Holm-adjusted" in claim_page.claims_markdown(fam)


def _memory(scale_with_bn: float) -> pd.DataFrame:
    rows = memory_rows()
    for r in rows:
        if r["batchnorm"] == "both":
            r["measured_peak_bytes"] = int(r["measured_peak_bytes"] / 1.03 * scale_with_bn)
    return tables.memory_rows_frame(rows)


def test_bn_saving():
    from xraygan.claims.memory import bn_saving

    assert bn_saving(_memory(1.03)).verdict == HOLDS  # 2.9 % saved
    c = bn_saving(_memory(1.20))  # 16.7 % saved: outside 1.2-7 %
    assert c.verdict == FAILS and "median measured saving 16.67 %" in c.evidence
    mixed = _memory(1.03)
    mixed.loc[(mixed["batchnorm"] == "both") & (mixed["features"] >= 64), "measured_mib"] *= 1.2
    assert bn_saving(mixed).verdict == INCONCLUSIVE  # median in range, 4 of 10 pairs out
    assert bn_saving(mixed[mixed["batchnorm"] == "d"]).verdict == UNTESTABLE  # no pair


def test_memory_exponential():
    from xraygan.claims.memory import memory_exponential

    power = tables.memory_rows_frame(memory_rows())  # m = 0.2 + 0.001 w^1.5
    assert memory_exponential(power).verdict == FAILS
    expo = power.copy()
    expo["measured_mib"] = 0.5 * 2.0 ** (expo["features"] / 16.0)
    assert memory_exponential(expo).verdict == HOLDS
    assert memory_exponential(power[power["features"] <= 16]).verdict == UNTESTABLE  # 3 widths


def t3(blockiness: list[float], base: float = 0.08) -> pd.DataFrame:
    rows = [{"group": "baseline", "cell": "baseline", "status": "completed", "reference": True,
             "param_factor": "none", "param_side": "none", "blockiness": base, "fid": 100.0}]
    cells = [(f, s) for f in ("strides", "fc", "latent", "fmaps") for s in ("d", "g", "both")]
    for (f, s), b in zip(cells, blockiness, strict=False):
        rows.append({"group": f"{f}-{s}", "cell": f"{f}-{s}", "status": "completed",
                     "reference": False, "param_factor": f, "param_side": s, "blockiness": b,
                     "fid": 150.0})
    return pd.DataFrame(rows)


def test_blurry_squares():
    from xraygan.claims.memory import blurry_squares

    assert blurry_squares(t3([0.4] * 12)).verdict == HOLDS
    assert blurry_squares(t3([0.1] * 12)).verdict == FAILS  # within the 0.05 margin
    assert blurry_squares(t3([0.4] * 6 + [0.09] * 6)).verdict == INCONCLUSIVE
    assert blurry_squares(t3([0.4] * 4)).verdict == UNTESTABLE  # too few cells
    c = blurry_squares(t3([0.4] * 10 + [0.1] * 2))
    assert c.verdict == HOLDS and c.evidence.startswith("10 of 12 compressed cells blocky")


def test_evaluate_claims_without_data_is_all_untestable():
    out = engine.evaluate_claims({})
    assert [c.key for c in out] == ["adas_beats_adam", "elu_ttur_adas_best", "dloss_inverse_fid",
                                    "bn_saving", "memory_exponential", "blurry_squares",
                                    "no_data_copying", "hf_bias", "best_fid_best_recall",
                                    "synthetic_stands_in"]
    assert {c.verdict for c in out} == {UNTESTABLE}
    text = claim_page.claims_markdown(out)
    # once in the summary table, once as a heading; the rule folded away below the sentence
    assert text.count("**untestable**") == 10 and text.count(": untestable\n") == 10
    assert text.count("<details>") == 10 and "- Rule:" in text and "All decided at" not in text


# --------------------------------------------------------------------------- registry
def test_registry_keys_once_and_study_pages():
    from xraygan.claims.engine import CLAIMS, ClaimProtocol, claims_for_study, register_claim

    assert claims_for_study("table3") == ("blurry_squares", "hf_bias")
    assert "bn_saving" in claims_for_study("memory")
    assert claims_for_study("fmaps", declared=("blurry_squares",)) == ("memory_exponential",
                                                                       "blurry_squares")
    with pytest.raises(KeyError, match="registered twice"):
        register_claim(CLAIMS["bn_saving"].protocol, reads=lambda i: None)(lambda x, p: None)
    with pytest.raises(KeyError, match="unknown claim"):
        claims_for_study("table1", declared=("no_such_claim",))
    with pytest.raises(ValueError, match="direction"):
        ClaimProtocol(key="x", version=1, statement="", hypothesis="", direction="up",
                      metric="", cells=(), test="", family="f")
    assert all(spec.key == key for key, spec in CLAIMS.items())


def test_registration_round_trip_and_hash():
    protos = list(engine.protocols().values())
    reg = registration(protos)
    back = registered_protocols({"claims_protocol": reg})
    assert back == {p.key: p for p in protos}
    assert registration(protos) == reg  # canonical: the same bytes every time
    tampered = {**reg, "claims": {**reg["claims"], "hf_bias": {**reg["claims"]["hf_bias"],
                                                               "alpha": 0.2}}}
    with pytest.raises(ValueError, match="do not match"):
        registered_protocols({"claims_protocol": tampered})
    assert registered_protocols({}) is None
    from xraygan.ablations.runner import CLAIMS_ATTR
    from xraygan.claims.protocol import REGISTRATION_ATTR

    assert CLAIMS_ATTR == REGISTRATION_ATTR


def test_registered_protocol_decides_and_both_are_shown():
    df = t1({"adas-elu": [180, 215, 195], "adam-elu": [230, 245, 236]})  # one-sided p ~0.1
    code = engine.CLAIMS["adas_beats_adam"].protocol
    loose = dataclasses.replace(code, alpha=0.2)  # registered numbers differ from the code's
    out = engine.evaluate_claims({"table1": df}, registered={"adas_beats_adam": loose},
                                 keys=["adas_beats_adam"])[0]
    mine = engine.evaluate_claims({"table1": df}, registered={"adas_beats_adam": code},
                                  keys=["adas_beats_adam"])[0]
    assert math.isfinite(out.p) and 0.05 < out.p_adjusted < 0.2
    assert out.verdict == HOLDS and out.version == 3  # the registered alpha 0.2 decided
    assert "the registered one decided" in out.registration
    assert "The code's rule would say **inconclusive**" in out.registration
    assert mine.verdict == INCONCLUSIVE and mine.registration.startswith("registered: version 3")
    old = engine.evaluate_claims({"table1": df}, keys=["adas_beats_adam"],
                                 registered={"adas_beats_adam": dataclasses.replace(code, version=2)})[0]
    assert "cannot replay it" in old.registration and old.verdict == INCONCLUSIVE
    none = engine.evaluate_claims({"table1": df}, keys=["adas_beats_adam"])[0]
    assert "not registered before the data" in none.registration


# --------------------------------------------------------------------------- beyond FID
def _quality(groups):
    """Trials frame with per-run quality metrics: {group: [dict of metrics per seed]}."""
    rows = []
    for g, runs in groups.items():
        for seed, m in enumerate(runs):
            rows.append({"group": g, "cell": f"{g}-s{seed}", "status": "completed", "seed": seed,
                         "study": "table1", "fid_n1": 256, **m})
    return pd.DataFrame(rows)


NEAR = {"precision": 0.6, "density": 0.8, "mem_ct": -0.4, "mem_px_ct": 0.2}


def test_no_data_copying_verdicts():
    from xraygan.claims.quality import no_data_copying

    clean = {**NEAR, "mem_copy_fraction": 0.04, "mem_px_copy_fraction": 0.05}
    copy = {**NEAR, "mem_ct": -9.0, "mem_px_ct": -12.0, "mem_copy_fraction": 1.0,
            "mem_px_copy_fraction": 1.0, "precision": 1.0}
    def seeds(m, n=3):  # the runs of a configuration differ a little
        return [{**m, "mem_copy_fraction": m["mem_copy_fraction"] * (1 - 0.05 * i),
                 "mem_ct": m["mem_ct"] + 0.3 * i} for i in range(n)]

    assert no_data_copying(_quality({"a": seeds(clean), "b": seeds(clean)})).verdict == HOLDS
    c = no_data_copying(_quality({"a": seeds(clean), "b": seeds(copy)}))
    assert c.verdict == FAILS and "1 of 2 configurations show copying (b)" in c.evidence
    assert "-9.00" in c.details
    # a true copy rate under the 0.10 bound is not "does not hold" (non-inferiority at the margin)
    seven = {**NEAR, "mem_copy_fraction": 0.07, "mem_px_copy_fraction": 0.07}
    assert no_data_copying(_quality({"a": seeds(seven), "b": seeds(seven)})).verdict != FAILS
    assert no_data_copying(_quality({"a": [clean], "b": [clean]})).verdict == UNTESTABLE
    # noise: far from the data (C_T >> 0), no copies: untestable, not "no copying"
    noise = {"precision": 0.0, "density": 0.0, "mem_ct": 7.0, "mem_px_ct": 6.5,
             "mem_copy_fraction": 0.0, "mem_px_copy_fraction": 0.0}
    c = no_data_copying(_quality({"a": seeds(noise), "b": seeds(noise)}))
    assert c.verdict == UNTESTABLE and c.reason.startswith("near_data")
    # a quarter exact copies mixed with noise: C_T stays positive, the copy fraction fails it
    quarter = {**noise, "mem_ct": 4.0, "mem_copy_fraction": 0.25, "mem_px_copy_fraction": 0.25}
    assert no_data_copying(_quality({"a": seeds(quarter), "b": seeds(noise)})).verdict == FAILS
    assert no_data_copying(_quality({"a": [{"fid": 3.0}]})).verdict == UNTESTABLE


def test_hf_bias_verdicts():
    from xraygan.claims.quality import hf_bias

    def runs(hf, lf=0.0, n=1):
        return [{"hf_deficit": hf + 0.01 * i, "lf_deficit": lf, **NEAR} for i in range(n)]

    assert hf_bias(_quality({g: runs(0.5 + 0.02 * i) for i, g in enumerate("abcd")})).verdict == HOLDS
    # high frequencies reproduced as well as low ones (within 10 %): equivalent, does not hold
    assert hf_bias(_quality({g: runs(0.01 * i) for i, g in enumerate("abcd")})).verdict == FAILS
    # a generator that has not learned the low frequencies cannot test the claim
    c = hf_bias(_quality({g: runs(0.9, 0.8) for g in "abcd"}))
    assert c.verdict == UNTESTABLE and c.reason.startswith("low_frequencies")
    assert hf_bias(_quality({"a": runs(0.6)})).verdict == UNTESTABLE


def test_best_fid_best_recall_verdicts():
    from xraygan.claims.quality import best_fid_best_recall

    eq = {"prdc_n_real": 256, "prdc_n_fake": 256, "precision": 0.5}

    def cells(best_recall, other_recall):
        return _quality({"adas-elu": [{"fid": 94.0 + s, "recall": best_recall + 0.01 * s, **eq}
                                     for s in range(3)],
                         "adam-elu": [{"fid": 120.0 + s, "recall": other_recall + 0.01 * s, **eq}
                                      for s in range(3)]})

    c = best_fid_best_recall(cells(0.05, 0.40))
    assert c.verdict == FAILS and "lowest FID: adas-elu" in c.evidence
    assert best_fid_best_recall(cells(0.42, 0.40)).verdict == HOLDS
    # precision 0: recall measures spread, not diversity
    zero = cells(0.42, 0.40).assign(precision=0.0, density=0.0)
    c = best_fid_best_recall(zero)
    assert c.verdict == UNTESTABLE and c.reason.startswith("precision_floor")
    unequal = cells(0.42, 0.40).assign(prdc_n_real=2048)
    assert best_fid_best_recall(unequal).reason.startswith("equal_sets")
    assert best_fid_best_recall(None).verdict == UNTESTABLE


def test_claim_headings_are_words_not_keys():
    from xraygan.reports.claim_page import claim_title

    assert claim_title("AdaS beats Adam (Table I: FID 104.6 vs 238.3 with ELU, about half)") == \
        "AdaS beats Adam"
    assert claim_title("The mean D loss correlates inversely with FID, so D's loss can serve as "
                       "an assessment metric (Fig. 5)") == "The mean D loss correlates inversely with FID"
    assert claim_title("The best-FID configuration is also the most diverse (highest recall): "
                       "FID alone ranks diversity") == "The best-FID configuration is also the most diverse"
