"""The claims section of a report page, written as a results section: a summary table, then per
claim one plain sentence (what was observed, the verdict and why, what would decide it) and the
rule, registration, scope and numbers in a collapsible block, rendered from what
xraygan.claims decided (the Claim dataclass's fields only)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from xraygan.claims.engine import Claim
from xraygan.claims.verdicts import FAILS, HOLDS, UNTESTABLE

from .tables import markdown

# A failed precondition's key (the rule's name for it) in words a reader follows, and what
# would let the claim be tested. Keys not listed fall back to the precondition's own text.
PRECONDITION_WORDS: dict[str, tuple[str, str]] = {
    "past_t0": ("a compared configuration stayed in T0 in most of its seeds: D's loss near 0, "
                "so G had not started learning and its FID measures the start of training",
                "longer runs in which every configuration leaves T0, as at the full scale"),
    "near_data": ("every configuration is still far from the training images, where the test "
                  "cannot show that nothing is copied",
                  "generators close to the data, trained longer"),
    "precision_floor": ("almost no generated image lies among the real ones, precision or "
                        "density below 0.1",
                        "generators whose images reach the real ones, trained longer"),
    "not_copying": ("a configuration hands back training images, so its scores describe the "
                    "training set", "generators that do not copy"),
    "low_frequencies": ("a generator has not yet learned the low frequencies, so missing high "
                        "ones cannot be told apart", "generators trained longer"),
    "configurations": ("too few configurations have the numbers it needs",
                       "a study with at least 3 configurations"),
    "data": ("the reported runs lack the numbers it needs",
             "a study that records them"),
}

_KEY = re.compile(r"^([a-z][a-z0-9]*(?:_[a-z0-9]+)*)(?= \(|:)")
_SOURCE = re.compile(r"\s*\((?:[\w./-]+\.(?:py|md)(?:,\s*)?)+\)|\s*[\w./-]+/[\w.-]+\.(?:py|md)")
_SEEDS = re.compile(r"(\d+) seeds per cell")


def claim_title(statement: str) -> str:
    """A claim's heading: its statement without the parenthesised source or a subclause
    ("AdaS beats Adam (Table I: ...)" -> "AdaS beats Adam")."""
    return statement.split(" (")[0].split(", so ")[0].split(": ")[0].rstrip(". ")


def flat(text: str) -> str:
    """``text`` for a reader: no source paths and no parentheses inside parentheses (an inner
    group becomes a clause set off by commas)."""
    text = _SOURCE.sub("", text)
    out, depth = [], 0
    for ch in text:
        if ch == "(":
            depth += 1
            out.append("(" if depth == 1 else ", ")
        elif ch == ")":
            if depth == 1:
                out.append(")")
            depth = max(depth - 1, 0)
        else:
            out.append(ch)
    s = "".join(out)
    s = re.sub(r"\s*\((?:see)?[\s,;]*\)", "", s)  # a group that held only source paths
    s = re.sub(r"\s+,", ",", s)
    s = re.sub(r",\s*,", ",", s)
    return re.sub(r"\s{2,}", " ", s).strip()


def _skip_group(text: str, i: int) -> int:
    """The index after the balanced parenthesised group starting at ``text[i] == "("``."""
    depth = 0
    for j in range(i, len(text)):
        depth += {"(": 1, ")": -1}.get(text[j], 0)
        if depth == 0:
            return j + 1
    return len(text)


def split_reason(reason: str) -> tuple[str, str, str]:
    """(precondition key or "", its own description, the specifics) of a verdict's reason
    ("past_t0 (each ... training): adam-elu seed 2 ..." -> key, description, specifics)."""
    m = _KEY.match(reason)
    if not m:
        return "", "", reason
    key, rest = m.group(1), reason[m.end():]
    desc = ""
    if rest.startswith(" ("):
        end = _skip_group(rest, 1)
        desc, rest = rest[2:end - 1], rest[end:]
    return key, desc, rest.lstrip(":; ").strip()


_PAIR = re.compile(r"FID (\S+) ([\d.]+) ± [\d.]+ \(n=(\d+)\) vs (\S+) ([\d.]+) ± [\d.]+ "
                   r"\(n=(\d+)\).*?\(ratio ([\d.]+)\)")


def observed(c: Claim) -> str:
    """What was observed here, from the claim's evidence (ours, not the paper's numbers); a
    two-configuration FID comparison as a ratio ("adas-elu reached 0.40x adam-elu's FID")."""
    ev = c.evidence.strip()
    m = _PAIR.search(ev)
    if m:
        a, ma, na, b, mb, nb, ratio = m.groups()
        seeds = f"{na} seeds each" if na == nb else f"{na} and {nb} seeds"
        return f"{a} reached {ratio}x {b}'s FID, {ma} against {mb} with {seeds}"
    ev = re.sub(r"^ours(?:, [^:]*)?:\s*", "", ev)
    ev = re.split(r"(?:\.|;) [Pp]aper'?s?\b", ev)[0]
    return flat(ev).rstrip(". ")


def seeds_needed(c: Claim) -> int | None:
    m = _SEEDS.search(c.power or "")
    return int(m.group(1)) if m else None


def sentence(c: Claim) -> str:
    """One plain paragraph: observed, verdict and why, what would decide it."""
    seen = observed(c)
    head = f"Observed: {seen}." if seen and seen != "no data" else "Nothing observed yet."
    key, desc, specifics = split_reason(c.reason)
    n = seeds_needed(c)
    seeds = f" with {n} seeds per configuration" if n else ""
    if c.verdict == UNTESTABLE:
        words, decide = PRECONDITION_WORDS.get(key, (flat(desc or specifics), "data that meet it"))
        detail = flat(specifics) if desc and specifics else ""
        # the verdict is already said: "untestable at this scale (X): Y" -> "at this scale, X: Y"
        detail = re.sub(r"^untestable (at this scale|here) \(([^()]*)\):?\s*", r"\1, \2: ", detail)
        detail = re.sub(r"^untestable\b[:,]?\s*", "", detail)
        why = f"{words}{': ' + detail if detail else ''}"
        tail = f"Untestable here because {why}. It would be decided by {decide}{seeds}."
    elif c.verdict == HOLDS:
        tail = f"Holds here: {flat(c.reason) or 'its test reached the level'}."
    elif c.verdict == FAILS:
        tail = f"Does not hold here: {flat(c.reason)}."
    else:
        more = (f"{n} seeds per configuration would decide it at the smallest effect the rule "
                "declares" if n else "more seeds would decide it")
        tail = f"Inconclusive here: {flat(c.reason)}; {more}."
    return f"{head} {tail}"


def _scope(c: Claim) -> str:
    return flat(c.scope.split(". Does not transfer")[0])


def summary_table(claims: Sequence[Claim], *, link: str = "") -> str:
    """The verdicts at a glance: claim, verdict, observed; the Holm-adjusted p only when a
    claim has one and "Decided at" only when the claims were decided at different places
    (otherwise it is said once above the table). ``link``: the page holding the claims."""
    holm = any(math.isfinite(c.p_adjusted) for c in claims)
    scopes = list(dict.fromkeys(_scope(c) for c in claims if c.scope and c.scope != "no data"))
    head = ["Claim", "Verdict", "Observed"]
    if holm:
        head.append("Holm-adjusted p, family")
    if len(scopes) > 1:
        head.append("Decided at")
    rows = []
    for c in claims:
        title = claim_title(c.statement)
        if link:
            title = f"[{title}]({link}#{anchor(c)})"
        row = [title, f"**{c.verdict}**", observed(c) or "—"]
        if holm:
            # a p beside an untestable verdict would read as evidence it does not carry
            row.append(f"{c.p_adjusted:.3g}, {c.family}" if math.isfinite(c.p_adjusted)
                       and c.verdict != UNTESTABLE else "—")
        if len(scopes) > 1:
            row.append(_scope(c) or "—")
        rows.append(row)
    lead = f"All decided at {scopes[0]}.\n\n" if len(scopes) == 1 else ""
    return lead + markdown(head, rows, ["l"] * len(head))


def anchor(c: Claim) -> str:
    """The markdown heading id of a claim's section (mkdocs' default slug)."""
    text = f"{claim_title(c.statement)}: {c.verdict}".lower()
    return re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", text)).strip("-")


def claim_block(c: Claim) -> str:
    """One claim: heading, the plain sentence, and the rule and numbers folded away."""
    if math.isfinite(c.p_adjusted) and c.verdict != UNTESTABLE:
        p = f"p = {c.p:.3g}, Holm-adjusted {c.p_adjusted:.3g} within family {c.family!r}"
    else:
        p = f"family {c.family!r}; no p-value is reported for this verdict"
    items = [("Claim (paper)", c.statement), ("Evidence", flat(c.evidence)),
             ("Verdict", f"{c.verdict}: {flat(c.reason)}; {p}"), ("Scope", flat(c.scope)),
             ("Rule", c.rule), ("Registration", c.registration), ("Data", flat(c.data))]
    if c.power:
        items.append(("Seeds needed, a priori", flat(c.power)))
    if c.details:
        items.append(("Details", flat(c.details)))
    body = "".join(f"- {k}: {v}\n" for k, v in items if v)
    return (f"\n### {claim_title(c.statement)}: {c.verdict}\n\n{sentence(c)}\n\n"
            f"<details><summary>Rule, registration and numbers</summary>\n\n{body}\n</details>\n")


def claims_markdown(claims: Sequence[Claim]) -> str:
    """A summary table and, per claim, its sentence and folded-away rule and numbers."""
    return summary_table(claims) + "".join(claim_block(c) for c in claims)
