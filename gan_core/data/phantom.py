"""Procedural PA chest radiographs: the built-in dataset, so that everything runs without data.

Each image is drawn the way a radiograph is formed. Anatomy is a set of analytic shapes with
projected thicknesses (cm-like units along the beam): the torso's soft tissue, the air of two
lungs, the heart and mediastinum (soft tissue that displaces lung), bone (spine, ribs,
clavicles, humeral heads), optional nodules and opacities, and vessel markings fanning out of the
hila. Their sum weighted by attenuation coefficients is the line integral ``A = sum(mu * t)``;
the detector sees ``exp(-A)`` with quantum (Poisson-like) noise and unsharpness, and the display
maps ``-log`` of the detected signal through a contrast curve, so that as on a standard PA film
bone and mediastinum are bright, lungs dark and the air around the body black.

Layout follows radiological convention: the patient faces the viewer, so the patient's left
(heart apex, aortic knob, gastric bubble, the lower hemidiaphragm) is on the image right.

Every image has its own random anatomy (lung size and shape, heart size and position, rib
spacing and slope, diaphragm height, body width, patient shift and tilt, exposure) drawn from
``SeedSequence(seed, spawn_key=(index,))``: image ``i`` is the same whatever ``n`` or ``start``.
Rendering is vectorized over a chunk of images with analytic, continuous profiles blurred by
the detector, so 2048 images at 64x64 take a few seconds on one core.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from ..budget import check_allocation
from ..config import DataConfig
from ..errors import ConfigError
from .base import DATASETS, ImageSet
from .imageops import to_uint8

# Bump when the pixels a given (seed, index, size, nodule_prob) produce change: it keys caches.
GENERATOR_VERSION = 1  # the series ``phantom`` names (see PhantomSeries for version 2)
VERSIONS = (1, 2)
DEFAULT_NUM_IMAGES = 2048
_CHUNK = 32  # images rendered together at most: amortizes numpy call overhead
# Peak working memory of _render: ~63 live float32 arrays, 252 bytes per pixel of the chunk
# (tracemalloc, 128 and 256 px). The chunk shrinks with the size so that it stays within
# _WORK_BUDGET: 32 images up to 180 px, 16 at 256 px, one image from 1024 px (264 MB).
WORK_BYTES_PER_PIXEL = 252
_WORK_BUDGET = 256 * 2**20
_MAX_NODULES = 3
_VESSEL_TABLE = 256  # samples of the angular vessel pattern around each hilum

# Attenuation per unit thickness (relative): bone ~2x soft tissue at diagnostic energies, lung
# parenchyma is mostly air, so the lungs enter as soft tissue *removed* along the beam.
_MU_SOFT = 1.0
_MU_BONE = 2.4


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _chord(q: np.ndarray) -> np.ndarray:
    """Thickness of a round object through a point at normalized squared radius ``q``.

    A ray at distance d from the axis of a cylinder of radius 1 crosses 2*sqrt(1 - d^2) of it.
    """
    return np.sqrt(np.clip(1.0 - q, 0.0, None))


def _draw_params(rng: np.random.Generator) -> dict[str, float]:
    """One patient. Ranges chosen by eye against adult PA radiographs (normalized coordinates:
    x, y in [-1, 1], y down). Always the same number of draws in the same order, so optional
    findings never shift the anatomy of an image."""
    u = rng.uniform
    p: dict[str, float] = {}
    # habitus and positioning
    p["body_w"] = u(0.80, 1.00)  # chest half-width
    p["body_d"] = u(0.85, 1.15)  # AP depth: thicker patients have less contrast
    p["shift"] = u(-0.04, 0.04)
    p["tilt"] = u(-0.04, 0.04)  # radians
    p["zoom"] = u(0.94, 1.06)
    # lungs
    p["apex"] = u(-0.80, -0.68)
    p["lung_w"] = u(0.84, 0.92)  # fraction of body_w
    p["lung_wr"] = u(-0.03, 0.03)  # left/right asymmetry
    p["lung_depth"] = u(0.70, 0.82)
    p["dome_r"] = u(0.28, 0.50)  # right hemidiaphragm (image left) peak
    p["dome_dl"] = u(0.00, 0.08)  # left one lies lower
    p["dome_c"] = u(0.45, 0.85)  # dome curvature
    p["cp_angle"] = u(0.10, 0.20)  # depth of the costophrenic sulcus below the dome
    p["med_w"] = u(0.09, 0.13)  # upper mediastinum half-width
    p["knob"] = u(0.03, 0.07)  # aortic knob bulge
    # heart
    p["ra"] = u(0.02, 0.08)  # right atrial bulge of the right heart border
    p["heart_x"] = u(0.10, 0.18)
    p["heart_dy"] = u(0.10, 0.20)  # centre above the left dome
    p["heart_a"] = u(0.34, 0.44)
    p["heart_b"] = u(0.22, 0.28)
    p["heart_rot"] = u(0.45, 0.75)
    # hila and vessels
    p["hilum_y"] = u(-0.20, -0.05)
    p["vessel"] = u(0.16, 0.26)
    # bones
    p["rib_y0"] = u(-0.86, -0.78)
    p["rib_s0"] = u(0.105, 0.135)  # posterior rib spacing at the top
    p["rib_grow"] = u(0.15, 0.35)  # spacing grows downwards
    p["rib_arc"] = u(0.10, 0.18)  # how much the posterior ribs arch
    p["rib_w"] = u(0.36, 0.46)  # rib width / spacing
    p["spine_w"] = u(0.075, 0.095)
    p["clav_y"] = u(-0.66, -0.56)
    p["clav_rise"] = u(0.08, 0.18)
    p["shoulder"] = u(0.0, 1.0)  # how far the shoulders / humeral heads come into view
    # display and detector
    p["gain"] = u(0.90, 1.10)
    p["gamma"] = u(0.85, 1.15)
    p["noise"] = u(0.4, 1.0)
    p["blur"] = u(0.6, 1.0)  # detector unsharpness, output pixels at 64 px
    # findings: drawn always, kept with probability nodule_prob
    p["find_u"] = u(0.0, 1.0)
    p["n_nod"] = float(rng.integers(1, _MAX_NODULES + 1))
    for k in range(_MAX_NODULES):
        p[f"nod{k}_side"] = float(rng.choice([-1.0, 1.0]))
        p[f"nod{k}_u"] = u(0.1, 0.8)
        p[f"nod{k}_y"] = u(-0.50, 0.05)  # above the domes and the heart
        p[f"nod{k}_r"] = u(0.03, 0.06) if k else u(0.03, 0.20)  # the first may be an opacity
        p[f"nod{k}_dens"] = u(0.7, 1.0)
    return p


def _param_arrays(params: list[dict[str, float]]) -> dict[str, np.ndarray]:
    return {k: np.array([p[k] for p in params], np.float32)[:, None, None] for k in params[0]}


def _smooth_noise(rngs: list[np.random.Generator], r: int, cells: int) -> np.ndarray:
    """Per-image band-limited noise field (B, r, r), std ~1, from a cells x cells grid.

    Upsampled by a Gaussian interpolation matrix on each axis (two matmuls), much faster than
    spline zooming of the whole chunk.
    """
    grid = np.stack([g.standard_normal((cells, cells), dtype=np.float32) for g in rngs])
    M = _interp_matrix(r, cells)
    return (M @ grid @ M.T) * np.float32(1.6)


@functools.lru_cache(maxsize=16)
def _interp_matrix(r: int, cells: int) -> np.ndarray:
    fine = (np.arange(r) + 0.5) / r
    coarse = (np.arange(cells) + 0.5) / cells
    w = np.exp(-(((fine[:, None] - coarse[None, :]) * cells / 0.9) ** 2))
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


def _vessel_tables(rngs: list[np.random.Generator]) -> np.ndarray:
    """(B, 2 sides, 2 scales, L) angular profiles around each hilum: sparse peaks are vessels.

    Scale 0 is a few broad trunks near the hilum, scale 1 many thin branches reaching further.
    """
    raw = np.stack([g.standard_normal((2, 2, _VESSEL_TABLE), dtype=np.float32) for g in rngs])
    out = np.empty_like(raw)
    for k, (sigma, thresh) in enumerate(((3.5, 0.4), (1.8, 0.6))):
        sm = ndimage.gaussian_filter1d(raw[:, :, k], sigma, axis=-1, mode="wrap")
        sm /= sm.std(axis=-1, keepdims=True) + 1e-6
        out[:, :, k] = np.clip(sm - thresh, 0.0, None)
    return out


def _pose(P: dict[str, np.ndarray], r: int) -> tuple[np.ndarray, np.ndarray]:
    """Patient coordinates (X, Y) of an r x r pixel grid: shift, tilt and zoom (distance to the
    detector) per image."""
    c = (np.arange(r, dtype=np.float32) + 0.5) / r * 2.0 - 1.0
    x0, y0 = c[None, None, :], c[None, :, None]
    cos, sin = np.cos(P["tilt"]), np.sin(P["tilt"])
    X = ((x0 - P["shift"]) * cos - y0 * sin) / P["zoom"]
    Y = ((x0 - P["shift"]) * sin + y0 * cos) / P["zoom"]
    return X, Y


def _lungs(P: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray):
    """Both lung fields: per side, an ellipse (apex and lateral wall) cut by the diaphragm dome
    below, the mediastinum medially and the heart in front (carved out by the caller). ``u`` is
    the lateral coordinate. Returns (summed profile, dome height per side, per-side profile
    before the depth factor); profiles are 1 inside the field, 0 outside."""
    t_lung = np.zeros_like(X)
    dome = {}
    fields = {}
    for side in (-1.0, 1.0):
        U = side * X
        width = P["body_w"] * (P["lung_w"] + side * P["lung_wr"])
        dome_peak = P["dome_r"] + (P["dome_dl"] if side > 0 else 0.0)
        # hemidiaphragm: a dome peaking mid-lung, falling into the costophrenic sulcus laterally
        # and into the cardiophrenic angle medially
        d_y = dome_peak + P["dome_c"] * (U - 0.42 * width) ** 2 + P["cp_angle"] * _smoothstep(
            (U - 0.6 * width) / (0.4 * width))
        eff = P.get("eff_l" if side > 0 else "eff_r")  # version 2 only
        if eff is not None:
            # pleural effusion: fluid (soft tissue density) fills the costophrenic sulcus and
            # climbs the lateral chest wall as a meniscus, blunting the angle
            meniscus = dome_peak + 0.1 - eff * _smoothstep((U - 0.5 * width) / (0.5 * width))
            d_y = np.where(eff > 0, np.minimum(d_y, meniscus), d_y)
        dome[side] = d_y
        cy = dome_peak + 0.05
        a, b = width - 0.06, cy - P["apex"]
        q = ((U - 0.06) / a) ** 2 + ((Y - cy) / b) ** 2 * (Y < cy)
        lung = _chord(q) ** 0.5  # pleural borders are sharp: the lung fills the cage
        lung = lung * _smoothstep((d_y - Y) / 0.05)  # base on the dome
        # medial border: upper mediastinum, the aortic knob on the patient's left, the right
        # heart border on the patient's right (the heart itself is carved out below)
        lung = lung * np.sqrt(_smoothstep((U - _medial(P, Y, side)) / 0.06))
        fields[side] = lung * (U > 0)
        # deeper at the bases: the lungs widen posteriorly towards the diaphragm
        lung = lung * (0.75 + 0.25 * _smoothstep((Y - P["apex"]) / 1.0))
        t_lung = t_lung + (U > 0) * lung
    return t_lung, dome, fields


def _medial(P: dict[str, np.ndarray], Y: np.ndarray, side: float) -> np.ndarray:
    """Distance of a lung's medial border from the midline at height ``Y``."""
    med = P["med_w"] + (P["knob"] * np.exp(-((Y + 0.38) / 0.10) ** 2) if side > 0 else 0.0)
    med = med + 0.05 * _smoothstep((Y + 0.1) / 0.4)
    if side < 0:  # right atrium
        med = med + P["ra"] * np.exp(-((Y - P["dome_r"] + 0.2) / 0.18) ** 2)
    return med


