"""Inception pool3 features and their streaming statistics, as pytorch-fid computes them.

pytorch-fid's protocol, reproduced exactly: images become float RGB in [0, 1] (a grayscale
image is replicated to three channels, which is what ``PIL.Image.convert("RGB")`` does in its
loader), ``InceptionV3(resize_input=True, normalize_input=True)`` resizes them to 299x299
bilinearly (align_corners=False) and maps them to [-1, 1], and the 2048-d output of the final
average pool is the feature. Mean and covariance (ddof = 1, as ``np.cov``) are accumulated in
float64 batch by batch (Chan et al.'s pairwise update), so any number of images streams through
in constant memory. The statistics of a dataset are cached on disk, keyed by the dataset's
fingerprint and the image count, together with the features themselves (float32, 8 MB per
1,000 images): the k-NN metrics (precision/recall, density/coverage, memorization) need the real
points, so one Inception pass per image set serves FID, KID and all of them.

Interop: :func:`save_pytorch_fid_stats` writes pytorch-fid's ``.npz`` (``mu``, ``sigma``), and
:func:`load_stats_file` reads it (or one of our cache files) as a reference.
"""

from __future__ import annotations

import gc
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import UserFileError, XrayganError
from ..process import trim_malloc
from ..progress import Progress
from ..runs import atomic_write_bytes
from ..safeio import check_npz
from .frechet import psd_defect
from .weights import cache_root, load_fid_inception

DIMS = 2048
STATS_VERSION = "pool3-v1"  # bump if the protocol changes: keys the statistics cache


# --------------------------------------------------------------------------- statistics
@dataclass
class FeatureStats:
    """Streaming mean and covariance of feature vectors (float64)."""

    dims: int = DIMS
    keep_features: bool = False  # also keep the raw features (for KID)
    n: int = 0
    mean: np.ndarray = field(default=None)  # type: ignore[assignment]
    m2: np.ndarray = field(default=None)  # type: ignore[assignment]  # sum of centred outer products
    features: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mean is None:
            self.mean = np.zeros(self.dims)
        if self.m2 is None:
            self.m2 = np.zeros((self.dims, self.dims))

    def update(self, feats: np.ndarray) -> None:
        """Add a batch (B, dims): Chan's merge of (n, mean, M2) with the batch's own."""
        x = np.asarray(feats, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dims:
            raise ValueError(f"features: expected (B, {self.dims}), got {x.shape}")
        b = len(x)
        if b == 0:
            return
        mean_b = x.mean(0)
        xc = x - mean_b
        m2_b = xc.T @ xc
        delta = mean_b - self.mean
        total = self.n + b
        self.m2 += m2_b + np.outer(delta, delta) * (self.n * b / total)
        self.mean += delta * (b / total)
        self.n = total
        if self.keep_features:
            self.features.append(x.astype(np.float32))

    @property
    def cov(self) -> np.ndarray:
        if self.n < 2:
            raise ValueError(f"covariance needs at least 2 samples, got {self.n}")
        return self.m2 / (self.n - 1)

    def all_features(self) -> np.ndarray:
        if not self.keep_features:
            raise ValueError("features were not kept (keep_features=False)")
        return np.concatenate(self.features) if self.features else np.zeros((0, self.dims))

    def save(self, path: str | Path) -> None:
        buf = io.BytesIO()
        extra = {"features": self.all_features()} if self.keep_features else {}
        np.savez(buf, n=self.n, mean=self.mean, m2=self.m2, version=STATS_VERSION, **extra)
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> FeatureStats:
        """Our cache file, its ``.npy`` headers checked before anything is loaded and its
        arrays after (shapes fit together, finite, n >= 2): StatsFileError (a ValueError)."""
        heads = check_npz(path, f"{path}", {"mean": (None,), "m2": (None, None), "n": (),
                                            "features": (None, None)})
        missing = {"mean", "m2", "n", "version"} - set(heads)
        if missing:
            raise StatsFileError(f"{path}: statistics without {', '.join(sorted(missing))}")
        _fit(heads["mean"].shape, heads["m2"].shape, path)
        with np.load(path, allow_pickle=False) as z:
            if str(z["version"]) != STATS_VERSION:
                raise StatsFileError(f"{path}: statistics of another protocol ({str(z['version'])[:40]})")
            mean = z["mean"].astype(np.float64)
            out = cls(dims=len(mean), n=int(z["n"]), mean=mean, m2=z["m2"].astype(np.float64))
            if "features" in z.files:
                out.keep_features = True
                out.features = [z["features"].astype(np.float32)]
        check_stats(out, path)
        return out

    @classmethod
    def from_mu_sigma(cls, mu: np.ndarray, sigma: np.ndarray, n: int = 0) -> FeatureStats:
        """Statistics known only by mean and covariance (pytorch-fid's .npz). ``n`` unknown
        (0) is taken as a large sample: the covariance is used as given."""
        mu = np.asarray(mu, np.float64)
        sigma = np.asarray(sigma, np.float64)
        if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
            raise ValueError(f"mu {mu.shape} and sigma {sigma.shape} do not fit together")
        eff = n if n >= 2 else 10**9
        return cls(dims=len(mu), n=eff, mean=mu.copy(), m2=sigma * (eff - 1))


# --------------------------------------------------------------------------- the extractor
def to_inception_input(batch: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W), C in {1, 3} -> float32 (B, 3, H, W) in [0, 1]."""
    if batch.dtype != torch.uint8 or batch.ndim != 4 or batch.shape[1] not in (1, 3):
        raise ValueError(f"expected uint8 images (B, 1 or 3, H, W), got {batch.dtype} {tuple(batch.shape)}")
    x = batch.float().div_(255.0)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


_MODELS: dict[str, torch.nn.Module] = {}


CPU_BATCH = 8
"""Images per Inception forward on a CPU, whatever batch the caller streams. Activations at
299x299 cost about 11 MB per image in float32: measured on an AMD EPYC (one thread, shared
machine), a batch of 64 peaked at 1.78 GB resident, 16 at 1.10-1.20 GB and 8 at 1.04 GB, with
8 about 10 % fewer images/s than 16 (a few percent of a quick start, whose time is training).
Features do not change with it beyond rounding: a whole quick start gave the same FIDs at 16
and 8. On a GPU the caller's batch is used."""


def release_models() -> None:
    """Drop the cached Inception networks and return their memory (a sweep's parent after the
    reference statistics: its workers load their own, one per process)."""
    _MODELS.clear()
    gc.collect()
    trim_malloc()


class InceptionFeatures:
    """Callable: uint8 images (B, C, H, W) -> pool3 features (B, 2048) float64 numpy.

    The network is loaded once per process and device, from verified weights
    (:func:`xraygan.metrics.weights.load_fid_inception`).
    """

    def __init__(
        self,
        device: str | torch.device = "cpu",
        *,
        num_threads: int | None = None,
        channels_last: bool = True,
        allow_download: bool = True,
    ) -> None:
        self.device = torch.device(device)
        if num_threads:
            torch.set_num_threads(num_threads)
        key = str(self.device)
        if key not in _MODELS:
            model = load_fid_inception(allow_download=allow_download).to(self.device)
            # channels_last: oneDNN / cuDNN convolutions run on NHWC without reorders
            _MODELS[key] = model.to(memory_format=torch.channels_last) if channels_last else model
        self.model = _MODELS[key]
        self.channels_last = channels_last

    @torch.inference_mode()
    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        step = CPU_BATCH if self.device.type == "cpu" else len(batch)
        if len(batch) > step:  # activations scale with the batch, throughput does not
            return np.concatenate([self(batch[i:i + step]) for i in range(0, len(batch), step)])
        x = to_inception_input(batch).to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x)[0].flatten(1).double().cpu().numpy()


