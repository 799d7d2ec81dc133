"""Downstream utility: can generated radiographs stand in for real ones when training a
classifier? Train on synthetic, test on real (the protocol of CheXGenBench, Dutt et al. 2025).

One small CNN per training set, for one binary label (cardiomegaly by default):
    (a) real    the run's real training images with their labels
    (b) synth   generated images only, as many as the real set, labelled by the anatomy
                measurer (xraygan.metrics.anatomy: measured CTR > 0.5); images it finds
                implausible get no label and are left out
    (c) mixed   real + synthetic
    (d) real_measured  the real training images labelled by the anatomy measurer instead of
                their own labels: the ceiling of (b), what a perfect generator could reach
                with measured labels (at 32 px the measurer agrees with the phantoms' own
                labels on ~80-85 % of images, docs/anatomy.md)
each tested on held-out real images (never seen by the GAN nor the classifiers, labels from the
generator's parameters on phantoms, from train.csv on VinBigData). Reported: AUROC of each with
a bootstrap interval over the test images, and the gaps (b) - (a) and (c) - (a) with paired
bootstrap intervals (the same resampled test set scores all three models).

Every classifier takes the same number of optimizer steps (``epochs`` passes over the real set),
so (c) is not favoured by more compute; weights and batch order come from ``seed``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import nn

from .. import runs
from ..data.labels import labels_digest, utility_labels
from ..data.phantom import CARDIOMEGALY_CTR
from ..errors import ConfigError, XrayganError
from ..safeio import read_bounded
from ..trials import InvalidTrial, check_number
from .anatomy import measure_anatomy
from .weights import sha256_file


@dataclass(frozen=True)
class UtilitySettings:
    label: str = "cardiomegaly"  # the only label the anatomy measurer can give synthetic images
    epochs: float = 10.0  # passes over the real training set (the step count of every model)
    batch_size: int = 64
    lr: float = 1e-3  # Adam
    width: int = 16  # channels of the first conv layer
    bootstrap: int = 1000  # test-set resamples of the intervals
    confidence: float = 0.95
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SmallCNN(nn.Module):
    """Three strided 3x3 conv layers, a 4x4 pooled map, one logit: ~30 k parameters at width
    16, enough to read a heart's width off a 32-128 px radiograph, small enough for a CPU."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(1, w, 3, 2, 1), nn.ReLU(),  # (B, w, S/2, S/2)
            nn.Conv2d(w, 2 * w, 3, 2, 1), nn.ReLU(),  # (B, 2w, S/4, S/4)
            nn.Conv2d(2 * w, 4 * w, 3, 2, 1), nn.ReLU(),  # (B, 4w, S/8, S/8)
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),  # (B, 64w): where, not only what
            nn.Linear(64 * w, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U over n1 * n0; ties count half); NaN when a
    class is missing."""
    labels = np.asarray(labels) == 1
    n1, n0 = int(labels.sum()), int((~labels).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = stats.rankdata(scores)
    return float((ranks[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _as_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float (N, 1, H, W) in [-1, 1]."""
    x = images.float().div(127.5).sub(1.0)
    return x.mean(1, keepdim=True) if x.shape[1] > 1 else x


