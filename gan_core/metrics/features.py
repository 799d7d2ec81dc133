"""Inception pool3 features and their streaming statistics, as pytorch-fid computes them.

pytorch-fid's protocol, reproduced exactly: images become float RGB in [0, 1] (a grayscale
image is replicated to three channels, which is what ``PIL.Image.convert("RGB")`` does in its
loader), ``InceptionV3(resize_input=True, normalize_input=True)`` resizes them to 299x299
bilinearly (align_corners=False) and maps them to [-1, 1], and the 2048-d output of the final
average pool is the feature. Mean and covariance (ddof = 1, as ``np.cov``) are accumulated in
float64 batch by batch (Chan et al.'s pairwise update), so any number of images streams through
in constant memory. The statistics of a dataset are cached on disk, keyed by the dataset's
fingerprint and the image count.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..runs import atomic_write_bytes
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
        import io

        buf = io.BytesIO()
        np.savez(buf, n=self.n, mean=self.mean, m2=self.m2, version=STATS_VERSION)
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> FeatureStats:
        with np.load(path) as z:
            if str(z["version"]) != STATS_VERSION:
                raise ValueError(f"{path}: statistics of another protocol ({z['version']})")
            mean = z["mean"]
            return cls(dims=len(mean), n=int(z["n"]), mean=mean.copy(), m2=z["m2"].copy())


# --------------------------------------------------------------------------- the extractor
def to_inception_input(batch: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W), C in {1, 3} -> float32 (B, 3, H, W) in [0, 1]."""
    if batch.dtype != torch.uint8 or batch.ndim != 4 or batch.shape[1] not in (1, 3):
        raise ValueError(f"expected uint8 images (B, 1 or 3, H, W), got {batch.dtype} {tuple(batch.shape)}")
    x = batch.float().div_(255.0)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


_MODELS: dict[str, torch.nn.Module] = {}


class InceptionFeatures:
    """Callable: uint8 images (B, C, H, W) -> pool3 features (B, 2048) float64 numpy.

    The network is loaded once per process and device, from verified weights
    (:func:`gan_core.metrics.weights.load_fid_inception`).
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
    from tqdm.auto import tqdm

    extractor = extractor or InceptionFeatures()
    stats = FeatureStats(keep_features=keep_features)
    total = len(images) if isinstance(images, torch.Tensor) else None
    desc = progress if isinstance(progress, str) else "inception features"
    with tqdm(total=total, desc=desc, unit="img", disable=not progress, leave=False) as bar:
        for batch in _batches(images, batch_size):
            stats.update(extractor(batch))
            bar.update(len(batch))
    return stats


def stats_cache_dir() -> Path:
    return Path(os.environ.get("XRAYGAN_FID_STATS") or cache_root() / "fid-stats")


def dataset_stats(
    images: torch.Tensor,
    fingerprint: str,
    extractor: InceptionFeatures | None = None,
    *,
    cache_dir: str | Path | None = None,
    batch_size: int = 64,
    progress: bool | str = True,
) -> FeatureStats:
    """Statistics of a dataset's images, cached as ``<fingerprint>-n<N>-pool3-v1.npz``."""
    folder = Path(cache_dir) if cache_dir is not None else stats_cache_dir()
    path = folder / f"{fingerprint}-n{len(images)}-{STATS_VERSION}.npz"
    if path.is_file():
        try:
            return FeatureStats.load(path)
        except (ValueError, OSError, KeyError):
            pass  # unreadable or stale: recompute and overwrite
    stats = feature_stats(images, extractor, batch_size=batch_size, progress=progress)
    stats.save(path)
    return stats
