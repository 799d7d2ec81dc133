"""Checkpoints: everything needed to continue a run bit for bit, loadable without pickle code.

A checkpoint holds G, D (parameters and buffers), both optimizers, the AMP grad scaler, the
step, the resolved config as a plain dict, and one RNG state: the training loop's noise
generator (``rng.noise``), the only random stream the loop draws from. Nothing else needs
saving for a bit-identical resume: the batch of step s is a pure function of (seed, epoch)
(xraygan.train.batch_indices), the fixed sample noise has its own seed, and torch's global
RNG is used only for the weight init, before step 0, which a resume overwrites. So
``torch.load(..., weights_only=True)`` reads it: opening a checkpoint from someone else never
executes code.

A file that loads but is not a complete checkpoint (keys missing, of the wrong type, a config
that does not parse) is rejected here, naming the file and what is wrong, instead of surfacing
later as ``KeyError: 'config'``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from . import runs
from .config import ExperimentConfig, flatten, validate
from .errors import CheckpointError, ConfigError, RunFolderError
from .guard import first_nonfinite
from .models import build_models
from .runs import atomic_torch_save

FORMAT = 1

REQUIRED: dict[str, type | tuple[type, ...]] = {
    "step": int,
    "config": dict,
    "G": dict,
    "D": dict,
    "opt_g": dict,
    "opt_d": dict,
    "rng": dict,
}
"""Top-level keys every checkpoint of this format has, with their types (``scaler`` is
optional: checkpoints written before AMP support have none)."""


class InvalidCheckpoint(CheckpointError, RunFolderError):
    """A checkpoint file that cannot be used; both a bad file and a broken run folder."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    atomic_torch_save(path, {"format": FORMAT, **payload})


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint at ``path``, checked to hold every key of :data:`REQUIRED`."""
    path = Path(path)
    if not path.is_file():
        raise InvalidCheckpoint(f"{path}: no checkpoint; the run has not saved one yet")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # a truncated or foreign file: say which and why
        reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise InvalidCheckpoint(
            f"{path}: cannot read the checkpoint ({type(e).__name__}{': ' + reason if reason else ''})"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        got = f"format {ckpt.get('format')!r}" if isinstance(ckpt, dict) else type(ckpt).__name__
        raise InvalidCheckpoint(f"{path}: not an xraygan checkpoint of format {FORMAT} (got {got})")
    check_payload(ckpt, path)
    return ckpt


def check_payload(ckpt: dict[str, Any], path: str | Path) -> None:
    """Raise InvalidCheckpoint naming ``path`` and every missing or mistyped key."""
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise InvalidCheckpoint(f"{path}: incomplete checkpoint, missing key(s) {', '.join(missing)}")
    wrong = [f"{k} ({type(ckpt[k]).__name__}, expected {t.__name__})"  # type: ignore[union-attr]
             for k, t in REQUIRED.items()
             if not isinstance(ckpt[k], t) or (t is int and isinstance(ckpt[k], bool))]
    if not wrong and ckpt["step"] < 0:
        wrong.append(f"step ({ckpt['step']}, expected >= 0)")
    for net in ("G", "D"):
        if not wrong and not all(isinstance(v, torch.Tensor) for v in ckpt[net].values()):
            wrong.append(f"{net} (not a state dict of tensors)")
    for opt in ("opt_g", "opt_d"):
        if not wrong and not {"state", "param_groups"} <= set(ckpt[opt]):
            wrong.append(f"{opt} (not an optimizer state dict)")
    if not wrong and not isinstance(ckpt["rng"].get("noise"), torch.Tensor):
        wrong.append("rng.noise (missing: the noise generator's state)")
    if wrong:
        raise InvalidCheckpoint(f"{path}: invalid checkpoint, wrong key(s) {'; '.join(wrong)}")
    try:
        cfg = ExperimentConfig.from_dict(ckpt["config"])
        validate(cfg)
    except (ConfigError, TypeError, ValueError) as e:
        raise InvalidCheckpoint(f"{path}: the checkpoint's config is invalid ({e})") from None
    check_tensors(ckpt, cfg, path)


def check_tensors(ckpt: dict[str, Any], cfg: Any, path: str | Path) -> None:
    """G's and D's tensors have exactly the names and shapes ``cfg.model`` builds (compared
    with networks built on the meta device: no memory), and are finite. A checkpoint edited,
    swapped or written by a diverged run is refused here, not loaded into black samples."""
    try:
        with torch.device("meta"):
            nets = dict(zip(("G", "D"), build_models(cfg.model), strict=True))
    except (ConfigError, ValueError) as e:
        raise InvalidCheckpoint(f"{path}: the checkpoint's model cannot be built ({e})") from None
    for name, net in nets.items():
        want = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        got = {k: tuple(v.shape) for k, v in ckpt[name].items()}
        if want != got:
            missing = sorted(set(want) - set(got))
            extra = sorted(set(got) - set(want))
            wrong = [f"{k} {got[k]} (config: {want[k]})" for k in sorted(set(want) & set(got))
                     if got[k] != want[k]]
            what = "; ".join(filter(None, [
                f"missing {', '.join(missing[:3])}" if missing else "",
                f"unexpected {', '.join(extra[:3])}" if extra else "",
                f"shapes {', '.join(wrong[:3])}" if wrong else ""]))
            raise InvalidCheckpoint(f"{path}: {name}'s tensors do not fit the checkpoint's own "
                                    f"config ({what})")
        bad = first_nonfinite(ckpt[name].items())
        if bad is not None:
            raise InvalidCheckpoint(f"{path}: {name}.{bad} holds NaN or infinity; samples and "
                                    "metrics from it would be meaningless (a diverged or "
                                    "damaged run)")


def model_hash(cfg: Any) -> str:
    """A short hash of a config's model section: what fixes the networks' tensors."""
    text = json.dumps(cfg.to_dict()["model"], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def check_against_run(ckpt: dict[str, Any], path: str | Path, run: str | Path) -> None:
    """The checkpoint belongs to run folder ``run``: its model (image size, widths, layers:
    compared by hash) and optimizer match ``run/config.json``. A checkpoint copied in from
    another run would otherwise be sampled and scored at the other run's image size."""
    mine = ExperimentConfig.from_dict(ckpt["config"])
    folder = runs.read_config(run)
    diffs = []
    if model_hash(mine) != model_hash(folder):
        m, f = mine.to_dict()["model"], folder.to_dict()["model"]
        diffs += [f"model.{k} {m[k]!r} vs {f[k]!r}" for k in sorted(m) if m[k] != f.get(k)][:4]
    if mine.optim.name != folder.optim.name:
        diffs.append(f"optim.name {mine.optim.name!r} vs {folder.optim.name!r}")
    if diffs:
        raise InvalidCheckpoint(f"{path}: the checkpoint is not from this run folder's config "
                                f"({'; '.join(diffs)}; checkpoint vs {runs.CONFIG}); copy the "
                                "whole run folder, not its checkpoint alone")