def _batches(images: torch.Tensor | Iterable[torch.Tensor], batch_size: int):
    if isinstance(images, torch.Tensor):
        for start in range(0, len(images), batch_size):
            yield images[start : start + batch_size]
    else:
        yield from images


def feature_stats(
    images: torch.Tensor | Iterable[torch.Tensor],
    extractor: InceptionFeatures | None = None,
    *,
    batch_size: int = 64,
    keep_features: bool = False,
    progress: bool | str = True,
) -> FeatureStats:
    """Streaming Inception statistics of uint8 images (one tensor, or an iterable of batches)."""
    extractor = extractor or InceptionFeatures()
    stats = FeatureStats(keep_features=keep_features)
    total = len(images) if isinstance(images, torch.Tensor) else None
    desc = progress if isinstance(progress, str) else "inception features"
    # a bar on a terminal, a plain line every 30 s in a log (no carriage returns into files)
    with Progress(total, desc=desc, enabled=bool(progress), unit="img") as bar:
        for batch in _batches(images, batch_size):
            stats.update(extractor(batch))
            bar.update(len(batch))
    return stats


def stats_cache_dir() -> Path:
    return Path(os.environ.get("XRAYGAN_FID_STATS") or cache_root() / "fid-stats")


def stats_path(fingerprint: str, n: int, cache_dir: str | Path | None = None) -> Path:
    """The cache file of the statistics of ``n`` images of the dataset ``fingerprint``."""
    folder = Path(cache_dir) if cache_dir is not None else stats_cache_dir()
    return folder / f"{fingerprint}-n{n}-{STATS_VERSION}.npz"


