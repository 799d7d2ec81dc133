"""Checkpoints: everything needed to continue a run bit for bit, loadable without pickle code.

A checkpoint holds G, D, both optimizers, the noise generator's and torch's RNG states, the
step and the resolved config as a plain dict, so ``torch.load(..., weights_only=True)`` reads it:
opening a checkpoint from someone else never executes code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .errors import RunFolderError
from .runs import atomic_torch_save

FORMAT = 1


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    atomic_torch_save(path, {"format": FORMAT, **payload})


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise RunFolderError(f"{path}: no checkpoint; the run has not saved one yet")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # a truncated or foreign file: say which and why
        raise RunFolderError(f"{path}: cannot read the checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise RunFolderError(f"{path}: not an xraygan checkpoint of format {FORMAT}")
    return ckpt
