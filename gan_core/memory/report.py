"""``memory_table``: the paper's memory analysis (Fig. 7, 8) with measured peaks beside it.

One :class:`MemoryRow` per (image size, width, batch-norm placement): parameters, torchinfo's
per-image forward/backward size and its batch extrapolation (the paper's method), the project's
estimate, and the measured peak of a real training step; both estimates as ratios to the
measurement. :func:`bn_savings` gives the batch-norm saving in % (Fig. 8) and
:func:`growth_fits` the growth law against width (Fig. 7). Rows go to CSV and JSON for reports.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import ModelConfig, OptimConfig
from ..models import check_model_config
from ..runs import atomic_write_text
from .estimate import estimate_step, paper_estimate_bytes, saved_at_batch, torchinfo_stats
from .fit import extrapolation_error, fit_exponential, fit_loglog, fit_power_law
from .measure import build_step, make_batch, measure_step_peak

MB = 1e6  # torchinfo and the paper report decimal megabytes


@dataclass(frozen=True)
class MemoryRow:
    preset: str
    image_size: int
    features: int  # g_features (= d_features in a sweep)
    batchnorm: str
    batch_size: int
    optimizer: str
    amp: str  # off | bf16 | fp16
    channels_last: bool
    device: str
    params_g: int
    params_d: int
    param_bytes: int  # parameters and buffers of G and D
    torchinfo_fwd_bwd_per_image_g: int  # torchinfo "Forward/backward pass size", batch 1
    torchinfo_fwd_bwd_per_image_d: int
    torchinfo_batch_bytes: int  # the paper's method: per-image x batch + parameter bytes
    estimate_bytes: int  # the project's estimate (components below)
    estimate_grads: int
    estimate_optimizer_state: int
    estimate_activations: int
    estimate_workspace: int
    measured_peak_bytes: int | None  # None when not measured
    measure_method: str
    torchinfo_ratio: float | None  # torchinfo_batch_bytes / measured
    estimate_ratio: float | None  # estimate_bytes / measured

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def memory_row(
    model: ModelConfig, optim: OptimConfig, batch_size: int, *, preset: str = "custom",
    device: torch.device | str = "cpu", measure: bool = True, amp_dtype: torch.dtype | None = None,
    channels_last: bool = False, warmup: int = 2,
) -> MemoryRow:
    """All figures for one model at one batch size."""
    device = torch.device(device)
    step = build_step(model, optim, device=device, amp_dtype=amp_dtype, channels_last=channels_last)
    G, D = step.G, step.D
    ti_g = torchinfo_stats(G, (model.latent_dim,))
    ti_d = torchinfo_stats(D, (model.channels, model.image_size, model.image_size))
    saved = saved_at_batch(G, D, model, batch_size, amp_dtype=amp_dtype, channels_last=channels_last)
    est = estimate_step(G, D, model, optim, batch_size, saved=saved)
    paper = paper_estimate_bytes(ti_g, ti_d, batch_size)
    peak, method = None, "not measured"
    if measure:
        real, z = make_batch(model, batch_size, device)
        m = measure_step_peak(step, real, z, warmup=warmup)
        peak, method = m.peak_bytes, m.method
    amp = {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp_dtype]
    return MemoryRow(
        preset=preset, image_size=model.image_size, features=model.g_features,
        batchnorm=model.batchnorm, batch_size=batch_size, optimizer=optim.name, amp=amp,
        channels_last=channels_last, device=str(device),
        params_g=sum(p.numel() for p in G.parameters()),
        params_d=sum(p.numel() for p in D.parameters()),
        param_bytes=est.params,
        torchinfo_fwd_bwd_per_image_g=ti_g.fwd_bwd_bytes,
        torchinfo_fwd_bwd_per_image_d=ti_d.fwd_bwd_bytes,
        torchinfo_batch_bytes=paper,
        estimate_bytes=est.total, estimate_grads=est.grads,
        estimate_optimizer_state=est.optimizer_state, estimate_activations=est.activations,
        estimate_workspace=est.workspace,
        measured_peak_bytes=peak, measure_method=method,
        torchinfo_ratio=round(paper / peak, 4) if peak else None,
        estimate_ratio=round(est.total / peak, 4) if peak else None,
    )


def memory_table(
    base: ModelConfig, optim: OptimConfig, *, image_sizes: Sequence[int], features: Sequence[int],
    batchnorms: Sequence[str], batch_size: int, preset: str = "custom",
    device: torch.device | str = "cpu", measure: bool = True, amp_dtype: torch.dtype | None = None,
    channels_last: bool = False, progress: Callable[[MemoryRow], None] | None = None,
) -> list[MemoryRow]:
    """One row per (image size, width, placement), G and D at the same width (the paper's
    sweep varies every block's width together). Configs are checked before any is built."""
    configs = []
    for size in image_sizes:
        for width in features:
            for bn in batchnorms:
                cfg = dataclasses.replace(base, image_size=size, g_features=width,
                                          d_features=width, batchnorm=bn)
                check_model_config(cfg)
                configs.append(cfg)
    rows = []
    for cfg in configs:
        row = memory_row(cfg, optim, batch_size, preset=preset, device=device, measure=measure,
                         amp_dtype=amp_dtype, channels_last=channels_last)
        rows.append(row)
        if progress is not None:
            progress(row)
    return rows


FIGURES = ("measured_peak_bytes", "estimate_bytes", "torchinfo_batch_bytes")


def bn_savings(rows: Iterable[MemoryRow]) -> list[dict[str, Any]]:
    """Saving in % of every placement against batch norm in both networks, per figure.

    ``both -> d`` removes G's batch norm: the paper's Fig. 8 (it reports 1.2 to 7 %).
    """
    by_key = {(r.image_size, r.features, r.batchnorm): r for r in rows}
    out = []
    for (size, width, bn), row in sorted(by_key.items()):
        ref = by_key.get((size, width, "both"))
        if bn == "both" or ref is None:
            continue
        item: dict[str, Any] = {"image_size": size, "features": width, "from": "both", "to": bn,
                                "removed": {"d": "G's BN", "g": "D's BN", "none": "all BN"}[bn]}
        for fig in FIGURES:
            a, b = getattr(ref, fig), getattr(row, fig)
            item[f"saving_pct_{fig.removesuffix('_bytes')}"] = (
                round(100.0 * (a - b) / a, 3) if a and b is not None else None
            )
        out.append(item)
    return out


def growth_fits(rows: Iterable[MemoryRow]) -> list[dict[str, Any]]:
    """Power-law and exponential fits of each figure against width, per (image size, BN)."""
    groups: dict[tuple[int, str], list[MemoryRow]] = {}
    for r in rows:
        groups.setdefault((r.image_size, r.batchnorm), []).append(r)
    out = []
    for (size, bn), group in sorted(groups.items()):
        group = sorted(group, key=lambda r: r.features)
        widths = [r.features for r in group]
        if len(set(widths)) < 4:
            continue
        for fig in FIGURES:
            values = [getattr(r, fig) for r in group]
            if any(v is None for v in values):
                continue
            power, expo, loglog = (fit_power_law(widths, values), fit_exponential(widths, values),
                                   fit_loglog(widths, values))
            item = {
                "image_size": size, "batchnorm": bn, "figure": fig, "widths": widths,
                "power_exponent": round(power.k, 4), "power_r2": round(power.r2, 6),
                "power_a": power.a, "power_c": power.c,
                "loglog_slope": round(loglog.k, 4), "loglog_r2": round(loglog.r2, 6),
                "exp_rate_per_width": expo.k, "exp_r2": round(expo.r2, 6),
            }
            # m(2w) / m(w): constant (2^k) for a power law, e^(b w) and growing for an exponential
            by_width = dict(zip(widths, values, strict=True))
            item["doubling_ratios"] = {f"{w}->{2 * w}": round(by_width[2 * w] / by_width[w], 4)
                                       for w in widths if 2 * w in by_width}
            if len(widths) >= 5:
                item["power_extrapolation_err"] = round(extrapolation_error("power", widths, values), 4)
                item["exp_extrapolation_err"] = round(extrapolation_error("exponential", widths, values), 4)
            out.append(item)
    return out


# --------------------------------------------------------------------------- output


def format_table(rows: Sequence[MemoryRow]) -> str:
    """The rows as an aligned text table in MB."""
    head = ("size", "width", "bn", "batch", "params", "ti/img MB", "paper MB", "estimate MB",
            "measured MB", "paper/meas", "est/meas")
    lines = [head]
    for r in rows:
        lines.append((
            str(r.image_size), str(r.features), r.batchnorm, str(r.batch_size),
            f"{r.params_g + r.params_d:,}",
            f"{(r.torchinfo_fwd_bwd_per_image_g + r.torchinfo_fwd_bwd_per_image_d) / MB:.2f}",
            f"{r.torchinfo_batch_bytes / MB:.1f}", f"{r.estimate_bytes / MB:.1f}",
            "-" if r.measured_peak_bytes is None else f"{r.measured_peak_bytes / MB:.1f}",
            "-" if r.torchinfo_ratio is None else f"{r.torchinfo_ratio:.3f}",
            "-" if r.estimate_ratio is None else f"{r.estimate_ratio:.3f}",
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True))
                     for line in lines)


def rows_to_csv(rows: Sequence[MemoryRow]) -> str:
    buf = io.StringIO()
    names = [f.name for f in dataclasses.fields(MemoryRow)]
    writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if v is None else v for k, v in r.to_dict().items()})
    return buf.getvalue()


def write_csv(path: str | Path, rows: Sequence[MemoryRow]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, rows_to_csv(rows))
    return path


def report_dict(rows: Sequence[MemoryRow]) -> dict[str, Any]:
    """Everything the report builder needs: rows, BN savings, growth fits, the method."""
    methods = sorted({r.measure_method for r in rows})
    return {
        "rows": [r.to_dict() for r in rows],
        "bn_savings": bn_savings(rows),
        "growth": growth_fits(rows),
        "measure_method": methods,
        "units": "bytes",
        "torch": torch.__version__,
    }


def write_json(path: str | Path, rows: Sequence[MemoryRow]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(report_dict(rows), indent=2, sort_keys=True) + "\n")
    return path