def dataset_stats(
    images: torch.Tensor,
    fingerprint: str,
    extractor: InceptionFeatures | None = None,
    *,
    cache_dir: str | Path | None = None,
    batch_size: int = 64,
    progress: bool | str = True,
    keep_features: bool = True,
) -> FeatureStats:
    """Statistics (and features) of a dataset's images, cached as
    ``<fingerprint>-n<N>-pool3-v1.npz``; a cache file without the features asked for (written
    before they were stored) is recomputed."""
    path = stats_path(fingerprint, len(images), cache_dir)
    if path.is_file():
        try:
            cached = FeatureStats.load(path)
            if cached.keep_features or not keep_features:
                return cached
        except (ValueError, OSError, KeyError, XrayganError):
            pass  # unreadable, poisoned or stale: recompute and overwrite
    stats = feature_stats(images, extractor, batch_size=batch_size, keep_features=keep_features,
                          progress=progress)  # fmt: skip
    stats.save(path)
    return stats


# --------------------------------------------------------------------------- pytorch-fid files
def save_pytorch_fid_stats(stats: FeatureStats, path: str | Path) -> None:
    """pytorch-fid's statistics file: ``mu`` (2048,) and ``sigma`` (2048, 2048), float64 as
    ``np.cov`` gives them (what ``python -m pytorch_fid --save-stats`` writes), plus ``n``."""
    buf = io.BytesIO()
    np.savez(buf, mu=stats.mean, sigma=stats.cov, n=stats.n)
    atomic_write_bytes(path, buf.getvalue())


def load_stats_file(path: str | Path) -> FeatureStats:
    """Read pytorch-fid's ``.npz`` (``mu``, ``sigma``) or one of our cache files; the headers
    are checked before the load and the values after (check_stats)."""
    heads = check_npz(path, f"{path}", {"mu": (None,), "sigma": (None, None), "n": ()})
    files = set(heads)
    if {"mu", "sigma"} <= files:
        _fit(heads["mu"].shape, heads["sigma"].shape, path)
        try:
            with np.load(path, allow_pickle=False) as z:
                n = int(z["n"]) if "n" in files else 0  # pytorch-fid writes no n: unknown
                if "n" in files and n < 2:
                    raise StatsFileError(f"{path}: statistics of n = {n} images; a covariance "
                                         "needs 2")
                stats = FeatureStats.from_mu_sigma(z["mu"], z["sigma"], n)
        except StatsFileError:
            raise
        except (OSError, ValueError, EOFError) as e:
            raise StatsFileError(f"{path}: not a readable .npz statistics file ({e})") from None
        check_stats(stats, path)
        return stats
    if {"mean", "m2", "n", "version"} <= files:
        return FeatureStats.load(path)
    raise StatsFileError(f"{path}: expected pytorch-fid statistics (keys mu, sigma), found keys "
                         f"{', '.join(sorted(files)) or 'none'}")


def _fit(mean_shape: tuple[int, ...], cov_shape: tuple[int, ...], path: str | Path) -> None:
    """Mean (d,) and covariance (d, d) from the .npy headers, before anything is loaded."""
    d = mean_shape[0] if mean_shape else 0
    if d < 1 or cov_shape != (d, d):
        raise StatsFileError(f"{path}: mean {mean_shape} and covariance {cov_shape} do not fit "
                             "together")


def check_stats(stats: FeatureStats, path: str | Path) -> None:
    """Statistics that can give a FID: shapes that fit, finite values, n >= 2, and a
    covariance that is symmetric positive semi-definite (anything else gives a plausible,
    wrong distance: a non-PSD reference once gave "FID 0.0")."""
    d = stats.dims
    if stats.mean.shape != (d,) or stats.m2.shape != (d, d) or d < 1:
        raise StatsFileError(f"{path}: mean {stats.mean.shape} and covariance {stats.m2.shape} "
                             "do not fit together")
    if stats.features and stats.features[0].shape[1:] != (d,):
        raise StatsFileError(f"{path}: features {stats.features[0].shape} do not fit the mean ({d},)")
    if stats.n < 2:
        raise StatsFileError(f"{path}: statistics of n = {stats.n} images; a covariance needs 2")
    for name, arr in (("mean", stats.mean), ("covariance", stats.m2)):
        if not np.isfinite(arr).all():
            raise StatsFileError(f"{path}: the {name} holds NaN or infinity")
    defect = psd_defect(stats.m2)
    if defect:
        raise StatsFileError(f"{path}: the covariance is not a covariance ({defect})")


class StatsFileError(UserFileError, ValueError):
    """A statistics file that cannot give a FID (named, with the reason)."""
