"""Fuzz config files: hypothesis builds config objects field by field (right
and wrong types, out-of-range and non-finite numbers, unknown keys, nesting of the wrong
shape), writes them as JSON, TOML or YAML, and reads them with the one strict reader.

Contract: ``read_config_file`` + ``validate`` either accept (and then every field satisfies its
metadata and the JSON round trip is exact) or raise ConfigError; nothing else escapes. A few
accepted configs also go through ``xraygan train --config FILE --dry-run`` (exit 0 or 2, no
traceback, bounded RSS, the guarded run untouched).
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing

import pytest
from fuzz_helpers import FUZZ, run_main
from hypothesis import given
from hypothesis import strategies as st

from xraygan.config import (
    SECTIONS,
    ExperimentConfig,
    check_section,
    param_of,
    read_config_file,
    validate,
)
from xraygan.errors import ConfigError

ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)


def value_for(hint, p) -> st.SearchStrategy:
    """Plausible values of a field (small, so an accepted config builds a tiny model) mixed
    with hostile ones of every JSON type."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = hint if not args or typing.get_origin(hint) is tuple else args[0]
    hostile = st.one_of(ANY_JSON, st.sampled_from([math.nan, math.inf, -1, 0, 2**64, 10**30, "", []]))
    if typing.get_origin(hint) is tuple:
        good = st.lists(st.integers(1, 4), max_size=4)
    elif base is bool:
        good = st.booleans()
    elif base is int:
        lo = int(p.min) if p.min is not None else 0
        good = st.integers(lo, lo + 8)
        if p.pow2:
            good = st.sampled_from([16, 32])
    elif base is float:
        lo = p.min if p.min is not None else (p.gt or 0) + 1e-6
        hi = min(p.max if p.max is not None else 1.0, p.lt - 1e-6 if p.lt is not None else 1.0, lo + 1.0)
        good = st.floats(lo, max(lo, hi))
    else:
        names = p.choice_names()
        good = st.sampled_from(names) if names else st.sampled_from(["phantom", "cpu", "x"])
    return st.one_of(good, good, hostile)


@st.composite
def config_dicts(draw):
    data: dict = {}
    for section, cls in SECTIONS:
        if draw(st.booleans()):
            continue
        hints = typing.get_type_hints(cls)
        body = {}
        for f in dataclasses.fields(cls):
            if draw(st.integers(0, 3)) == 0:
                body[f.name] = draw(value_for(hints[f.name], param_of(f)), label=f"{section}.{f.name}")
        if draw(st.integers(0, 9)) == 0:
            body[draw(st.text(min_size=1, max_size=8))] = 1  # an unknown key
        data[section] = body if draw(st.integers(0, 19)) else draw(ANY_JSON)
    if draw(st.booleans()):
        data["name"] = draw(st.one_of(st.text(max_size=12), ANY_JSON))
    return data


def _write(path, data, fmt) -> bool:
    """Write ``data`` as ``fmt``; False when the format cannot hold it (TOML has no null)."""
    if fmt == "json":
        path.write_text(json.dumps(data, allow_nan=True))
    elif fmt == "yaml":
        import yaml

        path.write_text(yaml.safe_dump(data))
    else:
        toml = _to_toml(data)
        if toml is None:
            return False
        path.write_text(toml)
    return True


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v) if -(2**63) <= v < 2**63 else None
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        items = [_toml_value(x) for x in v]
        return None if any(i is None for i in items) or any(isinstance(x, (list, dict)) for x in v) else "[" + ", ".join(items) + "]"
    return None


def _to_toml(data):
    lines, tables = [], []
    for k, v in data.items():
        if isinstance(v, dict):
            tables.append((k, v))
            continue
        tv = _toml_value(v)
        if tv is None:
            return None
        lines.append(f"{json.dumps(k)} = {tv}")
    for name, body in tables:
        lines.append(f"[{json.dumps(name)}]")
        for k, v in body.items():
            tv = _toml_value(v)
            if tv is None:
                return None
            lines.append(f"{json.dumps(k)} = {tv}")
    return "\n".join(lines) + "\n"


def _accepted_or_config_error(path):
    try:
        cfg = read_config_file(path)
        validate(cfg)
    except ConfigError as e:
        assert "\n" not in str(e).strip() or len(str(e)) < 2000
        return None
    for section, _ in SECTIONS:
        check_section(getattr(cfg, section), section)  # accepted means every field in range
    assert ExperimentConfig.from_json(cfg.to_json()) == cfg
    return cfg


@pytest.mark.parametrize("fmt", ["json", "toml", "yaml"])
@FUZZ
@given(data=config_dicts())
def test_fuzz_config_files(tmp_path, fmt, data):
    path = tmp_path / f"cfg.{fmt}"
    if not _write(path, data, fmt):
        return
    _accepted_or_config_error(path)


@FUZZ
@given(data=config_dicts(), fmt=st.sampled_from(["json", "toml", "yaml"]))
def test_fuzz_config_through_train_dry_run(tmp_path, monkeypatch, data, fmt):
    monkeypatch.chdir(tmp_path)
    # keep accepted configs tiny: the dry run builds the models
    model = data.get("model")
    if isinstance(model, dict):
        for k in ("g_features", "d_features", "latent_dim"):
            if isinstance(model.get(k), int) and not isinstance(model.get(k), bool) and 0 < model[k] <= 4096:
                model[k] = min(model[k], 16)
        if model.get("image_size") not in (None, 16, 32) and isinstance(model.get("image_size"), int) \
                and not isinstance(model.get("image_size"), bool) and model["image_size"] <= 4096:
            model["image_size"] = 16
    path = tmp_path / f"cfg.{fmt}"
    if not _write(path, data, fmt):
        return
    code, _, err = run_main(["train", "--config", str(path), "--dry-run", "--steps", "1"])
    assert code in (0, 2)
    if code == 2:
        assert err.count("\n") == 1, err  # one line
