"""Registration binds the rule: a claim's protocol data (its sha256) and the source of the
code that decides it (engine.decision_sha256: the claim function and every function of
xraygan.claims it calls) are pinned per version in golden/claims_versions.json. Changing
either without bumping the claim's version fails here; after a deliberate bump, rewrite the
file with XRAYGAN_UPDATE_GOLDEN=1 and give the reason in docs/claims.md."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from xraygan.claims.engine import CLAIMS

GOLDEN = Path(__file__).parent / "golden" / "claims_versions.json"


def current() -> dict[str, dict[str, object]]:
    return {k: {"version": s.protocol.version, "protocol_sha256": s.protocol.sha256(),
                "source_sha256": s.source_sha256} for k, s in CLAIMS.items()}


def test_a_rule_changes_only_with_its_version():
    now = current()
    if os.environ.get("XRAYGAN_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    pinned = json.loads(GOLDEN.read_text())
    assert set(pinned) == set(now), "claims added or removed: rewrite the golden file"
    for key, got in now.items():
        was = pinned[key]
        if got["version"] == was["version"]:
            for part in ("protocol_sha256", "source_sha256"):
                assert got[part] == was[part], (
                    f"{key}: its {part.split('_')[0]} changed but its version is still "
                    f"{got['version']}: bump the version (and say why in docs/claims.md)")
        else:
            assert got["version"] > was["version"], f"{key}: version went down"
            pytest.fail(f"{key}: version bumped to {got['version']}: record it with "
                        "XRAYGAN_UPDATE_GOLDEN=1")


def test_the_decision_hash_follows_the_functions_a_claim_calls():
    from xraygan.claims import decide, engine, table1

    h = engine.decision_sha256(CLAIMS["adas_beats_adam"].evaluate)
    assert h == CLAIMS["adas_beats_adam"].source_sha256 and len(h) == 64
    # past_t0_mask (module function) and decide.welch (through the module) are in it
    seen_names = engine._code_names(table1.adas_beats_adam.__wrapped__.__code__)
    assert {"usable", "welch"} <= seen_names and decide.welch.__module__ == decide.__name__
