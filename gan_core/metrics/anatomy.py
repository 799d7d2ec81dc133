"""Anatomy read back from a chest radiograph alone: lung fields, heart and thorax widths, the
cardiothoracic ratio (CTR) and the height of the right hemidiaphragm.

No learned model, deterministic: the classic measurement of a PA film done with thresholds and
profiles (the way Morpho-MNIST measures digits, Castro et al., JMLR 2019), so that a generated
image's anatomy can be compared with the anatomy of real images, and on phantoms with the
parameters that drew it (xraygan.data.phantom.phantom_anatomy, same units and names).

Per image (values in [0, 1] display convention, lungs dark):
1. light smoothing (half a pixel at 64 px: quantum noise would otherwise fray the borders), then
   Otsu's threshold splits dark (lungs and the air around the body) from bright (soft tissue,
   bone, mediastinum);
2. dark components touching the image border are the air outside the body; of the rest, the
   largest component whose centre lies left of the middle is the right lung (patient's right is
   on the image left), the largest right of the middle the left lung; holes (vessels) filled;
3. thorax width: the lungs' outermost columns; areas: pixel counts;
4. the right dome: the lowest lung row over the columns 30-55 % of the way from the midline to
   the right lung's lateral wall (the dome's peak, medial to the costophrenic sulcus and to an
   effusion, lateral to the heart);
5. heart width: over the rows up to ``HEART_ROWS`` above the dome (a lung sliver just above the diaphragm borders
   the diaphragm, not the heart), the right lung's rightmost column and the left lung's
   leftmost column, the silhouette spanning the two extremes (the standard CTR adds the
   largest extents on both sides of the midline, which may lie on different rows).

An image without two lung fields of at least ``MIN_LUNG_AREA`` each, or without rows that show
a heart border, is *implausible*: its measurements are NaN and ``plausible`` is 0. So is an
image that is mostly fine-grained texture (``HF_MAX``: the share of its spread left after
smoothing at 1/32 of its side; white noise 0.85-0.97, phantoms at most 0.24), and one whose
lung fields are not roughly mirror images (``MIRROR_IOU_MIN``: overlap of the right lung
mirrored about the midline with the left; phantoms 0.57 typical, 1 % below 0.14): thresholding
noise always finds two dark blobs, a chest has two lungs.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from ..data.phantom import ANATOMY_KEYS

MIN_LUNG_AREA = 0.01  # of the image: a lung field smaller than this is no lung
CTR_RANGE = (0.2, 0.95)  # a measured CTR outside it is no heart between two lungs
DOME_COLUMNS = (0.30, 0.55)  # of the way from the midline to the right lateral wall
DOME_MARGIN = 0.03  # of the image height: rows this close above the dome are not used
HEART_ROWS = 0.17  # of the image height: the heart's borders lie this far above the dome at
# most; higher rows show the hila and great vessels, which cut into the lungs' medial edges
HF_MAX = 0.6  # fine-texture share of an image's spread above which it is no radiograph
MIRROR_IOU_MIN = 0.1  # lungs overlapping less than this when mirrored are two blobs, not lungs
MEASURES = (*ANATOMY_KEYS, "plausible")


def _as_images(images: np.ndarray | torch.Tensor) -> np.ndarray:
    """(N, C, H, W) / (N, H, W) / (H, W); uint8 0..255 or float in [0, 1] or [-1, 1] ->
    (N, H, W) float64 in [0, 1]."""
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if x.dtype == np.uint8:
        x = x.astype(np.float64) / 255.0
    else:
        x = x.astype(np.float64)
        if x.size and x.min() < -0.01:  # the generator's tanh range
            x = (x + 1.0) / 2.0
    if x.ndim == 2:
        x = x[None]
    if x.ndim == 4:
        x = x.mean(1)
    if x.ndim != 3 or x.shape[1] != x.shape[2]:
        raise ValueError(f"expected square images (N, C, H, W), (N, H, W) or (H, W), got {x.shape}")
    return np.clip(x, 0.0, 1.0)


def otsu(values: np.ndarray, bins: int = 128) -> float:
    """Otsu's threshold of ``values`` in [0, 1] (the split maximizing between-class variance)."""
    hist, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    p = hist / max(1, hist.sum())
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    m0 = np.cumsum(p * centres)
    mu = m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu * w0 - m0) ** 2 / (w0 * (1.0 - w0))
    between[~np.isfinite(between)] = -1.0
    return float(edges[int(np.argmax(between)) + 1])


