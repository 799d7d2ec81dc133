"""The claims section reads as a results section: one plain sentence per verdict (observed,
verdict and why, what would decide it), the rule folded away, no internal keys, source paths
or nested parentheses in reader text, no p-value beside an untestable verdict."""

import math
import re

from xraygan.claims.engine import Claim
from xraygan.reports import claim_page
from xraygan.reports.protocol import public_name, redact_paths

# the example report's AdaS claim as the engine decided it (docs/example-report, before)
REASON = ("past_t0 (each compared configuration leaves T0 (finite t0) in more than 50% of its "
          "seeds: a D loss near 0 means G has not started learning, and its FID measures the "
          "start of training): untestable at this scale (2000 iterations of batch 32, 32 px): "
          "at batch 32, adam-elu seed 2 stays in T0 through a 2000-iteration run and leaves it at "
          "1785 of 2500 (seeds 0, 1: 1405 and 1390 of 2000); 2500 iterations would not fit the "
          "quick scale's 25-minute budget (ablations/scale.py, docs/claims.md)")
EVIDENCE = ("ours: FID adas-elu 117.0 ± 53.5 (n=3) vs adam-elu 290.6 ± 33.9 (n=3); log-FID "
            "difference -0.920 [-1.348, -0.493] (ratio 0.40). Paper (64 px, full length, n=1 "
            "each): 104.6 vs 238.3")


def adas(**kw) -> Claim:
    base = dict(key="adas_beats_adam", statement="AdaS beats Adam (Table I: FID 104.6 vs 238.3 "
                "with ELU, about half)", verdict="untestable", evidence=EVIDENCE,
                rule="H1: ... past_t0: ...", data="study table1", family="table1", p=0.0007,
                p_adjusted=0.002, reason=REASON, scope="quick scale: phantom data (1024 images), "
                "32 px. Does not transfer to: 64 px",
                power="5 seeds per cell for power 0.8 at the declared smallest effect")
    base.update(kw)
    return Claim(**base)


def reader_text(md: str) -> str:
    """What a reader sees without opening a details block."""
    return re.sub(r"<details>.*?</details>", "", md, flags=re.S)


def max_depth(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        deepest = max(deepest, depth)
    return deepest


def test_untestable_sentence_says_observed_why_and_what_decides():
    s = claim_page.sentence(adas())
    assert s.startswith("Observed: adas-elu reached 0.40x adam-elu's FID, 117.0 against 290.6 "
                        "with 3 seeds each.")
    assert "Untestable here because a compared configuration stayed in T0" in s
    assert "adam-elu seed 2 stays in T0" in s  # the specifics stay
    assert "start of training: at this scale, 2000 iterations of batch 32, 32 px: at batch" in s
    assert s.count("ntestable") == 1  # the verdict said once
    assert s.endswith("as at the full scale with 5 seeds per configuration.")
    assert "past_t0" not in s and ".py" not in s and "docs/" not in s and max_depth(s) <= 1


def test_section_folds_the_rule_and_shows_each_claim_once():
    md = claim_page.claims_markdown([adas(), adas(key="other", statement="Other claim",
                                               verdict="holds", reason="p = 0.002 < 0.05")])
    seen = reader_text(md)
    assert md.count("<details><summary>") == 2 and "- Rule: H1" in md
    assert "past_t0" not in seen and "Registration" not in seen
    assert seen.count("### AdaS beats Adam: untestable") == 1
    # a p beside an untestable verdict would read as evidence: only the holding claim has one
    row = next(line for line in seen.splitlines() if line.startswith("| AdaS beats Adam"))
    assert row.endswith("| — |") and "| 0.002, table1 |" in seen
    assert "All decided at quick scale: phantom data (1024 images), 32 px." in seen
    assert "Decided at |" not in seen  # one scope: said once above the table


def test_holm_column_only_when_some_claim_has_a_p():
    md = claim_page.summary_table([adas(p=math.nan, p_adjusted=math.nan)])
    assert "Holm" not in md
    two = claim_page.summary_table([adas(), adas(scope="full scale: dicom data")])
    assert "| Decided at |" in two  # different scopes: a column


def test_flat_unnests_parentheses_and_drops_source_paths():
    assert claim_page.flat("a (b (c) d) e (see ablations/scale.py, docs/claims.md)") == "a (b, c d) e"
    assert claim_page.split_reason("data: no FID")[0] == "data"
    assert claim_page.split_reason("p = 0.01 < 0.05") == ("", "", "p = 0.01 < 0.05")


def test_a_local_data_path_is_named_by_short_name_and_fingerprint():
    src = "folder:/home/ada/private scans/train data"
    name = public_name(src)
    assert re.fullmatch(r"folder:train data #[0-9a-f]{8}", name)
    assert public_name("phantom:v2") == "phantom:v2"
    text = redact_paths(f"scale quick: {src} data (300 images); read from /home/ada/private "
                        "scans/train data", [src])
    assert "/home/ada" not in text and text.count(name.split(":")[1]) == 2
