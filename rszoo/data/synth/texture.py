"""Precomputed, seeded, tileable texture banks (one job: surface appearance of land-cover materials).

Each material (forest canopy, lawn, asphalt, water ...) has one periodic ``512 x 512`` RGB texture built once per
process by spectral synthesis (white noise shaped by a ``1 / f^beta`` spectrum with an inverse FFT, which is periodic
by construction) from a fixed seed. Rendering never loops over pixels in Python: it crops a bank at the *world* pixel
position of the window (so neighbouring tiles continue the same texture) and pastes it through a region mask.

Example:
    >>> img = texture_crop("forest", -100, 37, 64, 48)
    >>> img.size, img.mode
    ((64, 48), 'RGB')
    >>> texture_crop("forest", 412, 37, 8, 8).tobytes() == texture_crop("forest", 412 - 512, 37, 8, 8).tobytes()
    True
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache, lru_cache

import numpy as np
from PIL import Image

__all__ = [
    "BANK_SIZE",
    "MATERIALS",
    "NOISE_OFFSET",
    "is_identity",
    "noise_crop",
    "prepare",
    "texture_crop",
    "texture_crop_core",
    "tint_lut",
]

BANK_SIZE = 512
NOISE_OFFSET = 8  # sensor noise is stored as NOISE_OFFSET + noise, clipped to [0, 2 * NOISE_OFFSET]
_LOCK = threading.Lock()


def _field(
    rng: np.random.Generator, beta: float, low_cut: float = 0.0, high_cut: float | None = None
) -> np.ndarray:
    """Zero-mean, unit-std periodic noise with power spectrum ``1 / f^beta`` (optionally band-limited)."""
    n = BANK_SIZE
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    amp = f ** (-beta / 2.0)
    amp[0, 0] = 0.0
    if low_cut > 0:
        amp[f < low_cut] = 0.0
    if high_cut is not None:
        amp[f > high_cut] = 0.0
    spectrum = (rng.standard_normal(amp.shape) + 1j * rng.standard_normal(amp.shape)) * amp
    out = np.fft.irfft2(spectrum, s=(n, n))
    return (out - out.mean()) / (out.std() + 1e-12)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _rgb(base: tuple[int, int, int], shade: np.ndarray) -> np.ndarray:
    return np.asarray(base, dtype=np.float64)[None, None, :] * shade[..., None]


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: np.ndarray) -> np.ndarray:
    a_ = np.asarray(a, dtype=np.float64)[None, None, :]
    b_ = np.asarray(b, dtype=np.float64)[None, None, :]
    return a_ * (1.0 - t[..., None]) + b_ * t[..., None]


def _blur_periodic(field: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with wrap-around (FFT), keeping the bank tileable."""
    n = field.shape[0]
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    kernel = np.exp(-2.0 * (np.pi * sigma) ** 2 * (fx * fx + fy * fy))
    return np.fft.irfft2(np.fft.rfft2(field) * kernel, s=field.shape)


def _crowns(rng: np.random.Generator, density: float, radius: float) -> np.ndarray:
    """Round tree crowns: random impulses blurred into bumps, lit from the upper left; returns (height, shading)."""
    n = BANK_SIZE
    impulses = (rng.random((n, n)) < density) * rng.uniform(0.6, 1.4, (n, n))
    bumps = _blur_periodic(impulses, radius) * (2.0 * np.pi * radius * radius)
    lit = np.roll(bumps, (1, 1), axis=(0, 1)) - np.roll(bumps, (-1, -1), axis=(0, 1))
    return bumps, lit


def _forest(rng: np.random.Generator) -> np.ndarray:
    big, lit_big = _crowns(rng, 0.012, 2.6)
    small, lit_small = _crowns(rng, 0.02, 1.6)
    height = big + 0.7 * small
    patches = _field(rng, 3.0)
    shade = 0.38 + 0.62 * np.tanh(1.1 * height) + 0.45 * (lit_big + 0.7 * lit_small) + 0.06 * patches
    out = _rgb((56, 86, 48), shade)
    out[..., 0] += 7.0 * patches
    return out


def _grassland(rng: np.random.Generator) -> np.ndarray:
    low, grain = _field(rng, 3.0), _field(rng, 0.0)
    t = _sigmoid(1.5 * low)
    return _mix((104, 136, 72), (132, 146, 84), t) * (1.0 + 0.035 * grain[..., None])


