"""The fid-check table: a sweep's reduced FID beside FID at 2,048 samples on the same runs
(rows from xraygan.ablations.rescore.check), and the AdaS-vs-Adam effect under each metric."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from xraygan.claims.stats import effect, fmt, fmt_effect

PAIR = ("adas-elu", "adam-elu")


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The per-trial table and the AdaS-vs-Adam effect under each metric."""
    if not rows:
        return "No completed trials to re-score.\n"
    ns, nl = rows[0]["n_small"], rows[0]["n_large"]
    head = (f"| cell | seed | FID@{ns} | FID_inf from {ns} | KID@{ns} | FID@{nl} | "
            f"FID_inf from {nl} | KID@{nl} |\n|---|---|---|---|---|---|---|---|\n")
    body = "".join(
        f"| {r['cell']} | {r['seed']} | {fmt(r['fid_small'], 1)} | "
        f"{fmt(r['fid_infinity_small'], 1)} | {fmt(r['kid_small'], 4)} | "
        f"{fmt(r['fid_large'], 1)} | {fmt(r['fid_infinity_large'], 1)} | "
        f"{fmt(r['kid_large'], 4)} |\n" for r in rows)
    out = [head + body]
    for col, label in (("fid_small", f"FID@{ns}"), ("fid_infinity_small", f"FID_inf({ns})"),
                       ("kid_small", f"KID@{ns}"), ("fid_large", f"FID@{nl}")):
        vals = [[_num(r[col]) for r in rows if r["cell"] == c] for c in PAIR]
        if all(vals):
            out.append(f"- {label}: {fmt_effect(effect(*vals), 3 if 'kid' in col else 1, ('AdaS', 'Adam'))}\n")
    return "".join(out)


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan
