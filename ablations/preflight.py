"""Everything a sweep needs, checked before its first expensive step.

A sweep's expensive steps are the FID reference statistics (minutes of Inception features on a
CPU) and the trials. A mistake that only shows after them (a real dataset with no held-out part
for the memorization test, a split that leaves one side empty, a dataset too small for the
batch, missing Inception weights, a model that does not fit in memory) costs those minutes and
then stops the sweep. :func:`preflight` loads each distinct dataset of the sweep once (cheap next
to the features: phantoms are generated in a second, folders read, DICOM decoded once into their
cache, which the trials then reuse) and raises a one-line :class:`ConfigError` or
:class:`DataError` naming the flag to change.

It also tells the start estimate which reference statistics are cached for the data at hand:
the cache file is keyed by the dataset's fingerprint and size, so the exact file can be checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xraygan.data import load_dataset
from xraygan.data.holdout import heldout_set
from xraygan.errors import ConfigError, DataError
from xraygan.guard import check_training
from xraygan.metrics import RunContext
from xraygan.metrics.features import stats_path

from .runner import sweep_configs
from .spec import STUDIES

HELDOUT_FLAG = "--holdout"


@dataclass(frozen=True)
class ReferenceSet:
    """One real image set whose Inception statistics every FID trial reads."""

    name: str  # "training" | "held-out"
    fingerprint: str
    n: int

    @property
    def cached(self) -> bool:
        return stats_path(self.fingerprint, self.n).is_file()


@dataclass(frozen=True)
class Preflight:
    """What the checks found: the reference sets of the sweep's data (empty without FID)."""

    references: tuple[ReferenceSet, ...] = ()
    datasets: tuple[str, ...] = ()  # one line per distinct dataset: what the trials train on

    @property
    def uncached_images(self) -> int:
        return sum(r.n for r in self.references if not r.cached)

    @property
    def reference_images(self) -> int:
        return sum(r.n for r in self.references)


def heldout_samples() -> int:
    """The memorization test's cap on held-out images (RunContext's default)."""
    return RunContext.__dataclass_fields__["heldout_samples"].default


def data_key(cfg: Any) -> tuple:
    d = cfg.data
    return (d.source, d.num_images, d.seed, d.holdout, cfg.model.image_size, cfg.model.channels)


def check_holdout(cfg: Any, fid: bool) -> None:
    """Real data in a FID sweep needs a held-out part (the memorization test runs with FID)."""
    kind = cfg.data.source.split(":")[0]
    if fid and kind != "phantom" and cfg.data.holdout <= 0:
        raise ConfigError(
            f"{HELDOUT_FLAG} is 0 for --data {cfg.data.source}: every FID trial also runs the "
            f"memorization test, which needs real images kept out of training; give "
            f"{HELDOUT_FLAG} F with 0 < F <= 0.5 (default 0.1), or --no-fid")


def check_dataset(cfg: Any, fid: bool) -> tuple[list[ReferenceSet], str]:
    """Load the training side (and the held-out side with FID); raise on what would fail later."""
    size, ch = cfg.model.image_size, cfg.model.channels
    train = load_dataset(cfg.data, size, ch)
    n = len(train.images)
    if n < 1:
        raise DataError(f"--data {cfg.data.source}: no training images")
    if cfg.train.batch_size > n and cfg.train.steps == 0:
        raise ConfigError(f"--batch-size {cfg.train.batch_size} is larger than the {n} training "
                          f"images of --data {cfg.data.source}: an epoch would hold no batch; "
                          "give a smaller --batch-size or --steps")
    line = f"{cfg.data.source} at {size}x{size}: {train.description}"
    if not fid:
        return [], line
    refs = [ReferenceSet("training", train.fingerprint, n)]
    held = heldout_set(cfg.data, size, ch, heldout_samples())
    if len(held.images) < 2:
        raise ConfigError(f"{HELDOUT_FLAG} {cfg.data.holdout:g} of --data {cfg.data.source} "
                          f"holds out {len(held.images)} image(s); the memorization test needs "
                          f"at least 2: give a larger {HELDOUT_FLAG}")
    refs.append(ReferenceSet("held-out", held.fingerprint, len(held.images)))
    return refs, line


def check_utility_labels(cfg: Any) -> None:
    """A study scored by the utility test: its labels checked now, as ``xraygan metrics
    --utility`` checks them (xraygan.data.labels.utility_labels), not after the GANs train."""
    from xraygan.data.labels import utility_labels
    from xraygan.metrics.utility import UtilitySettings

    utility_labels(cfg.data, cfg.model.image_size, UtilitySettings().label, heldout_samples())


def preflight(opts: Any) -> Preflight:
    """Check a sweep (ablations.runner.SweepOptions) before any expensive work; raise
    ConfigError / DataError (one line, naming the flag) on the first problem."""
    scale = opts.ctx.scale
    utility = "utility" in STUDIES.get(opts.study).metrics
    configs = [cfg for _, cfg in sweep_configs(opts)]
    seen: dict[tuple, None] = {}
    refs: list[ReferenceSet] = []
    lines: list[str] = []
    for cfg in configs:
        check_holdout(cfg, scale.fid)
    for cfg in configs:
        check_training(cfg)  # memory: before any data is read
    for cfg in configs:
        key = data_key(cfg)
        if key in seen:
            continue
        seen[key] = None
        got, line = check_dataset(cfg, scale.fid)
        if utility:
            check_utility_labels(cfg)
        refs += [r for r in got if r not in refs]
        lines.append(line)
    if scale.fid:
        from xraygan.metrics.weights import ensure_weights

        ensure_weights()  # provisioned now (or a clear error), not after the first trial trains
    return Preflight(tuple(refs), tuple(lines))