def _heart(P: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """The heart: a tilted ellipse, apex down and to the image right; 1 at its centre, falling
    steeply to 0 at its border."""
    hx = P["heart_x"]
    hy = P["dome_r"] + P["dome_dl"] - P["heart_dy"]
    ch, sh_ = np.cos(P["heart_rot"]), np.sin(P["heart_rot"])
    dx, dy = X - hx, Y - hy
    hu = (dx * ch + dy * sh_) / P["heart_a"]
    hv = (-dx * sh_ + dy * ch) / P["heart_b"]
    return _chord(hu**2 + hv**2) ** 0.3


def _render(params: list[dict[str, float]], rngs: list[np.random.Generator], size: int,
            nodule_prob: float) -> np.ndarray:
    """Render a chunk of images; returns float32 (B, size, size) in [0, 1]."""
    # Rendered directly at the output size: every profile is continuous and the detector blur
    # below band-limits it, so supersampling changed nothing visible (checked at 64 px).
    r = size
    P = _param_arrays(params)
    B = len(params)
    X, Y = _pose(P, r)

    # --- torso soft tissue: elliptic cross-section; the outline narrows to the neck at the top
    # and widens into the shoulders, which may run off the frame.
    neck = 0.30
    sh = _smoothstep((Y + 0.98) / 0.22)  # 0 at the neck, 1 below the shoulders
    half_w = neck + (P["body_w"] + 0.10 + 0.12 * P["shoulder"] - neck) * sh
    half_w = half_w - 0.10 * _smoothstep((Y + 0.70) / 0.5)  # shoulders -> chest wall
    half_w = half_w - 0.04 * _smoothstep((Y - 0.6) / 0.4)  # waist
    t_soft = 2.0 * P["body_d"] * _chord((X / half_w) ** 2)
    # neck is thinner than the chest along the beam
    t_soft *= 0.55 + 0.45 * sh

    # --- lungs and heart (_lungs, _heart: shared with the recorded anatomy of _anatomy)
    t_lung, dome, _ = _lungs(P, X, Y)
    t_lung *= P["lung_depth"] * 2.0 * P["body_d"]
    # The heart is anterior, so the lung behind it is thinned, not removed (retrocardiac lung
    # stays faintly visible).
    heart = _heart(P, X, Y)
    t_lung *= 1.0 - 0.95 * heart

    # --- vessel markings and interstitium: angular profiles fanning out of each hilum, bent by
    # a smooth noise field, fading towards the periphery (vessels taper, and the outer third of a
    # normal lung shows few markings).
    warp = _smooth_noise(rngs, r, 8)
    tex = _smooth_noise(rngs, r, 24)
    tables = _vessel_tables(rngs)
    vessels = np.zeros_like(X)
    for k, side in enumerate((-1.0, 1.0)):
        hx_s = side * (P["med_w"] + 0.06)
        ddx, ddy = side * (X - hx_s), Y - P["hilum_y"]
        rad = np.sqrt(ddx**2 + ddy**2)
        ang = np.arctan2(ddy, ddx) + 0.25 * warp
        idx = (ang / (2 * np.pi) + 0.5) * _VESSEL_TABLE
        i0 = np.floor(idx).astype(np.int64)
        fr = idx - i0
        fr = fr.reshape(B, -1)
        fade = _smoothstep((rad - 0.05) / 0.2)  # no visible convergence point
        i0 = i0.reshape(B, -1) % _VESSEL_TABLE
        i1 = (i0 + 1) % _VESSEL_TABLE
        for scale, (amp, reach) in enumerate(((1.0, 0.30), (0.7, 0.55))):
            tab = tables[:, k, scale, :]
            prof = np.take_along_axis(tab, i0, axis=1) * (1 - fr)
            prof += np.take_along_axis(tab, i1, axis=1) * fr
            vessels += amp * prof.reshape(B, r, r) * np.exp(-rad / reach) * fade
        vessels += 1.0 * np.exp(-((rad / 0.10) ** 2))  # the hilar shadow itself
    lung_mask = np.clip(t_lung / (0.3 * P["body_d"]), 0.0, 1.0)
    t_soft_extra = P["vessel"] * (vessels * lung_mask + 0.6 * tex * lung_mask)

    # --- findings: nodules (small, sharp) and one possibly large soft opacity.
    if nodule_prob > 0:
        present = (P["find_u"] < nodule_prob).astype(np.float32)
        for k in range(_MAX_NODULES):
            on = present * (P["n_nod"] > k)
            side = P[f"nod{k}_side"]
            # inside the lung at that height: it narrows towards the apex
            below_apex = np.clip((P[f"nod{k}_y"] - P["apex"]) / 0.7, 0.3, 1.0)
            lung_w = P["body_w"] * P["lung_w"] * np.sqrt(below_apex)
            nx = side * (P["med_w"] + 0.1 + P[f"nod{k}_u"] * (lung_w - P["med_w"] - 0.15))
            rr = P[f"nod{k}_r"]
            q = ((X - nx) ** 2 + (Y - P[f"nod{k}_y"]) ** 2) / rr**2
            blob = _chord(q) if k else np.exp(-q * 1.5)  # opacities have fuzzy margins
            # a sphere's chord grows with its radius: thickness ~ 2 r at the centre
            t_soft_extra = t_soft_extra + on * 8.0 * rr * P[f"nod{k}_dens"] * blob * lung_mask

    # --- bone
    spine = _chord((X / P["spine_w"]) ** 2) * _smoothstep((Y + 1.05) / 0.1)
    # vertebral bodies and discs: period tied to the posterior ribs, one rib per vertebra
    rib_s = P["rib_s0"]
    spine = spine * (0.85 + 0.15 * np.cos(2 * np.pi * (Y - P["rib_y0"]) / rib_s))
    pedicles = sum(_chord(((X - s_ * P["spine_w"] * 0.6) / 0.025) ** 2 + (
        np.sin(np.pi * (Y - P["rib_y0"]) / rib_s) / 0.5) ** 2) for s_ in (-1.0, 1.0))
    t_bone = 0.18 * spine + 0.03 * pedicles

    # ribs: every rib of a side follows one arched centerline shifted vertically; a warped
    # vertical coordinate turns "which rib and how far from its centre" into a periodic phase,
    # so all ribs cost a handful of array operations.
    for side in (-1.0, 1.0):
        U = side * X
        width = P["body_w"] * (P["lung_w"] + side * P["lung_wr"]) + 0.05
        uu = np.clip(U / width, 0.0, 1.2)
        # posterior ribs: rise from the spine, arch, then fall along the lateral chest wall
        arch = -P["rib_arc"] * (1.0 - ((uu - 0.45) / 0.5) ** 2) + 0.25 * np.clip(uu - 0.8, 0, None)
        v = Y - arch * (1.0 + 0.5 * (Y + 1.0)) - P["rib_y0"]
        g = P["rib_grow"]
        phase = np.log1p(g * np.clip(v, -0.2, None)) / (g * rib_s)
        d = (phase - np.floor(phase) - 0.5) / (0.5 * P["rib_w"])
        prof = _chord(d**2)
        cortex = prof - 0.6 * _chord((d / 0.7) ** 2)  # hollow: denser edges, as on films
        cage = _smoothstep((width + 0.02 - U) / 0.08) * _smoothstep((U - 0.07) / 0.06)
        cage = cage * (v > -0.03) * (phase < 10.5)
        # anterior ribs: from the lateral wall down towards the sternum, fainter (thin, far from
        # the detector) and ending at the cartilage mid-way
        va = Y + 0.55 * (uu - 1.0) - P["rib_y0"] - 0.18
        pa = va / (rib_s * 1.15)
        da = (pa - np.floor(pa) - 0.5) / 0.22
        ant = _chord(da**2) * _smoothstep((uu - 0.30) / 0.2) * (uu < 1.0) * (va > 0) * (pa < 6)
        t_bone = t_bone + 0.07 * (0.6 * prof + 0.8 * cortex) * cage + 0.035 * ant

        # clavicle: S-shaped band from the sternal notch up to the acromion
        s = np.clip((U - 0.05) / 0.55, 0.0, 1.0)
        cl_y = P["clav_y"] - P["clav_rise"] * s + 0.03 * np.sin(2 * np.pi * s)
        cl = _chord(((Y - cl_y) / (0.045 - 0.015 * s)) ** 2) * (U > 0.05) * _smoothstep((0.72 - U) / 0.1)
        t_bone = t_bone + 0.16 * cl * (0.8 + 0.4 * s)
        # humeral head at the shoulder corner
        hd = ((U - P["body_w"] - 0.16) ** 2 + (Y + 0.74) ** 2) / 0.18**2
        t_bone = t_bone + 0.25 * P["shoulder"] * _chord(hd)

    # --- trachea and main bronchi: an air column in the upper mediastinum splitting at the carina
    carina = P["hilum_y"] - 0.12
    tr_x = X - 0.02 * (Y - carina)  # deviated slightly to the patient's right by the aorta
    trachea = _chord((tr_x / 0.04) ** 2) * _smoothstep((carina - Y) / 0.08)
    for side in (-1.0, 1.0):
        bx = side * X - 0.45 * np.clip(Y - carina, 0, None) ** 0.9
        trachea = trachea + 0.7 * _chord((bx / 0.03) ** 2) * (Y > carina) * (Y < carina + 0.2)
    t_lung = t_lung + 0.30 * P["body_d"] * trachea

    # --- gastric bubble under the left hemidiaphragm (image right)
    gb = _chord(((X - 0.42) / 0.15) ** 2 + ((Y - dome[1.0] - 0.12) / 0.08) ** 2)
    t_lung = t_lung + 0.35 * gb * (Y > dome[1.0])

    # --- line integral, detector, display
    A = _MU_SOFT * (t_soft - t_lung + t_soft_extra) + _MU_BONE * t_bone
    A = np.clip(A, 0.0, None)
    # unsharpness (focal spot, scatter, detector) before sampling
    # in output pixels: a 64 px image is a heavily downsampled film whose blur is mostly the
    # antialiasing; larger renders stay sharp
    sigma = P["blur"][:, 0, 0] * (size / 64.0) ** 0.5
    A = np.stack([
        ndimage.gaussian_filter(a, float(s_), mode="nearest") for a, s_ in zip(A, sigma, strict=True)
    ])
    # quantum noise in the transmitted domain: variance proportional to the signal, so dense
    # regions (less signal) are relatively noisier, as with real photon counts
    k_exp = 1.6  # exposure scale: transmitted fraction through the mediastinum ~ e^-3
    signal = np.exp(-k_exp * A)
    photons = 4000.0 * (64.0 / size) / P["noise"]
    qn = np.stack([g.standard_normal((r, r), dtype=np.float32) for g in rngs])
    signal = signal + np.sqrt(signal / photons) * qn
    A = -np.log(np.clip(signal, 1e-4, None)) / k_exp
    # display: the log signal normalized to the patient's depth (processing equalizes
    # exposure), then a soft shoulder so bone over the mediastinum does not clip hard
    v = P["gain"] * A / (2.0 * P["body_d"]) * 0.85
    knee = 0.72
    out = np.where(v < knee, v, 1.0 - (1.0 - knee) * np.exp(-(v - knee) / (1.0 - knee)))
    out = np.clip(out, 0.0, 1.0) ** P["gamma"]
    return out.astype(np.float32)


def _rng(seed: int, index: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, *stream)))