def _cropland(rng: np.random.Generator) -> np.ndarray:
    low, grain = _field(rng, 2.8), _field(rng, 0.0)
    return _rgb((126, 150, 82), 1.0 + 0.07 * low + 0.03 * grain)


def _bare(rng: np.random.Generator) -> np.ndarray:
    low, mid, grain = _field(rng, 3.0), _field(rng, 1.2, low_cut=0.02), _field(rng, 0.0)
    return _rgb((160, 132, 100), 1.0 + 0.09 * low + 0.05 * mid + 0.05 * grain)


def _water(rng: np.random.Generator) -> np.ndarray:
    low, ripple = _field(rng, 3.5), _field(rng, 0.8, low_cut=0.1)
    out = _rgb((44, 70, 84), 1.0 + 0.05 * low + 0.025 * ripple)
    out[..., 1] += 5.0 * low
    return out


def _residential(rng: np.random.Generator) -> np.ndarray:
    paved = _sigmoid(3.0 * (_field(rng, 2.6) - 0.9))  # mostly gardens, some paved yards
    grain = _field(rng, 0.0)
    out = _mix((108, 130, 82), (152, 148, 138), paved) * (1.0 + 0.045 * grain[..., None])
    height, lit = _crowns(rng, 0.0035, 2.4)
    zone = _sigmoid(2.0 * _field(rng, 2.5))
    crown = np.clip(1.4 * np.tanh(1.2 * height) * zone, 0.0, 1.0)[..., None]
    crown_rgb = _rgb((58, 86, 50), 0.75 + 0.5 * lit + 0.25 * np.tanh(height))
    return out * (1.0 - crown) + crown_rgb * crown


def _industrial(rng: np.random.Generator) -> np.ndarray:
    low, stains, grain = _field(rng, 3.0), _field(rng, 1.5, low_cut=0.01), _field(rng, 0.0)
    shade = 1.0 + 0.05 * low - 0.07 * _sigmoid(3.0 * (stains - 1.0)) + 0.035 * grain
    return _rgb((170, 168, 160), shade)


def _airport(rng: np.random.Generator) -> np.ndarray:
    low, grain = _field(rng, 3.0), _field(rng, 0.0)
    return _rgb((128, 150, 92), 1.0 + 0.05 * low + 0.03 * grain)


def _asphalt(base: tuple[int, int, int]) -> Callable[[np.random.Generator], np.ndarray]:
    def make(rng: np.random.Generator) -> np.ndarray:
        low, grain = _field(rng, 3.0), _field(rng, 0.0)
        return _rgb(base, 1.0 + 0.04 * low + 0.04 * grain)

    return make


def _bank(rng: np.random.Generator) -> np.ndarray:
    low, grain = _field(rng, 2.5), _field(rng, 0.0)
    return _rgb((150, 138, 108), 1.0 + 0.07 * low + 0.04 * grain)


# Material -> recipe. Region kinds map to the material of the same name; rivers use "water", banks "bank".
MATERIALS: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "forest": _forest,
    "grassland": _grassland,
    "cropland": _cropland,
    "bare-soil": _bare,
    "water": _water,
    "residential": _residential,
    "industrial": _industrial,
    "airport": _airport,
    "parking": _asphalt((82, 84, 86)),
    "apron": _asphalt((176, 176, 170)),
    "major-road": _asphalt((74, 76, 78)),
    "minor-road": _asphalt((104, 104, 102)),
    "bank": _bank,
}

# Per-variant colour multipliers (R, G, B): the same material looks slightly different from block to block.
_VARIANT_TINTS = {
    "cropland": (
        (1.0, 1.0, 1.0),
        (1.32, 1.12, 0.78),
        (1.02, 0.78, 0.72),
    ),  # green crop, ripe grain, ploughed soil
    "water": ((1.0, 1.0, 1.0), (0.9, 1.08, 0.95), (1.12, 1.05, 0.9)),  # clear, algae-green, turbid
    "bare-soil": ((1.0, 1.0, 1.0), (1.08, 1.02, 0.92), (0.88, 0.86, 0.84)),
}
_DEFAULT_TINTS = ((1.0, 1.0, 1.0), (0.95, 0.98, 0.95), (1.05, 1.03, 0.99))


