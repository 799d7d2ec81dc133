"""The claims a study registers before its first trial: the claims its StudySpec declares
plus those whose protocol names the study (xraygan.claims.engine.claims_for_study)."""

from __future__ import annotations

from xraygan.claims.engine import CLAIMS, claims_for_study
from xraygan.claims.protocol import ClaimProtocol

from . import STUDIES, load_studies


def study_protocols(kind: str) -> list[ClaimProtocol]:
    """The protocols ``xraygan sweep`` registers for a study of ``kind``."""
    load_studies()
    declared = STUDIES.get(kind).claims if kind in STUDIES else ()
    return [CLAIMS[k].protocol for k in claims_for_study(kind, declared)]