# ---------------------------------------------------------------------------- series, findings
V2_DEFAULTS = {"cardiomegaly": 0.3, "effusion": 0.2, "nodule": 0.1}
CARDIOMEGALY_CTR = 0.5  # the radiological rule: a cardiothoracic ratio above 0.5 is enlarged
# Version 2 draws the CTR from two bands that leave a gap around the 0.5 rule, so that a label
# is a fact of the image a measurement can recover, not a coin flip at the boundary.
CTR_NORMAL = (0.40, 0.48)
CTR_ENLARGED = (0.52, 0.64)
_HEART_CLEARANCE = 0.16  # v2: the heart's widest point lies this far above the left dome
DOME_MARGIN = 0.06  # rows this close above a dome do not show a heart border (a lung sliver)
LABELS = ("cardiomegaly", "effusion", "nodule")


@dataclass(frozen=True)
class PhantomSeries:
    """Which phantoms: the generator version and each finding's prevalence (a probability per
    image). Version 1 is the original series (nodules only); version 2 adds cardiomegaly (an
    enlarged heart, CTR > 0.5) and pleural effusion (fluid blunting a costophrenic angle), and
    places the heart so that its widest point borders lung."""

    version: int = GENERATOR_VERSION
    nodule: float = 0.0
    cardiomegaly: float = 0.0
    effusion: float = 0.0

    def __post_init__(self) -> None:
        if self.version not in VERSIONS:
            raise ConfigError(f"phantoms: generator version must be one of "
                              f"{', '.join(map(str, VERSIONS))}, got {self.version}")
        for name in LABELS:
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"phantoms: {name} prevalence must be in [0, 1], got {p}")
        if self.version == 1 and (self.cardiomegaly or self.effusion):
            raise ConfigError("phantoms: version 1 draws no cardiomegaly or effusion; use v2")

    @classmethod
    def parse(cls, arg: str | None, where: str = "data.source") -> PhantomSeries:
        """The argument of ``phantom:ARG``: ``v2`` or ``v2,cardiomegaly=0.5,effusion=0.1``
        (unnamed prevalences keep version 2's defaults); ``v1`` or none: the original series.
        ``where`` names the setting in errors."""
        if arg is None:
            return cls()
        what = f"{where}: 'phantom:{arg}'" if where == "data.source" else f"{where} {arg!r}"
        head, *rest = [s.strip() for s in arg.split(",")]
        if head not in ("v1", "v2"):
            raise ConfigError(f"{what}: expected v1 or v2 first, e.g. phantom:v2,cardiomegaly=0.3")
        version = int(head[1:])
        values = dict(V2_DEFAULTS) if version == 2 else {}
        given: set[str] = set()
        for item in rest:
            name, sep, value = item.partition("=")
            name = name.strip()
            if not sep or name not in LABELS:
                raise ConfigError(f"{what}: {item!r} is not NAME=P with NAME one of "
                                  f"{', '.join(LABELS)}")
            if name in given:  # "last wins" would train on a value the reader did not see
                raise ConfigError(f"{what}: {name} is given twice; give each finding once")
            given.add(name)
            try:
                values[name] = float(value)
            except ValueError:
                raise ConfigError(f"{what}: {name} needs a probability, got {value!r}") from None
        try:
            return cls(version=version, **values)
        except ConfigError as e:  # the series' own checks: said of the setting that gave it
            raise ConfigError(f"{what}: {str(e).removeprefix('phantoms: ')}") from None

    @property
    def spec(self) -> str:
        """The ``data.source`` naming this series."""
        if self == PhantomSeries():
            return "phantom"
        probs = ",".join(f"{k}={getattr(self, k):g}" for k in LABELS)
        return f"phantom:v{self.version},{probs}"