def train_classifier(images: torch.Tensor, labels: np.ndarray, steps: int, s: UtilitySettings,
                     device: str = "cpu") -> SmallCNN:
    """A SmallCNN trained for ``steps`` Adam steps on uint8 ``images`` and 0/1 ``labels``;
    positives weighted by the class ratio, so a rare label is not ignored."""
    torch.manual_seed(s.seed)
    model = SmallCNN(s.width).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=s.lr)
    y = torch.as_tensor(labels, dtype=torch.float32)
    pos = float(y.sum())
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(max(1.0, len(y) - pos) / max(1.0, pos),
                                                           device=device))
    rng = np.random.default_rng(s.seed)
    order = np.empty(0, np.int64)
    model.train()
    for _ in range(steps):
        if len(order) < s.batch_size:  # a fresh permutation per pass over the set
            order = np.concatenate([order, rng.permutation(len(images))])
        idx, order = order[: s.batch_size], order[s.batch_size :]
        xb = _as_input(images[idx]).to(device)
        loss = loss_fn(model(xb), y[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


@torch.no_grad()
def predict(model: SmallCNN, images: torch.Tensor, device: str = "cpu", batch: int = 256) -> np.ndarray:
    return np.concatenate([model(_as_input(images[i : i + batch]).to(device)).float().cpu().numpy()
                           for i in range(0, len(images), batch)])


def _interval(vals: list[float], confidence: float) -> tuple[float, float]:
    vals = [v for v in vals if np.isfinite(v)]
    if not vals:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2 * 100
    lo, hi = np.percentile(vals, [tail, 100 - tail])
    return float(lo), float(hi)


def utility_scores(scores: dict[str, np.ndarray], test_labels: np.ndarray,
                   s: UtilitySettings) -> dict[str, float]:
    """AUROC per training set and the gaps to ``real``, each with a paired bootstrap interval
    over the test images (the same resample scores every model)."""
    out: dict[str, float] = {}
    rng = np.random.default_rng(s.seed + 1)
    n = len(test_labels)
    boots = [rng.integers(0, n, n) for _ in range(s.bootstrap)]
    per: dict[str, list[float]] = {}
    for name, sc in scores.items():
        out[f"util_auroc_{name}"] = auroc(sc, test_labels)
        per[name] = [auroc(sc[b], test_labels[b]) for b in boots]
        out[f"util_auroc_{name}_lo"], out[f"util_auroc_{name}_hi"] = _interval(per[name], s.confidence)
    for name in scores:
        if name == "real" or "real" not in scores:
            continue
        out[f"util_gap_{name}"] = out[f"util_auroc_{name}"] - out["util_auroc_real"]
        diffs = [a - b for a, b in zip(per[name], per["real"], strict=True)]
        out[f"util_gap_{name}_lo"], out[f"util_gap_{name}_hi"] = _interval(diffs, s.confidence)
        finite = [d for d in diffs if np.isfinite(d)]
        # the gap's standard error over test images: what a claim tests a single run with
        out[f"util_gap_{name}_se"] = float(np.std(finite, ddof=1)) if len(finite) > 1 else float("nan")
    return out


def utility(real: torch.Tensor, real_labels: np.ndarray, synthetic: torch.Tensor,
            synthetic_labels: np.ndarray, test: torch.Tensor, test_labels: np.ndarray,
            s: UtilitySettings = UtilitySettings(), *, device: str = "cpu",  # noqa: B008 (frozen)
            real_measured: tuple[torch.Tensor, np.ndarray] | None = None,
            echo: Callable[[str], None] | None = None) -> dict[str, float]:
    """Train (a) real, (b) synthetic, (c) real + synthetic classifiers, and (d) when
    ``real_measured`` (images, measured labels) is given, and score them on the held-out real
    ``test`` images (module docstring). A training set without both classes (e.g. no
    generated image the measurer can read) trains nothing: a constant classifier, AUROC 0.5."""
    steps = max(1, int(round(s.epochs * len(real) / s.batch_size)))
    sets = {
        "real": (real, real_labels),
        "synthetic": (synthetic, synthetic_labels),
        "mixed": (torch.cat([real, synthetic]), np.concatenate([real_labels, synthetic_labels])),
    }
    if real_measured is not None:
        sets["real_measured"] = real_measured
    scores: dict[str, np.ndarray] = {}
    for name, (x, y) in sets.items():
        t0 = time.perf_counter()
        if len(x) == 0 or len(np.unique(y)) < 2:
            # nothing to learn from: the classifier is a constant, which ranks no image above
            # another (AUROC 0.5, every tie counted half)
            scores[name] = np.zeros(len(test))
            if echo:
                echo(f"utility: {name}: {len(x)} images of one class only: a constant "
                     "classifier, AUROC 0.5")
            continue
        model = train_classifier(x, y, steps, s, device)
        scores[name] = predict(model, test, device)
        if echo:
            echo(f"utility: {name}: {len(x)} images ({y.mean():.0%} positive), {steps} steps, "
                 f"AUROC {auroc(scores[name], test_labels):.3f} on {len(test)} held-out real "
                 f"images, {time.perf_counter() - t0:.0f} s")
    out = utility_scores(scores, test_labels, s)
    out.update({"util_n_real": float(len(real)), "util_n_synthetic": float(len(synthetic)),
                "util_n_test": float(len(test)), "util_steps": float(steps),
                "util_real_positive": float(np.mean(real_labels)) if len(real) else float("nan"),
                "util_synthetic_positive": float(np.mean(synthetic_labels)) if len(synthetic) else float("nan"),
                "util_test_positive": float(np.mean(test_labels))})
    return out


UTILITY_FILE = "utility.json"  # in the run folder: the result, reused by a re-evaluation


def synthetic_labels(images: torch.Tensor, label: str) -> tuple[np.ndarray, np.ndarray]:
    """(0/1 labels, kept mask) of generated images as the anatomy measurer reads them: a
    measured CTR above 0.5 is cardiomegaly; implausible images are not kept."""
    if label != "cardiomegaly":
        raise ConfigError(f"utility: the anatomy measurer labels cardiomegaly only, not {label!r}")
    m = measure_anatomy(images)
    kept = m["plausible"] == 1
    return (m["ctr"][kept] > CARDIOMEGALY_CTR).astype(np.float64), kept


def utility_of_run(ctx: Any, s: UtilitySettings = UtilitySettings()) -> dict[str, Any]:  # noqa: B008
    """The utility test of a finished run (xraygan.metrics.RunContext): as many generated
    images as the run's real training set, held-out real images as the test set. The labels
    are checked first (xraygan.data.labels.utility_labels: what the sweep's preflight refuses
    is refused here too). The result is kept in RUN/utility.json, keyed by everything it
    depends on (:func:`cache_key`), so a trial evaluated again (a retried sweep trial) does not
    train the classifiers again; a cache whose key differs or whose numbers are impossible is
    recomputed and replaced."""
    cfg = ctx.config
    if ctx.generator is None:
        raise ValueError("no checkpoint: the utility test needs a generator")
    size = cfg.model.image_size
    (real, y_real), (test, y_test) = utility_labels(cfg.data, size, s.label, ctx.heldout_samples)
    key = cache_key(ctx, s, real, y_real, test, y_test)
    echo = ctx.echo or (lambda line: None)
    path = ctx.run / UTILITY_FILE
    kept_result, why = read_cache(path, key)
    if kept_result is not None:
        return kept_result
    if why:
        echo(f"utility: {path}: {why}; computed again")
    gen = ctx.generate(len(real))
    y_gen, kept = synthetic_labels(gen, s.label)
    y_meas, kept_real = synthetic_labels(real.images, s.label)
    echo(f"utility: {len(gen)} generated images, {kept.mean():.0%} measurable, "
         f"{y_gen.mean() if len(y_gen) else float('nan'):.0%} labelled {s.label} by the anatomy measurer")
    out: dict[str, Any] = utility(real.images, y_real, gen[torch.from_numpy(kept)], y_gen,
                                  test.images, y_test, s, device=ctx.device, echo=echo,
                                  real_measured=(real.images[torch.from_numpy(kept_real)], y_meas))
    out["util_synthetic_unlabelled"] = float(1.0 - kept.mean()) if len(kept) else float("nan")
    out["util_label"] = s.label
    runs.atomic_write_json(path, {"key": key, "metrics": out})
    return out


def cache_key(ctx: Any, s: UtilitySettings, real: Any, y_real: np.ndarray, test: Any,
              y_test: np.ndarray) -> dict[str, Any]:
    """What a utility result depends on: the settings, the checkpoint's content, the training
    and held-out images (their fingerprints), the labels (the file's content and the label
    vectors themselves), the evaluation's noise seed and held-out cap."""
    labels = hashlib.sha256(np.asarray(y_real, np.float64).tobytes()
                            + b"|" + np.asarray(y_test, np.float64).tobytes()).hexdigest()
    return {"settings": s.to_dict(), "heldout": ctx.heldout_samples, "noise_seed": ctx.seed,
            "checkpoint_sha256": sha256_file(runs.checkpoint_path(ctx.run)),
            "data": real.fingerprint, "heldout_data": test.fingerprint,
            "labels_file_sha256": labels_digest(ctx.config.data), "labels_sha256": labels}


REQUIRED = ("util_auroc_real", "util_auroc_synthetic", "util_auroc_mixed", "util_gap_synthetic",
            "util_gap_mixed", "util_n_real", "util_n_test")


def read_cache(path: Any, key: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """(metrics, "") from utility.json when its key is ``key`` and every number in it is
    possible (xraygan.trials.check_number: AUROCs in [0, 1], gaps in [-1, 1], ...); else
    (None, why not) (no file: why is ""). Read bounded by XRAYGAN_MAX_CACHE_BYTES."""
    path = Path(path)
    if not path.exists():
        return None, ""
    try:
        kept = json.loads(read_bounded(path, "cache_bytes", str(path), error=XrayganError))
    except XrayganError as e:
        return None, str(e).removeprefix(f"{path} ")
    except (ValueError, RecursionError) as e:
        return None, f"not valid JSON ({type(e).__name__})"
    if not isinstance(kept, dict) or not isinstance(kept.get("metrics"), dict):
        return None, "not a cached result (expected an object with key and metrics)"
    if kept.get("key") != json.loads(json.dumps(key)):
        return None, "computed for other inputs (checkpoint, data, labels or settings differ)"
    metrics = kept["metrics"]
    missing = [k for k in REQUIRED if k not in metrics]
    if missing:
        return None, f"lacks {', '.join(missing)}"
    try:
        for k, v in metrics.items():
            if k != "util_label":
                check_number(k, v)
    except InvalidTrial as e:
        return None, str(e)
    if metrics.get("util_label") != key["settings"]["label"]:
        return None, "holds another label's result"
    return {k: (float("nan") if v is None else v) for k, v in metrics.items()}, ""