@cache
def _bank_image(material: str) -> Image.Image:
    if material not in MATERIALS:
        raise KeyError(f"unknown material {material!r}; known: {sorted(MATERIALS)}")
    with _LOCK:
        from rszoo.data.synth.seeding import salt

        rng = np.random.default_rng(salt("texture:" + material))
        arr = np.clip(MATERIALS[material](rng), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "RGB")


@cache
def _noise_bank() -> np.ndarray:
    """The sensor-noise bank, tiled 2 x 2 so any window up to BANK_SIZE is a plain (copy-free) slice."""
    rng = np.random.default_rng(20240607)
    common = rng.standard_normal((BANK_SIZE, BANK_SIZE))
    chroma = rng.standard_normal((BANK_SIZE, BANK_SIZE, 3))
    arr = NOISE_OFFSET + 2.6 * common[..., None] + 1.1 * chroma
    bank = np.clip(np.rint(arr), 0, 2 * NOISE_OFFSET).astype(np.uint8)
    return np.tile(bank, (2, 2, 1))


def _wrapped(bank: Image.core.ImagingCore, x: int, y: int, w: int, h: int) -> Image.core.ImagingCore:
    # on Pillow's core images: a scene takes ~10 crops, and the Image wrappers' per-call work costs more than the
    # copying of small ones
    x0, y0 = x % BANK_SIZE, y % BANK_SIZE
    if x0 + w <= BANK_SIZE and y0 + h <= BANK_SIZE:
        return bank.crop((x0, y0, x0 + w, y0 + h))
    out = Image.core.new(bank.mode, (w, h))
    for ty in range(-y0, h, BANK_SIZE):
        for tx in range(-x0, w, BANK_SIZE):
            out.paste(bank, (tx, ty, tx + BANK_SIZE, ty + BANK_SIZE))
    return out


def prepare() -> None:
    """Build every texture bank now (about a second, once per process); useful before timing or forking workers."""
    for material in MATERIALS:
        _bank_image(material)
    _noise_bank()


def texture_crop(material: str, x: int, y: int, w: int, h: int) -> Image.Image:
    """The ``w x h`` piece of ``material``'s periodic bank whose top-left is world pixel ``(x, y)``."""
    return Image.Image()._new(texture_crop_core(material, x, y, w, h))


def texture_crop_core(material: str, x: int, y: int, w: int, h: int) -> Image.core.ImagingCore:
    """:func:`texture_crop` as a Pillow core image (a new one the caller may modify; used by the renderer)."""
    return _wrapped(_bank_image(material).im, x, y, w, h)


def noise_crop(x: int, y: int, w: int, h: int) -> np.ndarray:
    """Sensor noise at world pixel ``(x, y)``: ``h x w x 3`` uint8 ``NOISE_OFFSET + n``, ``n`` ~ N(0, 3 DN) within
    +-8 (a read-only view for windows up to the bank size)."""
    bank = _noise_bank()
    x0, y0 = x % BANK_SIZE, y % BANK_SIZE
    if w <= BANK_SIZE and h <= BANK_SIZE:
        return bank[y0 : y0 + h, x0 : x0 + w]
    reps = (-(-(y0 + h) // (2 * BANK_SIZE)) + 1, -(-(x0 + w) // (2 * BANK_SIZE)) + 1, 1)
    return np.tile(bank, reps)[y0 : y0 + h, x0 : x0 + w]


@lru_cache(maxsize=4096)
def tint_lut(material: str, variant: int, season: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> list[int]:
    """A 768-entry RGB lookup table applying the material variant's tint and a seasonal colour factor."""
    tints = _VARIANT_TINTS.get(material, _DEFAULT_TINTS)
    r, g, b = tints[variant % 3]
    factors = np.array([r * season[0], g * season[1], b * season[2]])[:, None]
    lut = np.minimum(255, np.floor(np.arange(256)[None, :] * factors + 0.5)).astype(np.int64)
    return lut.ravel().tolist()


def is_identity(material: str, variant: int, season: tuple[float, float, float]) -> bool:
    """Whether :func:`tint_lut` would change nothing (then the renderer skips it)."""
    tints = _VARIANT_TINTS.get(material, _DEFAULT_TINTS)
    return tints[variant % 3] == (1.0, 1.0, 1.0) and season == (1.0, 1.0, 1.0)