def _draw_v2(seed: int, index: int, p: dict[str, float], series: PhantomSeries) -> dict[str, float]:
    """Version 2's findings, drawn from a stream of their own (the v1 anatomy draws and the
    noise stay those of image ``index``): the heart scaled to a drawn CTR and placed with its
    widest point above the diaphragm, and an effusion on one side or both."""
    rng = _rng(seed, index, 2)
    u = rng.uniform
    cm_u, ctr_normal, ctr_big = u(0, 1), u(*CTR_NORMAL), u(*CTR_ENLARGED)
    eff_u, eff_side, eff_r, eff_l = u(0, 1), u(0, 1), u(0.10, 0.25), u(0.10, 0.25)
    p = dict(p)
    target = ctr_big if cm_u < series.cardiomegaly else ctr_normal
    thorax = 2.0 * p["body_w"] * p["lung_w"]
    c, s = np.cos(p["heart_rot"]), np.sin(p["heart_rot"])
    wx = float(np.hypot(p["heart_a"] * c, p["heart_b"] * s))  # ellipse half-extent in x
    med = _right_border(p)
    # the silhouette spans [-max(k*wx - hx, med), hx + k*wx]: solve for the ellipse's scale k
    k = target * thorax / (2.0 * wx)
    if k * wx - p["heart_x"] < med:  # the right heart border is the atrium, not the ellipse
        k = (target * thorax - med - p["heart_x"]) / wx
    k = float(np.clip(k, 0.6, 1.6))  # keeps the heart a heart; the recorded CTR says what it is
    p["heart_a"] *= k
    p["heart_b"] *= k
    wx *= k
    y_off = (p["heart_a"] ** 2 - p["heart_b"] ** 2) * s * c / wx  # widest point below centre
    p["heart_dy"] = _HEART_CLEARANCE + y_off
    present = eff_u < series.effusion
    p["eff_r"] = eff_r if present and eff_side < 0.7 else 0.0
    p["eff_l"] = eff_l if present and eff_side >= 0.4 else 0.0
    return p


