"""Report figures of the metrics beyond FID, from what ``xraygan metrics`` left in each run
folder: ``spectrum.json`` (real and generated radial power) and ``closest_pairs.png``."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from xraygan.metrics import CLOSEST_PAIRS_FILE, SPECTRUM_FILE
from xraygan.metrics.spectrum import CUTOFF

from .figures import FigureUnavailable


def spectra_of_runs(runs: Mapping[str, str | Path], path: str | Path) -> Path:
    """One panel per configuration: real and generated curves on a log scale."""
    from xraygan.metrics.plots import spectrum_figure

    curves = {}
    for name, run in runs.items():
        f = Path(run) / SPECTRUM_FILE
        if f.is_file():
            curves[name] = json.loads(f.read_text())
    if not curves:
        raise FigureUnavailable("no run holds spectra yet (the spectrum metric of `xraygan "
                                "metrics` writes them; runs evaluated before it existed have none)")
    return spectrum_figure(curves, path, cutoff=CUTOFF)


def closest_pairs_markdown(runs: Mapping[str, str | Path], fig_dir: Path, made: list[Path]) -> str:
    """The closest-pairs figure of each configuration's run, copied beside the page."""
    out = []
    for name, run in runs.items():
        src = Path(run) / CLOSEST_PAIRS_FILE
        if not src.is_file():
            continue
        slug = re.sub(r"[^\w.-]+", "-", name).strip("-")  # "adas-elu, seed 0" -> adas-elu-seed-0
        dst = fig_dir / f"closest_pairs_{slug}.png"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        made.append(dst)
        out.append(f"\n![{name}: closest generated/training pairs]({fig_dir.name}/{dst.name})\n")
    if not out:
        return ("*Closest pairs: not drawn: no run has a memorization test (it needs Inception "
                "features: a scale with FID, or `xraygan metrics RUN --fid`).*\n")
    return "".join(out)