# --------------------------------------------------------------------------- training state
def training_state(step: int, config: dict[str, Any], trainer: Any,
                   noise: torch.Generator) -> dict[str, Any]:
    """The payload of a checkpoint at ``step``: ``trainer`` is a xraygan.train.Trainer."""
    t = trainer
    return {
        "step": step,
        "config": config,
        "G": t.G.state_dict(), "D": t.D.state_dict(),
        "opt_g": t.opt_g.state_dict(), "opt_d": t.opt_d.state_dict(),
        "scaler": t.step.scaler.state_dict(),
        "rng": {"noise": noise.get_state()},
    }


def restore_training_state(ckpt: dict[str, Any], trainer: Any, noise: torch.Generator) -> None:
    """Load a checkpoint's networks, optimizers, grad scaler and noise state into ``trainer``."""
    t = trainer
    t.G.load_state_dict(ckpt["G"])
    t.D.load_state_dict(ckpt["D"])
    t.opt_g.load_state_dict(ckpt["opt_g"])
    t.opt_d.load_state_dict(ckpt["opt_d"])
    if "scaler" in ckpt:
        t.step.scaler.load_state_dict(ckpt["scaler"])
    noise.set_state(ckpt["rng"]["noise"])


# --------------------------------------------------------------------------- resume checks
def check_resumable(saved: ExperimentConfig, new: ExperimentConfig) -> None:
    """Only the length of training may change on resume; anything else is another run."""
    a = replace(saved, train=replace(saved.train, steps=0, epochs=0.0))
    b = replace(new, train=replace(new.train, steps=0, epochs=0.0))
    if a != b:
        diff = [k for k, v in flatten(b.to_dict()).items() if flatten(a.to_dict()).get(k) != v]
        raise ConfigError(
            "cannot resume with a different configuration (only --steps/--epochs may change); "
            f"changed: {', '.join(diff)}"
        )


def check_resume_length(run_dir: Path, start: int, steps: int, cfg: ExperimentConfig) -> None:
    """A resume must continue: ``steps`` (the new total) may not be below the checkpoint's."""
    if start > steps:
        length = f"--steps {cfg.train.steps}" if cfg.train.steps else f"--epochs {cfg.train.epochs:g}"
        raise ConfigError(
            f"--resume: {run_dir} is already at step {start}; {length} means {steps} steps, "
            f"which would not continue it. Give more than {start} steps to train further; "
            "the run folder is unchanged"
        )