def _right_border(p: dict[str, float]) -> float:
    """How far the right heart border (image left: mediastinum and right atrium) reaches from
    the midline, over the rows above the right dome that show it."""
    ys = np.linspace(p["dome_r"] - 0.7, p["dome_r"] - DOME_MARGIN, 141)
    return float(_medial({k: np.float64(v) for k, v in p.items()}, ys, -1.0).max())


def _params(seed: int, index: int, series: PhantomSeries) -> tuple[np.random.Generator, dict[str, float]]:
    rng = _rng(seed, index)
    p = _draw_params(rng)
    if series.version >= 2:
        p = _draw_v2(seed, index, p, series)
    return rng, p


def _check(n: int, size: int, start: int, series: PhantomSeries) -> None:
    if n < 0 or start < 0:
        raise ConfigError(f"phantoms: n and start must be >= 0, got n={n}, start={start}")
    if size < 8:
        raise ConfigError(f"phantoms: image size must be >= 8, got {size}")


def _series(nodule_prob: float, series: PhantomSeries | None) -> PhantomSeries:
    if series is None:
        if not 0.0 <= nodule_prob <= 1.0:
            raise ConfigError(f"phantoms: nodule_prob must be in [0, 1], got {nodule_prob}")
        return PhantomSeries(nodule=nodule_prob)
    if nodule_prob:
        raise ConfigError("phantoms: give the nodule prevalence in the series, not nodule_prob")
    return series


