"""What happened to a sweep trial, in one word: the ``status`` user attr of every trial.

Optuna's ``TrialState`` says whether a trial is waiting, running, complete, pruned or failed;
this says why a FAIL trial failed (diverged, error, interrupted, duplicate), which decides
whether it is retried. A FAIL trial with any other status (normally RUNNING) was killed: its
heartbeat went stale before it could write a status (xraygan.ablations.runner.outcome).
Run folders have their own statuses (xraygan.runs.RunStatus).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pandas as pd


class TrialStatus(StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    COMPLETED = "completed"
    DIVERGED = "diverged"
    PRUNED = "pruned"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    DUPLICATE = "duplicate"
    INVALID = "invalid"  # never stored: a reader's verdict on impossible attributes


FAILED_ON_PURPOSE = frozenset({TrialStatus.DIVERGED, TrialStatus.ERROR, TrialStatus.INTERRUPTED,
                               TrialStatus.DUPLICATE})
"""FAIL trials that wrote why they failed: not killed, so not retried as killed ones are."""


def completed(df: pd.DataFrame) -> pd.DataFrame:
    """Trials (rows of a trials frame) whose run finished and was scored."""
    return df[df["status"] == TrialStatus.COMPLETED]


# --------------------------------------------------------------------------- the typed record
class InvalidTrial(ValueError):
    """A trial whose stored attributes are impossible (a negative FID, an AUROC of 1.7, a FID
    stored as text, metrics that are not a mapping): it is excluded from every table and
    claim, and named with this message."""


_RANGES: tuple[tuple[re.Pattern[str], float, float, str], ...] = tuple(
    (re.compile(p), lo, hi, what) for p, lo, hi, what in (
        (r"^fid", 0.0, math.inf, "a FID >= 0"),
        (r"^util_auroc_", 0.0, 1.0, "an AUROC in [0, 1]"),
        (r"^util_gap_.*_se$", 0.0, math.inf, "a standard error >= 0"),
        (r"^util_gap_", -1.0, 1.0, "an AUROC gap in [-1, 1]"),
        (r"^util_(n_|steps$)", 0.0, math.inf, "a count >= 0"),
        (r"(_positive|_unlabelled)$", 0.0, 1.0, "a fraction in [0, 1]"),
        (r"^collapse_detected$", 0.0, 1.0, "a fraction in [0, 1]"),
        (r"^d_loss_(var|std)$", 0.0, math.inf, "a spread >= 0"),
        (r"^t0$", 0.0, math.inf, "a step >= 0"),
        (r"(_bytes|_s|^steps|^params_[gd])$", 0.0, math.inf, "a count >= 0"),
    ))
"""What a number of a trial may be, by its name (first match decides); a metric that matches
none is still required to be finite."""

NUMBER_ATTRS = ("peak_memory_bytes", "wall_time_s", "train_time_s", "eval_time_s",
                "images_per_s", "params_g", "params_d", "steps")
STRING_ATTRS = ("study", "scale", "cell", "status", "failure", "run_dir", "host", "objective")
MAPPING_ATTRS = ("cell_params", "config", "metrics", "memory", "machine", "fingerprint")
CONFIG_NUMBERS = ("model.image_size", "model.g_features", "model.d_features", "model.latent_dim",
                  "train.batch_size", "train.steps", "train.epochs", "train.seed", "data.num_images")
CONFIG_STRINGS = ("name", "model.g_activation", "model.d_activation", "model.batchnorm",
                  "optim.name", "data.source", "train.device")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_number(name: str, v: Any, where: str = "metric") -> float | None:
    """``v`` as a float if it is a possible value of ``name`` (None and NaN: not measured);
    InvalidTrial naming it and what was expected otherwise."""
    if v is None:
        return None
    rule = next(((lo, hi, what) for p, lo, hi, what in _RANGES if p.search(name)),
                (-math.inf, math.inf, "a finite number"))
    if isinstance(v, bool):
        v = float(v)
    if not _is_number(v):
        raise InvalidTrial(f"{where} {name} is {_shown(v)}, expected {rule[2]}")
    f = float(v)
    if math.isnan(f):
        return None
    if not math.isfinite(f) or not rule[0] <= f <= rule[1]:
        raise InvalidTrial(f"{where} {name} is {f:g}, expected {rule[2]}")
    return f


def _shown(v: Any) -> str:
    return f"a {type(v).__name__} ({repr(v)[:30]})"


def _typed(attrs: Any, what: str, strings: tuple[str, ...], mappings: tuple[str, ...]) -> None:
    """InvalidTrial unless ``attrs`` is a mapping whose present ``strings`` are text and
    ``mappings`` mappings."""
    if not isinstance(attrs, Mapping):
        raise InvalidTrial(f"{what}s are {_shown(attrs)}, expected a mapping")
    for kinds, kind, words in ((strings, str, "text"), (mappings, Mapping, "a mapping")):
        for k in kinds:
            if attrs.get(k) is not None and not isinstance(attrs[k], kind):
                raise InvalidTrial(f"{what} {k} is {_shown(attrs[k])}, expected {words}")


def _dotted(d: Mapping[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(d, Mapping):
            return None
        d = d.get(part)
    return d


@dataclass(frozen=True)
class TrialRecord:
    """A trial's user attributes (the contract in ablations/__init__.py) once validated: every
    field of its type, every number finite and in its range (:func:`check_number`). Built by
    :meth:`from_attrs`, which raises InvalidTrial with the first problem; readers never use a
    trial's attributes without it."""

    attrs: Mapping[str, Any]  # as stored, for the fields a reader passes through unchanged
    metrics: dict[str, float | str] = field(default_factory=dict)  # numbers None-free
    numbers: dict[str, float | None] = field(default_factory=dict)  # NUMBER_ATTRS
    memory: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_attrs(cls, attrs: Any) -> TrialRecord:
        _typed(attrs, "attribute", STRING_ATTRS, MAPPING_ATTRS)
        seed = attrs.get("seed")
        if seed is not None and not (isinstance(seed, int) and not isinstance(seed, bool)
                                     and 0 <= seed < 2**32):
            raise InvalidTrial(f"attribute seed is {_shown(seed)}, expected a whole number "
                               "from 0 to 2^32 - 1")
        if attrs.get("reference") is not None and not isinstance(attrs["reference"], bool):
            raise InvalidTrial(f"attribute reference is {_shown(attrs['reference'])}, "
                               "expected true or false")
        config = attrs.get("config") or {}
        for path in CONFIG_NUMBERS:
            v = _dotted(config, path)
            if v is not None and not (_is_number(v) and math.isfinite(v) and v >= 0):
                raise InvalidTrial(f"config {path} is {_shown(v)}, expected a number >= 0")
        for path in CONFIG_STRINGS:
            v = _dotted(config, path)
            if v is not None and not isinstance(v, str):
                raise InvalidTrial(f"config {path} is {_shown(v)}, expected text")
        metrics: dict[str, float | str] = {}
        for k, v in (attrs.get("metrics") or {}).items():
            if not isinstance(k, str):
                raise InvalidTrial(f"metric name {k!r} is not text")
            if isinstance(v, str) and not any(p.search(k) for p, *_ in _RANGES):
                metrics[k] = v  # text metrics: util_label, notes, samples_source
                continue
            f = check_number(k, v)
            metrics[k] = math.nan if f is None else f
        numbers = {k: check_number(k, attrs.get(k), "attribute") for k in NUMBER_ATTRS}
        memory = dict(attrs.get("memory") or {})
        for k, v in memory.items():
            if k.endswith("_bytes"):
                check_number(k, v, "memory")
        for k in ("device", "method"):
            if memory.get(k) is not None and not isinstance(memory[k], str):
                raise InvalidTrial(f"memory {k} is {_shown(memory[k])}, expected text")
        return cls(attrs, metrics, numbers, memory)


