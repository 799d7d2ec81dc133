"""A claim's protocol as data, fixed before the data: hypothesis and direction, primary metric,
compared cells, test, family, alpha, smallest effect of interest, equivalence margin,
preconditions and a version.

``xraygan sweep`` stores :func:`registration` of the claims a study bears on (canonical JSON
and its sha256) in the Optuna study's user attrs before the first trial; ``xraygan report``
decides with the registered protocol (gan_core/claims/engine.py). Change a rule's numbers or logic and
its ``version`` must change too: the hash then differs and the report shows both.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

REGISTRATION_ATTR = "claims_protocol"  # the study user attr holding the registration

DIRECTIONS = ("less", "greater", "none")
"""``less``: the claim says the first compared cell (or the statistic) is lower; ``greater``:
higher; ``none``: a rule on measurements without a direction (memory, blockiness)."""


@dataclass(frozen=True)
class Precondition:
    """Something the data must show before the test can speak to the claim; when it fails
    the verdict is "untestable" and names ``key`` and ``text``."""

    key: str  # e.g. "past_t0", "precision_floor"
    text: str  # the condition in words, with its numbers
    threshold: float = math.nan  # the number the condition compares against (NaN: none)


@dataclass(frozen=True, eq=False)
class ClaimProtocol:
    key: str  # registry name, also the report's anchor
    version: int  # bump on any change of numbers or logic
    statement: str  # the paper's claim in our words
    hypothesis: str  # H1 of the test, in words
    direction: str  # one of DIRECTIONS
    metric: str  # the primary metric (a trials-frame column) and its scale
    cells: tuple[str, ...]  # compared cells ("*": every configuration of the study)
    test: str  # the test, in words (gan_core/claims/decide.py implements it)
    family: str  # Holm's family-wise error control runs within a family
    alpha: float = 0.05
    sesoi: float = math.nan  # smallest effect size of interest (in the metric's test units)
    margin: float = math.nan  # equivalence margin: "does not hold" needs the effect inside it
    power: float = 0.8  # the power seeds are planned for, at ``sesoi``
    # "holds": the effect shown beyond holds_at in the claimed direction (H1 "by at least the
    # margin": the margin); "does not hold": shown on the other side of fails_at (an effect
    # inside the margin, or opposite). Signed, in the test's units (gan_core/claims/decide.py).
    holds_at: float = 0.0
    fails_at: float = 0.0
    preconditions: tuple[Precondition, ...] = ()
    studies: tuple[str, ...] = ()  # study kinds whose pages show the claim
    transfer: str = ""  # what a verdict does not transfer to, beyond the study's own scope
    params: tuple[tuple[str, float], ...] = field(default_factory=tuple)  # other fixed numbers

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"claim {self.key}: direction {self.direction!r}; expected one of "
                             f"{', '.join(DIRECTIONS)}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"claim {self.key}: alpha {self.alpha} outside (0, 1)")

    def __eq__(self, other: object) -> bool:
        # by canonical JSON: NaN fields (no margin) compare equal, as they hash equal
        return isinstance(other, ClaimProtocol) and self.sha256() == other.sha256()

    def __hash__(self) -> int:
        return hash(self.sha256())

    def param(self, name: str) -> float:
        for k, v in self.params:
            if k == name:
                return v
        raise KeyError(f"claim {self.key}: no parameter {name!r}")

    def precondition(self, key: str) -> Precondition:
        for p in self.preconditions:
            if p.key == key:
                return p
        raise KeyError(f"claim {self.key}: no precondition {key!r}")

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ClaimProtocol:
        """The protocol stored as ``d`` (:meth:`to_dict`), parsed against the schema: every
        required field present and of its type, numbers as numbers (NaN as "nan"); fields a
        newer version added take their defaults. ValueError naming the claim and the field
        otherwise (a registration edited by hand, or written by other code)."""
        if not isinstance(d, Mapping):
            raise ValueError(f"a protocol is a {type(d).__name__}, expected a mapping")
        key = d.get("key")
        name = key if isinstance(key, str) else "?"
        missing = [f for f in _REQUIRED if f not in d]
        if missing:
            raise ValueError(f"claim {name}: protocol lacks {', '.join(missing)}")
        out: dict[str, Any] = {}
        for f in _TEXT_FIELDS:
            if f in d:
                out[f] = _text(name, f, d[f])
        version = d["version"]
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValueError(f"claim {name}: version is {version!r}, expected a whole number >= 1")
        out["version"] = version
        for f in ("cells", "studies"):
            if f in d:
                out[f] = tuple(_text(name, f, v) for v in _items(name, f, d[f]))
        for f in ("alpha", "sesoi", "margin", "power", "holds_at", "fails_at"):
            if f in d:
                out[f] = _number(name, f, d[f])
        pre = []
        for i, p in enumerate(_items(name, "preconditions", d.get("preconditions", ()))):
            if not isinstance(p, Mapping) or not {"key", "text"} <= set(p):
                raise ValueError(f"claim {name}: precondition {i + 1} is {_short(p)}, expected "
                                 "a mapping with key and text")
            pre.append(Precondition(_text(name, "precondition key", p["key"]),
                                    _text(name, "precondition text", p["text"]),
                                    _number(name, "precondition threshold",
                                            p.get("threshold", math.nan))))
        out["preconditions"] = tuple(pre)
        params = []
        for p in _items(name, "params", d.get("params", ())):
            if not isinstance(p, (list, tuple)) or len(p) != 2:
                raise ValueError(f"claim {name}: parameter {_short(p)}, expected a [name, number] "
                                 "pair")
            params.append((_text(name, "parameter name", p[0]), _number(name, str(p[0]), p[1])))
        out["params"] = tuple(params)
        return cls(**out)

    def sha256(self) -> str:
        return hashlib.sha256(canonical_json(self.to_dict()).encode()).hexdigest()

    def rule_text(self) -> str:
        """The whole protocol in one paragraph (what `xraygan claims list` and reports print)."""
        pre = "; ".join(f"{p.key}: {p.text}" for p in self.preconditions) or "none"
        eff = (f"smallest effect of interest {self.sesoi:g}, equivalence margin {self.margin:g} "
               f"({self.metric})" if math.isfinite(self.sesoi) else f"metric: {self.metric}")
        bounds = (f" Holds when the effect is shown beyond {self.holds_at:g}; does not hold when "
                  f"it is shown on the other side of {self.fails_at:g}."
                  if math.isfinite(self.sesoi) else "")
        return (f"H1: {self.hypothesis} Test: {self.test}{bounds} Family {self.family!r}, alpha "
                f"{self.alpha:g} (Holm within the family); {eff}. Cells: "
                f"{', '.join(self.cells) or '—'}. Preconditions (else untestable): {pre}. "
                f"Version {self.version}.")


_REQUIRED = ("key", "version", "statement", "hypothesis", "direction", "metric", "cells",
             "test", "family")
_TEXT_FIELDS = ("key", "statement", "hypothesis", "direction", "metric", "test", "family",
                "transfer")


def _short(v: Any) -> str:
    return f"{type(v).__name__} {repr(v)[:30]}"


def _text(claim: str, name: str, v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"claim {claim}: {name} is a {_short(v)}, expected text")
    return v


def _items(claim: str, name: str, v: Any) -> list[Any]:
    if not isinstance(v, (list, tuple)):
        raise ValueError(f"claim {claim}: {name} is a {_short(v)}, expected a list")
    return list(v)


def _number(claim: str, name: str, v: Any) -> float:
    """A number of the protocol, kept as stored (2 stays 2: its canonical JSON, so its hash,
    is the registered one)."""
    v = _unjson(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"claim {claim}: {name} is a {_short(v)}, expected a number")
    return v


def _jsonable(obj: Any) -> Any:
    """NaN/inf as strings (canonical JSON has no NaN), tuples as lists."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def _unjson(v: Any) -> Any:
    if isinstance(v, str) and v in ("nan", "inf", "-inf"):
        return float(v)
    return v


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, ASCII: the same protocol always gives the same bytes."""
    return json.dumps(_jsonable(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


REGISTERED_AT = "registered_at"  # the registration's key holding its UTC time (ISO 8601)


def registration(protocols: Iterable[ClaimProtocol], at: str = "",
                 sources: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What a sweep stores before its first trial: every protocol, the canonical JSON of the
    set and its sha256 (each protocol's own hash too, to tell which one changed), the sha256
    of each claim's decision source (``sources``) and the time it was written (``at``, ISO
    8601 UTC: the report checks it against the first trial's start)."""
    items = {p.key: p.to_dict() for p in protocols}
    text = canonical_json(items)
    out: dict[str, Any] = {
        "claims": items, "json_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "hashes": {k: ClaimProtocol.from_dict(v).sha256() for k, v in items.items()}}
    if sources:
        out["source_sha256"] = {k: v for k, v in sources.items() if k in items}
    if at:
        out[REGISTERED_AT] = at
    return out


def registered_protocols(attrs: Mapping[str, Any] | None) -> dict[str, ClaimProtocol] | None:
    """The protocols a study registered (None when it registered none: a study made before
    registration existed); a registration this code cannot read raises ValueError."""
    reg = (attrs or {}).get(REGISTRATION_ATTR)
    if reg is None:
        return None
    if not isinstance(reg, Mapping):
        raise ValueError(f"study attr {REGISTRATION_ATTR!r} is a {type(reg).__name__}, expected "
                         "a mapping (registration unreadable)")
    claims = reg.get("claims")
    if not isinstance(claims, Mapping):
        raise ValueError(f"study attr {REGISTRATION_ATTR!r} has no 'claims' mapping")
    text = canonical_json(claims)
    if hashlib.sha256(text.encode()).hexdigest() != reg.get("json_sha256"):
        raise ValueError(f"study attr {REGISTRATION_ATTR!r}: the stored protocols do not match "
                         "their sha256 (edited after registration)")
    try:
        return {k: ClaimProtocol.from_dict(v) for k, v in claims.items()}
    except (ValueError, TypeError) as e:
        raise ValueError(f"study attr {REGISTRATION_ATTR!r} unreadable: {e}") from None
