"""Sample set against reference set: every metric from one Inception pass per set.

A :class:`SampleSet` is one set of images with its Inception statistics *and* features
(features.FeatureStats with ``keep_features``), extracted once, lazily, and for a dataset with
a fingerprint read from / written to the statistics cache. :func:`compare_sets` derives FID,
KID, precision/recall/density/coverage and the spectra from those; :func:`memorization_of`
adds the copying test when a training and a held-out set are known. A set known only by
``mu, sigma`` (a pytorch-fid ``.npz``) supports FID alone: the others say "not applicable".
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .features import FeatureStats, InceptionFeatures, dataset_stats, feature_stats
from .frechet import FewSamplesWarning, frechet_distance
from .kid import kernel_inception_distance, kid_subset_size
from .memorization import MIN_CELL, memorization, pixel_space
from .prdc import prdc
from .spectrum import radial_power, spectrum_metrics

NA = float("nan")


@dataclass
class SampleSet:
    """Images (uint8 N, C, H, W) or precomputed statistics, with lazily extracted features."""

    name: str
    images: torch.Tensor | None = None
    fingerprint: str | None = None  # datasets: key of the statistics cache
    stats_in: FeatureStats | None = None  # statistics given instead of images
    device: str = "cpu"
    batch_size: int = 64
    progress: bool = False
    cache_dir: str | Path | None = None
    _stats: FeatureStats | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return len(self.images) if self.images is not None else (self.stats_in.n if self.stats_in else 0)

    @property
    def stats(self) -> FeatureStats:
        """Inception statistics with features: extracted on first use, once."""
        if self._stats is None:
            if self.images is None:
                assert self.stats_in is not None
                self._stats = self.stats_in
            else:
                ex = InceptionFeatures(self.device)
                label = self.progress and f"features {self.name}"
                if self.fingerprint is not None:
                    self._stats = dataset_stats(self.images, self.fingerprint, ex,
                                                cache_dir=self.cache_dir, batch_size=self.batch_size,
                                                progress=label)  # fmt: skip
                else:
                    self._stats = feature_stats(self.images, ex, batch_size=self.batch_size,
                                                keep_features=True, progress=label)  # fmt: skip
        return self._stats

    @property
    def features(self) -> np.ndarray | None:
        s = self.stats
        return s.all_features() if s.keep_features and s.features else None


def not_applicable(notes: list[str], metric: str, why: str) -> None:
    notes.append(f"{metric}: not applicable ({why})")


FID_INF_MIN, FID_INF_MAX = 64, 2048  # generated samples for which FID_inf is computed


def fid_kid(gen: SampleSet, ref: SampleSet, notes: list[str], *, kid: bool = True) -> dict[str, Any]:
    n1, n2 = gen.n, ref.n
    out: dict[str, Any] = {"fid_n1": n1, "fid_n2": n2}
    if min(n1, n2) < 2:
        not_applicable(notes, "fid", f"{min(n1, n2)} image in a set; a covariance needs 2")
        out.update({"fid": NA, "fid_few_samples": True})
        if kid:
            out.update({"kid": NA, "kid_std": NA})
        return out
    s1, s2 = gen.stats, ref.stats
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewSamplesWarning)
        out["fid"] = frechet_distance(s1.mean, s1.cov, s2.mean, s2.cov)
    out["fid_few_samples"] = min(s1.n, s2.n) < s1.dims
    if FID_INF_MIN <= n1 <= FID_INF_MAX and gen.features is not None:
        # FID_inf (fid_infinity.py): FID extrapolated in 1/N (part of the sample-size bias at a
        # few hundred samples), from subsets of the same features (a few seconds at a few
        # hundred samples)
        from .fid_infinity import fid_infinity

        out.update(fid_infinity((s2.mean, s2.cov), gen.features).to_dict())
    if kid:
        f1, f2 = gen.features, ref.features
        if f1 is None or f2 is None:
            not_applicable(notes, "kid", "a side is given by statistics only, without features")
            out.update({"kid": NA, "kid_std": NA})
        else:
            m, sd = kernel_inception_distance(f1, f2)
            out.update({"kid": m, "kid_std": sd, "kid_subset": kid_subset_size(len(f1), len(f2))})
    return out


def prdc_of(gen: SampleSet, ref: SampleSet, notes: list[str], k: int) -> dict[str, Any]:
    f1, f2 = gen.features, ref.features
    keys = ("precision", "recall", "density", "coverage")
    if f1 is None or f2 is None:
        not_applicable(notes, "precision/recall", "a side is given by statistics only")
        return dict.fromkeys(keys, NA)
    if min(len(f1), len(f2)) <= k:
        not_applicable(notes, "precision/recall", f"{min(len(f1), len(f2))} images in a set; "
                       f"k-NN radii with k={k} need more than {k}")
        return dict.fromkeys(keys, NA)
    # as many real as generated images: coverage's expectation (1 - 1/2^k for one
    # distribution, Naeem et al. 2020) and the k-NN radii assume equal sets; the larger set
    # is subsampled, the same rows every time
    n = min(len(f1), len(f2))
    f1, f2 = _subsample(f1, n), _subsample(f2, n)
    return {**prdc(f2, f1, k), "prdc_n_real": n, "prdc_n_fake": n}


def _subsample(features: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    if len(features) <= n:
        return features
    rows = np.sort(np.random.default_rng(seed).choice(len(features), n, replace=False))
    return features[rows]


def spectrum_of(gen: torch.Tensor | None, ref: torch.Tensor | None, notes: list[str],
                ) -> tuple[dict[str, Any], dict[str, list[float]]]:  # fmt: skip
    """Spectrum metrics and the two curves (for figures)."""
    keys = ("spectral_distance", "hf_deficit", "lf_deficit")
    if gen is None or ref is None:
        not_applicable(notes, "spectrum", "a side is given by statistics only, without images")
        return dict.fromkeys(keys, NA), {}
    if gen.shape[-2:] != ref.shape[-2:]:
        not_applicable(notes, "spectrum", f"image sizes differ ({tuple(gen.shape[-2:])} vs "
                       f"{tuple(ref.shape[-2:])})")
        return dict.fromkeys(keys, NA), {}
    pg, pr = radial_power(gen), radial_power(ref)
    return spectrum_metrics(pr, pg), {"generated": pg.tolist(), "real": pr.tolist()}


def compare_sets(gen: SampleSet, ref: SampleSet, *, kid: bool = True, k: int = 5,
                 notes: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """FID, KID, PRDC and spectrum of ``gen`` against ``ref``: a flat dict; reasons for any
    metric that does not apply are appended to ``notes`` (and to the dict's ``notes``)."""
    own = notes if notes is not None else []
    out = fid_kid(gen, ref, own, kid=kid)
    out.update(prdc_of(gen, ref, own, k))
    spec, _ = spectrum_of(gen.images, ref.images, own)
    out.update(spec)
    if notes is None and own:
        out["notes"] = "; ".join(own)
    return out


def memorization_of(gen: SampleSet, train: SampleSet, held: SampleSet, notes: list[str], *,
                    seed: int = 0):  # fmt: skip
    """The memorization metrics (memorization.py), or None with a note when they cannot be
    computed (statistics-only sets, too few images)."""
    sets = (gen, train, held)
    if any(s.images is None for s in sets):
        not_applicable(notes, "memorization", "needs images of the generated, training and "
                       "held-out sets")
        return None
    small = [f"{s.n} {s.name}" for s in sets if s.n < 2 * MIN_CELL]
    if small:
        not_applicable(notes, "memorization", f"too few images ({', '.join(small)}; needs "
                       f"{2 * MIN_CELL} each)")
        return None
    return memorization(gen.features, train.features, held.features, pixel_space(gen.images),
                        pixel_space(train.images), pixel_space(held.images), seed=seed)