def _two_lungs(smooth: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The largest dark (< t) component not touching the border on each half of the image."""
    s = smooth.shape[0]
    labels, n = ndimage.label(smooth < t)
    if n == 0:
        return None
    index = np.arange(1, n + 1)
    border = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])))
    sizes = ndimage.sum_labels(np.ones_like(labels), labels, index=index)
    cx = ndimage.mean(np.broadcast_to(np.arange(s), (s, s)), labels, index=index)
    best: dict[int, tuple[float, int]] = {}
    for lab, size, x in zip(index, sizes, cx, strict=True):
        if lab in border or size < MIN_LUNG_AREA * s * s:
            continue
        side = 0 if x < (s - 1) / 2 else 1
        if size > best.get(side, (0.0, 0))[0]:
            best[side] = (size, lab)
    if len(best) < 2:
        return None
    return labels == best[0][1], labels == best[1][1]


def lung_masks(img: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(right lung, left lung) boolean masks of one (S, S) image in [0, 1], or None.

    The lungs are the darkest large regions inside the body, but the body's own edge is a ramp
    from black air to soft tissue that any threshold in the lungs' range crosses: the lungs
    are cut out at the highest threshold (from Otsu's down) at which each is still a region of
    its own, then the border is set halfway between the lungs' level and the tissue around
    them (the half-value border of phantom_anatomy), never above that threshold.
    """
    s = img.shape[0]
    smooth = ndimage.gaussian_filter(img, 0.5 * max(1.0, s / 64.0), mode="nearest")
    level = otsu(smooth)
    # the air around the body (dark, connected to the image border), widened by the body's
    # edge ramp, is walled off: the lungs would otherwise leak into it where tissue is thin
    labels, _ = ndimage.label(smooth < 0.5 * level)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    outside = np.isin(labels, border[border > 0])
    smooth = np.where(ndimage.binary_dilation(outside, iterations=max(1, s // 32)), 1.0, smooth)
    found = None
    for t in np.arange(level, 0.05, -0.02):
        found = _two_lungs(smooth, t)
        if found is not None:
            break
    if found is None:
        return None
    # the upper lungs lie under the shoulders' soft tissue and are brighter than the bases: the
    # border is set per row, halfway between the lung and the tissue that bounds it in that row
    # (a closing along the row fills each lung with its bounding level: ``depth`` is how far a
    # pixel lies below it)
    depth = ndimage.grey_closing(smooth, size=(1, s // 2 + 1), mode="nearest") - smooth
    both = found[0] | found[1]
    ref = np.quantile(depth[both], 0.9)
    refined = _two_lungs(-depth, -0.5 * ref)
    masks = refined if refined is not None else found
    return tuple(ndimage.binary_fill_holes(m) for m in masks)  # type: ignore[return-value]


def fine_texture(img: np.ndarray) -> float:
    """The share of ``img``'s standard deviation left after smoothing at 1/32 of its side."""
    spread = float(np.std(img))
    if spread <= 1e-9:
        return 0.0
    return float(np.std(img - ndimage.gaussian_filter(img, img.shape[0] / 32, mode="nearest"))) / spread


def mirror_overlap(right: np.ndarray, left: np.ndarray, mid: float) -> float:
    """IoU of the right lung mirrored about column ``mid`` with the left lung."""
    s = right.shape[1]
    ys, xs = np.nonzero(right)
    xm = np.round(2 * mid - xs).astype(int)
    ok = (xm >= 0) & (xm < s)
    mirrored = np.zeros_like(right)
    mirrored[ys[ok], xm[ok]] = True
    return float((mirrored & left).sum()) / max(1, int((mirrored | left).sum()))


def _measure_one(img: np.ndarray) -> dict[str, float]:
    nan = {k: float("nan") for k in ANATOMY_KEYS}
    if fine_texture(img) > HF_MAX:
        return {**nan, "plausible": 0.0}
    masks = lung_masks(img)
    if masks is None:
        return {**nan, "plausible": 0.0}
    right, left = masks
    s = img.shape[0]
    rcols, lcols = np.nonzero(right.any(0))[0], np.nonzero(left.any(0))[0]
    outer_r, outer_l = rcols.min(), lcols.max()
    thorax = (outer_l - outer_r + 1) / s
    mid = (outer_r + outer_l) / 2
    if mirror_overlap(right, left, mid) < MIRROR_IOU_MIN:
        return {**nan, "plausible": 0.0}
    # right dome: lowest lung pixel of each column in the dome band
    lo = int(np.ceil(mid - DOME_COLUMNS[1] * (mid - outer_r)))
    hi = int(np.floor(mid - DOME_COLUMNS[0] * (mid - outer_r)))
    rows = np.arange(s)[:, None]
    bottoms = np.where(right[:, lo : hi + 1], rows, -1).max(0)
    bottoms = bottoms[bottoms >= 0]
    if len(bottoms) == 0:
        return {**nan, "plausible": 0.0}
    # the dome is nearly flat over the band: the median resists columns the mask cuts short
    dome = float(np.median(bottoms)) + 0.5  # the border lies half a pixel below the last lung row
    top = int(np.floor(dome - max(1.0, DOME_MARGIN * s)))
    first = max(0, int(np.floor(dome - HEART_ROWS * s)))
    both = right[first:top].any(1) & left[first:top].any(1)
    if not both.any():
        return {**nan, "plausible": 0.0}
    r_rows, l_rows = right[first:top][both], left[first:top][both]
    # the right lung's medial edge is furthest from the midline where the heart bulges into it
    inner_r = min(np.nonzero(r)[0].max() for r in r_rows)
    inner_l = max(np.nonzero(r)[0].min() for r in l_rows)
    heart = max(0, inner_l - inner_r - 1) / s
    ctr = heart / thorax
    if not CTR_RANGE[0] <= ctr <= CTR_RANGE[1]:
        return {**nan, "plausible": 0.0}
    ar, al = right.mean(), left.mean()
    return {"ctr": ctr, "heart_width": heart, "thorax_width": thorax, "lung_area_right": ar,
            "lung_area_left": al, "lung_area": ar + al, "diaphragm_y": dome / s, "plausible": 1.0}


def measure_anatomy(images: np.ndarray | torch.Tensor) -> dict[str, np.ndarray]:
    """MEASURES -> float arrays (N,) of the images' anatomy (module docstring); NaN where an
    image is implausible (``plausible`` 0)."""
    x = _as_images(images)
    rows = [_measure_one(img) for img in x]
    return {k: np.array([r[k] for r in rows], np.float64) for k in MEASURES}
