"""The claims section of a report page: a summary table and, per claim, its verdict, evidence,
rule, registration and scope, rendered from what xraygan.claims decided."""

from __future__ import annotations

import math
from collections.abc import Sequence

from xraygan.claims.engine import Claim

from .tables import markdown


def claim_title(statement: str) -> str:
    """A claim's heading: its statement without the parenthesised source or a subclause
    ("AdaS beats Adam (Table I: ...)" -> "AdaS beats Adam")."""
    return statement.split(" (")[0].split(", so ")[0].split(": ")[0].rstrip(". ")


def claims_markdown(claims: Sequence[Claim]) -> str:
    """A summary table (claim, verdict, family-adjusted p, scope) and, per claim, its
    evidence, reason, rule, registration, scope and data."""
    rows = [[c.statement, f"**{c.verdict}**",
             f"{c.p_adjusted:.3g} ({c.family})" if math.isfinite(c.p_adjusted) else f"— ({c.family})",
             c.scope.split(". Does not transfer")[0]] for c in claims]
    out = [markdown(["Claim (paper)", "Verdict", "Holm-adjusted p (family)", "Decided at"],
                    rows, ["l", "l", "l", "l"])]
    for c in claims:
        p = (f"p = {c.p:.3g}, Holm-adjusted {c.p_adjusted:.3g} within family {c.family!r}"
             if math.isfinite(c.p_adjusted) else f"family {c.family!r}, no p-value")
        out.append(f"\n### {claim_title(c.statement)}: {c.verdict}\n\n- Claim: {c.statement}\n- Verdict: "
                   f"**{c.verdict}** ({c.reason}); {p}\n- Evidence: {c.evidence}\n"
                   f"- Scope: {c.scope}\n- Rule: {c.rule}\n- Registration: {c.registration}\n"
                   f"- Data: {c.data}\n")
        if c.power:
            out.append(f"- Seeds needed (a priori): {c.power}\n")
        if c.details:
            out.append(f"- Details: {c.details}\n")
    return "".join(out)
