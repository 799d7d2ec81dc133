"""The verdict vocabulary, defined once: what a claim's rule may conclude.

    holds           the registered test rejects "no effect in the claimed direction" at the
                    family's Holm-adjusted level
    does not hold   evidence against the claim: an equivalence test (TOST) within the declared
                    margin, or a significant effect in the opposite direction; never the mere
                    absence of significance
    inconclusive    neither: the data cannot tell at this sample size
    untestable      a precondition of the test failed (named in the verdict): the data cannot
                    speak to the claim at all (e.g. generators that never left T0)
"""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    HOLDS = "holds"
    FAILS = "does not hold"
    INCONCLUSIVE = "inconclusive"
    UNTESTABLE = "untestable"


HOLDS, FAILS, INCONCLUSIVE, UNTESTABLE = Verdict.HOLDS, Verdict.FAILS, Verdict.INCONCLUSIVE, Verdict.UNTESTABLE
