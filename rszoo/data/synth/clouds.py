"""Soft clouds and their shadows with a stated cover fraction (one job: the cloud layer).

The cloud field is fractal value noise: four octaves of a hashed lattice (spacing ``~220 m / gsd`` pixels, halving
each octave), smoothstep-interpolated. It is evaluated separably as ``Wy @ L @ Wx.T`` (two interpolation-weight
matrices and the lattice), so any window costs two small matrix products and is a pure function of scene pixel
coordinates: windows agree with the full image.

The threshold is the ``(1 - cloud_cover)`` quantile of the field over the whole scene (every pixel up to 512 px per
side, a regular subsample above), so the cloud mask ``alpha >= 0.5`` covers the requested fraction. Opacity ramps
softly around the threshold. Cloud shadows are the same alpha shifted by the shadow of a cloud layer 1200 m up.

Example:
    >>> from rszoo.data.synth import generate_scene
    >>> scene = generate_scene(4, size=128, cloud_cover=0.3)
    >>> round(float(cloud_mask(scene).mean()), 2)
    0.3
"""

from __future__ import annotations

import math

import numpy as np

from rszoo.data.synth.graph import Scene
from rszoo.data.synth.seeding import hash_grid, mix
from rszoo.data.synth.sun import shadow_offset

__all__ = ["CLOUD_HEIGHT_M", "apply_clouds", "cloud_alpha", "cloud_mask"]

CLOUD_HEIGHT_M = 1200.0
_OCTAVES = 4
_CLOUD_RGB = np.array([242.0, 244.0, 248.0], dtype=np.float32)


def _weights(coords: np.ndarray, spacing: float) -> tuple[np.ndarray, int]:
    """Interpolation matrix (len(coords) x lattice points) for smoothstep value noise along one axis."""
    g = coords / spacing
    i = np.floor(g).astype(np.int64)
    t = g - i
    t = t * t * (3.0 - 2.0 * t)
    i_min = int(i.min())
    n = int(i.max()) - i_min + 2
    wmat = np.zeros((len(coords), n), dtype=np.float64)
    rows = np.arange(len(coords))
    wmat[rows, i - i_min] = 1.0 - t
    wmat[rows, i - i_min + 1] = t
    return wmat, i_min


def _field(scene: Scene, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Cloud field at pixel-centre coordinates ``xs`` (columns) and ``ys`` (rows)."""
    acq = scene.acquisition
    assert acq is not None
    base = max(24.0, 220.0 / scene.gsd)
    out = np.zeros((len(ys), len(xs)), dtype=np.float64)
    amp = 1.0
    for octave in range(_OCTAVES):
        spacing = base / (2**octave)
        wy, iy0 = _weights(ys, spacing)
        wx, ix0 = _weights(xs, spacing)
        iy = np.arange(iy0, iy0 + wy.shape[1])[:, None]
        ix = np.arange(ix0, ix0 + wx.shape[1])[None, :]
        lattice = hash_grid(mix(acq.cloud_seed, "cloud", octave), ix + 0 * iy, iy + 0 * ix)
        out += amp * (wy @ lattice @ wx.T)
        amp *= 0.5
    return out


_THRESHOLDS: dict[tuple, tuple[float, float]] = {}


def _threshold_for(scene: Scene) -> tuple[float, float]:
    """``(threshold, softness)`` so that ``field >= threshold`` covers ``cloud_cover`` of the scene."""
    acq = scene.acquisition
    assert acq is not None
    key = (acq.cloud_seed, acq.cloud_cover, scene.width, scene.height, scene.gsd)
    cached = _THRESHOLDS.get(key)
    if cached is not None:
        return cached
    stride = max(1, math.ceil(max(scene.width, scene.height) / 512))
    xs = np.arange(0, scene.width, stride, dtype=np.float64) + 0.5
    ys = np.arange(0, scene.height, stride, dtype=np.float64) + 0.5
    f = _field(scene, xs, ys).ravel()
    cover = acq.cloud_cover
    if cover >= 1.0:
        thr = float(f.min()) - 1.0
    elif cover <= 0.0:
        thr = float(f.max()) + 1.0
    else:
        k = min(len(f) - 1, max(0, round((1.0 - cover) * len(f))))
        thr = float(np.partition(f, k)[k])
    soft = max(1e-3, 0.3 * float(f.std()))
    if len(_THRESHOLDS) > 512:
        _THRESHOLDS.clear()
    _THRESHOLDS[key] = (thr, soft)
    return thr, soft


def cloud_alpha(
    scene: Scene, window: tuple[int, int, int, int] | None = None, shift: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """Cloud opacity in ``[0, 1]`` (float32, ``h x w``) of a window; zeros without clouds.

    ``shift`` evaluates the layer displaced by ``(dx, dy)`` pixels (used for cloud shadows).
    """
    x0, y0, w, h = window if window is not None else (0, 0, scene.width, scene.height)
    acq = scene.acquisition
    if acq is None or acq.cloud_cover <= 0:
        return np.zeros((h, w), dtype=np.float32)
    thr, soft = _threshold_for(scene)
    xs = np.arange(x0, x0 + w, dtype=np.float64) + 0.5 - shift[0]
    ys = np.arange(y0, y0 + h, dtype=np.float64) + 0.5 - shift[1]
    f = _field(scene, xs, ys)
    return np.clip(0.5 + (f - thr) / soft, 0.0, 1.0).astype(np.float32)


def cloud_mask(scene: Scene, window: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Boolean cloud mask (``alpha >= 0.5``): its mean over the scene is the acquisition's ``cloud_cover``."""
    return cloud_alpha(scene, window) >= 0.5


def apply_clouds(rgb: np.ndarray, scene: Scene, x0: int, y0: int) -> np.ndarray:
    """Darken cloud shadows and blend clouds over an ``h x w x 3`` uint8 tile located at ``(x0, y0)``."""
    acq = scene.acquisition
    if acq is None or acq.cloud_cover <= 0:
        return rgb
    h, w = rgb.shape[:2]
    thr, soft = _threshold_for(scene)
    xs = np.arange(x0, x0 + w, dtype=np.float64) + 0.5
    ys = np.arange(y0, y0 + h, dtype=np.float64) + 0.5
    field = _field(scene, xs, ys)
    alpha = np.clip(0.5 + (field - thr) / soft, 0.0, 1.0).astype(np.float32)
    dx, dy = shadow_offset(CLOUD_HEIGHT_M, acq.sun_azimuth, acq.sun_elevation, scene.gsd)
    shade = cloud_alpha(scene, (x0, y0, w, h), shift=(dx, dy))
    out = rgb.astype(np.float32)
    out *= (1.0 - 0.45 * shade)[..., None]
    # thick cores are bright white, thin edges greyer (self-shadowed bases)
    thickness = np.clip((field - thr) / (4.0 * soft), 0.0, 1.0).astype(np.float32)[..., None]
    cloud = _CLOUD_RGB * (0.84 + 0.16 * thickness)
    out = out * (1.0 - alpha[..., None]) + cloud * alpha[..., None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