def duplicate_of(rows: list[Mapping[str, Any]]) -> dict[int, int]:
    """{index: index of the row it repeats} for completed rows (``status`` completed) whose
    (cell, seed) an earlier completed row already has: one run stored twice (a copied trial,
    a merged database) is one run, counted once, never two."""
    first: dict[tuple[Any, Any], int] = {}
    out: dict[int, int] = {}
    for i, r in enumerate(rows):
        if r.get("status") != TrialStatus.COMPLETED:
            continue
        key = (r.get("cell"), r.get("seed"))
        if key in first:
            out[i] = first[key]
        else:
            first[key] = i
    return out


STUDY_MAPPINGS = ("scale", "sweep_memory", "base_config")
STUDY_STRINGS = ("study", "data")


def check_study_attrs(attrs: Any) -> dict[str, Any]:
    """A study's user attributes, typed (scale, sweep_memory and base_config mappings, their
    numbers finite and >= 0, study and data text, seeds a count); InvalidTrial naming the
    attribute otherwise. The registration (claims_protocol) is parsed by
    xraygan.claims.protocol.registered_protocols."""
    _typed(attrs, "study attribute", STUDY_STRINGS, STUDY_MAPPINGS)
    seeds = attrs.get("seeds")
    if seeds is not None and not (isinstance(seeds, int) and not isinstance(seeds, bool)
                                  and seeds >= 0):
        raise InvalidTrial(f"study attribute seeds is {_shown(seeds)}, expected a count >= 0")
    scale = attrs.get("scale") or {}
    for k in ("image_size", "features", "steps", "epochs", "batch_size", "num_images",
              "fid_samples", "log_every", "sample_every", "checkpoint_every"):
        v = scale.get(k)
        if v is not None and not (_is_number(v) and math.isfinite(v) and v >= 0):
            raise InvalidTrial(f"study attribute scale.{k} is {_shown(v)}, expected a number >= 0")
    if scale.get("name") is not None and not isinstance(scale["name"], str):
        raise InvalidTrial(f"study attribute scale.name is {_shown(scale['name'])}, expected text")
    if scale.get("fid") is not None and not isinstance(scale["fid"], bool):
        raise InvalidTrial(f"study attribute scale.fid is {_shown(scale['fid'])}, "
                           "expected true or false")
    memory = attrs.get("sweep_memory") or {}
    for k, v in memory.items():
        if k.endswith(("_bytes", "_s")) or k in ("workers", "processes_at_peak"):
            if v is not None and not (_is_number(v) and math.isfinite(v) and v >= 0):
                raise InvalidTrial(f"study attribute sweep_memory.{k} is {_shown(v)}, "
                                   "expected a number >= 0")
    return dict(attrs)