def chunk_size(size: int) -> int:
    """Images rendered together at ``size`` px (pixels do not depend on it: see the tests)."""
    return max(1, min(_CHUNK, _WORK_BUDGET // (WORK_BYTES_PER_PIXEL * size * size)))


def phantom_bytes(n: int, size: int, *, itemsize: int = 4, extra_per_pixel: int = 0) -> int:
    """Peak bytes of generating ``n`` phantoms at ``size`` px into an array of ``itemsize``
    bytes per pixel (4: float32, 1: uint8), plus ``extra_per_pixel`` bytes of copies."""
    pixels = size * size
    return n * pixels * (itemsize + extra_per_pixel) + chunk_size(size) * pixels * WORK_BYTES_PER_PIXEL


def _check_memory(n: int, size: int, itemsize: int, extra_per_pixel: int = 0) -> None:
    check_allocation(
        phantom_bytes(n, size, itemsize=itemsize, extra_per_pixel=extra_per_pixel),
        f"generating {n} chest phantoms of {size}x{size}", "--image-size or --num-images",
    )


def _fill(out: np.ndarray, n: int, size: int, seed: int, start: int, series: PhantomSeries,
          convert=None) -> np.ndarray:
    step = chunk_size(size)
    for lo in range(0, n, step):
        idx = range(start + lo, start + min(n, lo + step))
        rngs, params = zip(*(_params(seed, i, series) for i in idx), strict=True)
        chunk = _render(list(params), list(rngs), size, series.nodule)
        out[lo : lo + len(idx)] = chunk if convert is None else convert(chunk)
    return out


def generate_phantoms(n: int, size: int, seed: int = 0, *, start: int = 0,
                      nodule_prob: float = 0.0, series: PhantomSeries | None = None) -> np.ndarray:
    """Images ``start .. start+n-1`` of the phantom series ``seed``: float32 (n, size, size) in
    [0, 1], lungs dark and bone bright. Image ``i`` depends only on (seed, i, size, series);
    ``nodule_prob`` is short for ``series=PhantomSeries(nodule=nodule_prob)`` (version 1).

    The memory it needs is checked first (ResourceError naming --image-size / --num-images).
    """
    series = _series(nodule_prob, series)
    _check(n, size, start, series)
    _check_memory(n, size, 4)
    return _fill(np.empty((n, size, size), np.float32), n, size, seed, start, series)


def generate_phantoms_uint8(n: int, size: int, seed: int = 0, *, start: int = 0,
                            nodule_prob: float = 0.0, series: PhantomSeries | None = None,
                            extra_per_pixel: int = 0) -> np.ndarray:
    """``to_uint8(generate_phantoms(...))`` converted chunk by chunk: a quarter of the memory
    (2048 images at 256 px: 134 MB instead of 537 MB plus two float temporaries)."""
    series = _series(nodule_prob, series)
    _check(n, size, start, series)
    _check_memory(n, size, 1, extra_per_pixel)
    return _fill(np.empty((n, size, size), np.uint8), n, size, seed, start, series, to_uint8)


def phantom_image(index: int, size: int, seed: int = 0, *, nodule_prob: float = 0.0,
                  series: PhantomSeries | None = None) -> np.ndarray:
    """One phantom, float32 (size, size) in [0, 1]; equal to ``generate_phantoms(...)[index]``."""
    return generate_phantoms(1, size, seed, start=index, nodule_prob=nodule_prob, series=series)[0]


def phantom_fingerprint(n: int, size: int, seed: int, nodule_prob: float = 0.0,
                        series: PhantomSeries | None = None) -> str:
    series = _series(nodule_prob, series)
    spec = {"generator": "phantom", "version": series.version, "n": n, "size": size,
            "seed": seed, "nodule_prob": series.nodule}
    if series.version > 1:  # version 1 keeps its original key (caches made before stay valid)
        spec.update(cardiomegaly=series.cardiomegaly, effusion=series.effusion)
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------------- recorded anatomy
ANATOMY_GRID = 128  # px of the grid lung areas are counted on (independent of the image size)
ANATOMY_KEYS = ("ctr", "heart_width", "thorax_width", "lung_area_right", "lung_area_left",
                "lung_area", "diaphragm_y")
"""What each phantom records, in image units: widths as fractions of the image width, areas as
fractions of the image area, heights as fractions of the image height from the top. Sides are
the patient's: the right lung is on the image left."""


def _anatomy(params: list[dict[str, float]], series: PhantomSeries) -> dict[str, np.ndarray]:
    P = _param_arrays(params)
    X, Y = _pose(P, ANATOMY_GRID)
    _, _, fields = _lungs(P, X, Y)
    carve = 1.0 - 0.95 * _heart(P, X, Y)  # as in _render: the heart hides the lung behind it
    # a lung field is where the lung profile is at least half its full value
    right = (fields[-1.0] * carve > 0.5).mean(axis=(1, 2))
    left = (fields[1.0] * carve > 0.5).mean(axis=(1, 2))
    out: dict[str, list[float]] = {k: [] for k in (*ANATOMY_KEYS, *LABELS)}
    for p, ar, al in zip(params, right, left, strict=True):
        wx = float(np.hypot(p["heart_a"] * np.cos(p["heart_rot"]), p["heart_b"] * np.sin(p["heart_rot"])))
        heart = max(wx - p["heart_x"], _right_border(p)) + p["heart_x"] + wx
        thorax = 2.0 * p["body_w"] * p["lung_w"]  # lateral lung borders: the inner rib cage
        zoom, tilt = p["zoom"], p["tilt"]
        # top of the right dome where the lung fades to half (its base ramp is 0.05 deep),
        # mapped back through the pose to image rows
        dome_x = -0.42 * p["body_w"] * (p["lung_w"] - p["lung_wr"])
        dome_y = zoom * (-dome_x * np.sin(tilt) + (p["dome_r"] - 0.025) * np.cos(tilt))
        ctr = heart / thorax
        vals = {"ctr": ctr, "heart_width": zoom * heart / 2.0, "thorax_width": zoom * thorax / 2.0,
                "lung_area_right": float(ar), "lung_area_left": float(al),
                "lung_area": float(ar + al), "diaphragm_y": (dome_y + 1.0) / 2.0,
                "cardiomegaly": float(ctr > CARDIOMEGALY_CTR),
                "effusion": float(p.get("eff_r", 0.0) > 0 or p.get("eff_l", 0.0) > 0),
                "nodule": float(p["find_u"] < series.nodule)}
        for k, v in vals.items():
            out[k].append(v)
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def phantom_anatomy(n: int, seed: int = 0, *, start: int = 0, nodule_prob: float = 0.0,
                    series: PhantomSeries | None = None) -> dict[str, np.ndarray]:
    """The recorded anatomy and labels of images ``start .. start+n-1`` (ANATOMY_KEYS and
    LABELS -> float arrays of length n; labels 0/1), from their generating parameters: no
    pixels are rendered, and the values do not depend on the image size.

    The CTR is the cardiac silhouette's width (right heart border, the atrium or the ellipse,
    to the left border) over the thorax's inner width; cardiomegaly is CTR > 0.5. In version 1
    the heart's widest point may lie behind the diaphragm, where no image shows it: measurers
    are validated on version 2.
    """
    series = _series(nodule_prob, series)
    _check(n, 8, start, series)
    parts = []
    for lo in range(0, n, _CHUNK):
        idx = range(start + lo, start + min(n, lo + _CHUNK))
        parts.append(_anatomy([_params(seed, i, series)[1] for i in idx], series))
    if not parts:
        return {k: np.zeros(0) for k in (*ANATOMY_KEYS, *LABELS)}
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


@functools.lru_cache(maxsize=4)
def _cached_uint8(n: int, size: int, seed: int, channels: int = 1,
                  series: PhantomSeries = PhantomSeries()) -> np.ndarray:  # noqa: B008 (frozen)
    # Cached per process: sweeps and tests build many runs on the same phantom set. The loader
    # copies the array into a tensor (times the channels): part of the memory check.
    arr = generate_phantoms_uint8(n, size, seed, series=series, extra_per_pixel=channels)
    arr.setflags(write=False)
    return arr


@DATASETS.register("phantom")
def load_phantoms(arg: str | None, cfg: DataConfig, image_size: int, channels: int) -> ImageSet:
    """``phantom``: ``cfg.num_images`` procedural radiographs (0 -> 2048) of series ``cfg.seed``;
    ``phantom:v2[,cardiomegaly=P][,effusion=P][,nodule=P]``: the labelled series (PhantomSeries)."""
    series = PhantomSeries.parse(arg)
    n = cfg.num_images or DEFAULT_NUM_IMAGES
    imgs = torch.from_numpy(_cached_uint8(n, image_size, cfg.seed, max(1, channels), series).copy())[:, None]
    if channels > 1:
        imgs = imgs.expand(-1, channels, -1, -1).contiguous()
    findings = "" if series.version == 1 else (
        ", " + ", ".join(f"{k} {getattr(series, k):g}" for k in LABELS))
    return ImageSet(
        images=imgs,
        fingerprint=phantom_fingerprint(n, image_size, cfg.seed, series=series),
        description=f"{n} chest phantoms (seed {cfg.seed}, {image_size}x{image_size}, "
        f"generator v{series.version}{findings})",
    )
