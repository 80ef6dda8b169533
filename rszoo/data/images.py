"""Images as remote-sensing users have them: PNG/JPEG, GeoTIFF and Cloud Optimized GeoTIFF, read into model RGB.

Every reader returns pixels in **PIL order** ``(width, height)`` for sizes and ``(x, y, w, h)`` for windows (source
pixels, origin top left). Arrays are channels-last ``(height, width, bands)``.

Band selection (``bands``, 1-based like GDAL/rasterio):

* default: bands ``(1, 2, 3)`` when the file has 3 or more bands (for an RGBA PNG the alpha band is band 4 and is
  used as the validity mask instead of a colour), band ``1`` otherwise (a single band -- or the first of two -- is
  replicated into grey RGB);
* ``bands=(4, 3, 2)`` picks red, green, blue from e.g. a Sentinel-2 stack stored as B1, B2, ... ; ``bands=(8,)`` shows
  one band as grey.

Scaling to 8 bits: ``uint8`` data is used as is. Any other dtype (uint16 reflectance, int16 SAR, float32 indices) is
scaled **per band** by a percentile stretch ``v8 = round(255 * (v - lo) / (hi - lo))`` clipped to ``[0, 255]``, with
``lo, hi`` the 2nd and 98th percentiles (numpy ``linear`` method) of the band's valid pixels. :func:`load_image`
computes them on the pixels it reads (the window, or the decimated whole image); :class:`WindowReader` computes them
once on a reduced-resolution read of the whole raster (GDAL uses the overviews when present) so that neighbouring
tiles share one stretch. Pass ``value_range=(lo, hi)`` (all bands) or one pair per band to use fixed limits instead,
e.g. ``(0, 3000)`` for Sentinel-2 L2A reflectance scaled by 10,000.

Nodata: a pixel is invalid when any selected band equals the file's nodata value, is masked by the file's mask or
alpha band, or is NaN. Invalid pixels are left out of the percentiles and become black ``(0, 0, 0)``;
:attr:`RSImage.valid_mask` tells them apart from real black.

Large images: PNG and JPEG cannot be decoded partially, so they are guarded by PIL's decompression-bomb limit
(``2 * PIL.Image.MAX_IMAGE_PIXELS`` = 178,956,970 pixels by default). Convert big images to a tiled (Cloud Optimized)
GeoTIFF -- :func:`save_geotiff` with ``cog=True`` or ``gdal_translate -of COG in.png out.tif`` -- and read windows
with :func:`read_window` / :func:`open_window_reader`, or pass ``max_pixels`` to opt in. GeoTIFF reads decode only
the blocks of the requested window; with ``out_size`` GDAL reads from the overviews at reduced resolution.

Example:
    >>> import tempfile, pathlib, numpy as np
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "scene.tif"
    >>> data = np.arange(4 * 64 * 64, dtype=np.uint16).reshape(4, 64, 64)
    >>> _ = save_geotiff(path, data, crs="EPSG:32633", transform=(0.5, 0, 500000, 0, -0.5, 4500000))
    >>> image = load_image(path, bands=(3, 2, 1), window=(8, 8, 32, 16))
    >>> image.pixels.size, image.meta.crs, image.meta.gsd
    ((32, 16), 'EPSG:32633', (0.5, 0.5))
    >>> raster_size(path)
    (64, 64)
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "GeoMeta",
    "ImageReadError",
    "ImageTooLargeError",
    "RSImage",
    "WindowReader",
    "gsd_metres",
    "load_image",
    "open_window_reader",
    "raster_size",
    "read_window",
    "save_geotiff",
    "save_geotiff_tiled",
    "stretch_to_uint8",
]

PIL_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".gif", ".webp"})
DEFAULT_PERCENTILES = (2.0, 98.0)
# WGS84 ellipsoid: used to turn degrees into metres for geographic CRSs (the CRS's own datum is not consulted;
# the difference between common ellipsoids is below 0.1 % of the GSD).
WGS84_A = 6378137.0
WGS84_F = 1 / 298.257223563
# longest side of the whole-raster read used to fix a WindowReader's stretch
STRETCH_SAMPLE_SIDE = 1024

Window = tuple[int, int, int, int]
ValueRange = tuple[float, float] | Sequence[tuple[float, float]]


class ImageReadError(ValueError):
    """A file that exists but cannot be decoded (corrupt, truncated, or not an image); the message names it."""


class ImageTooLargeError(ValueError):
    """The image has more pixels than the decode limit; the message says how to read it anyway."""


@dataclass(frozen=True)
class GeoMeta:
    """Georeferencing of the pixels that were returned (a window and/or a decimated read of a raster file).

    Attributes:
        crs: ``"EPSG:<code>"`` when the CRS has an EPSG code, else its WKT; None for a non-georeferenced TIFF.
        transform: affine ``(a, b, c, d, e, f)`` (rasterio/affine order) mapping *returned* pixel ``(col, row)`` to
            CRS ``x = a*col + b*row + c``, ``y = d*col + e*row + f``.
        gsd: ground sample distance ``(x, y)`` in metres per returned pixel; see :func:`gsd_metres`. None when the
            CRS is unknown or not projected/geographic.
        band_count: bands in the file.
        dtype: numpy dtype name of the file's bands (e.g. ``"uint16"``).
        nodata: the file's nodata value, or None.
        bounds: ``(left, bottom, right, top)`` of the returned pixels in CRS units.
        window: ``(x, y, w, h)`` that was read, in full-resolution source pixels.
    """

    crs: str | None
    transform: tuple[float, float, float, float, float, float]
    gsd: tuple[float, float] | None
    band_count: int
    dtype: str
    nodata: float | None
    bounds: tuple[float, float, float, float]
    window: Window


@dataclass
class RSImage:
    """An image ready for a vision-language model, with where it came from.

    Attributes:
        pixels: RGB ``PIL.Image`` (8 bit), the region read, at ``out_size`` if one was asked for.
        meta: georeferencing for GeoTIFF/COG sources; None for PNG/JPEG.
        original_size: ``(width, height)`` of the whole source image.
        window: ``(x, y, w, h)`` read from the source, full-resolution pixels.
        bands: 1-based source bands shown as R, G, B (one band means grey).
        valid_mask: boolean ``(height, width)``, False where the source had nodata / alpha 0 / NaN; None when the
            source has no nodata at all.
        value_range: per shown band, the ``(lo, hi)`` mapped to 0 and 255; None when uint8 data was used as is.
        path: the source path.
    """

    pixels: Image.Image
    meta: GeoMeta | None
    original_size: tuple[int, int]
    window: Window
    bands: tuple[int, ...]
    valid_mask: np.ndarray | None
    value_range: tuple[tuple[float, float], ...] | None
    path: str

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of :attr:`pixels` (the "original size" for Qwen box mapping)."""
        return self.pixels.size

    def box_to_source(self, box: Sequence[float]) -> list[float]:
        """Map ``[x1, y1, x2, y2]`` in :attr:`pixels` coordinates to full-resolution source-image pixels.

        Example:
            >>> import numpy as np
            >>> from PIL import Image
            >>> img = RSImage(Image.new("RGB", (50, 25)), None, (1000, 1000), (100, 200, 100, 50), (1, 2, 3),
            ...               None, None, "x.png")
            >>> img.box_to_source([0, 0, 50, 25])
            [100.0, 200.0, 200.0, 250.0]
        """
        if len(box) != 4:
            raise ValueError(f"a box is [x1, y1, x2, y2]; got {len(box)} values: {list(box)!r}")
        x0, y0, w, h = self.window
        sx, sy = w / self.pixels.width, h / self.pixels.height
        x1, y1, x2, y2 = (float(v) for v in box)
        return [x0 + x1 * sx, y0 + y1 * sy, x0 + x2 * sx, y0 + y2 * sy]


# --------------------------------------------------------------------------------------------------- path helpers


def _is_remote(path: str | Path) -> bool:
    text = str(path)
    return text.startswith("/vsi") or "://" in text


def _uses_pil(path: str | Path) -> bool:
    return not _is_remote(path) and Path(path).suffix.lower() in PIL_SUFFIXES


def _check_exists(path: str | Path) -> None:
    if _is_remote(path):
        return
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"image not found: {p} (resolved: {p.resolve()})")
    if p.is_dir():
        raise IsADirectoryError(f"expected an image file, got a directory: {p}")


def _check_window(window: Window, size: tuple[int, int], path: str | Path) -> Window:
    if len(window) != 4:
        raise ValueError(f"{path}: window is (x, y, w, h); got {window!r}")
    x, y, w, h = (int(v) for v in window)
    width, height = size
    if w <= 0 or h <= 0:
        raise ValueError(f"{path}: window {window!r} must have positive width and height")
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise ValueError(
            f"{path}: window (x={x}, y={y}, w={w}, h={h}) lies outside the {width}x{height} image; "
            f"it must satisfy 0 <= x, x + w <= {width}, 0 <= y, y + h <= {height}"
        )
    return x, y, w, h


def _check_out_size(out_size: tuple[int, int] | None, path: str | Path) -> tuple[int, int] | None:
    if out_size is None:
        return None
    if len(out_size) != 2 or int(out_size[0]) <= 0 or int(out_size[1]) <= 0:
        raise ValueError(f"{path}: out_size is (width, height) with positive values; got {out_size!r}")
    return int(out_size[0]), int(out_size[1])


def _resolve_bands(
    bands: Sequence[int] | None, count: int, path: str | Path, *, for_rgb: bool
) -> tuple[int, ...]:
    if bands is None:
        return (1, 2, 3) if count >= 3 else (1,)
    if isinstance(bands, int):
        bands = (bands,)
    bands = tuple(bands)
    if for_rgb and len(bands) not in (1, 3):
        raise ValueError(
            f"{path}: bands={bands!r} must name 3 bands (shown as R, G, B) or 1 band (shown as grey)"
        )
    if not bands:
        raise ValueError(f"{path}: bands must not be empty")
    for band in bands:
        if not isinstance(band, int | np.integer) or isinstance(band, bool) or not 1 <= band <= count:
            raise ValueError(
                f"{path}: band {band!r} does not exist; the image has {count} band(s), numbered 1..{count} "
                "(band indices are 1-based, as in GDAL)"
            )
    return tuple(int(b) for b in bands)


_PIL_GUARD_LOCK = threading.Lock()


def _decode_limit(max_pixels: int | None) -> int | None:
    """Pixel limit for one decode: ``max_pixels`` if given, else PIL's error threshold (None = unlimited)."""
    if max_pixels is not None:
        if max_pixels <= 0:
            raise ValueError(f"max_pixels must be positive, got {max_pixels}")
        return int(max_pixels)
    from PIL import Image

    with _PIL_GUARD_LOCK:  # never read the global while another thread has it lifted
        pil_limit = Image.MAX_IMAGE_PIXELS
    return None if pil_limit is None else 2 * int(pil_limit)


def _check_decode_size(
    path: str | Path, size: tuple[int, int], limit: int | None, *, whole_file: bool
) -> None:
    width, height = size
    pixels = width * height
    if limit is None or pixels <= limit:
        return
    if whole_file:
        how = (
            "PNG/JPEG files are decoded whole. Convert large images to a tiled Cloud Optimized GeoTIFF "
            "(rszoo.data.images.save_geotiff(..., cog=True), or `gdal_translate -of COG in.png out.tif`) and read "
            "windows with read_window / open_window_reader"
        )
    else:
        how = "Read a window (window=...), or a reduced-resolution image (out_size=...)"
    raise ImageTooLargeError(
        f"{path}: {width}x{height} = {pixels:,} pixels exceeds the decode limit of {limit:,} pixels "
        f"(PIL's decompression-bomb guard). {how}; or, if you trust the file, opt in with max_pixels={pixels}."
    )


@contextlib.contextmanager
def _pil_guard_off() -> Iterator[None]:
    """Lift PIL's global decompression-bomb check for a lazy open / crop; we apply our own limit instead.

    PIL has no per-call limit, so the module global is swapped under a lock (only for header parsing and crop
    calls, never for the decode itself) and restored afterwards.
    """
    from PIL import Image

    with _PIL_GUARD_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


# ------------------------------------------------------------------------------------------------ PIL sources


def _pil_open(path: str | Path) -> Image.Image:
    """Lazily open ``path`` with PIL (header only), with readable errors."""
    from PIL import Image, UnidentifiedImageError

    _check_exists(path)
    try:
        with _pil_guard_off():
            return Image.open(path)
    except UnidentifiedImageError:
        raise ImageReadError(
            f"{path}: not a readable image (corrupt, truncated, or not PNG/JPEG despite its extension)"
        ) from None
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot open image ({exc})") from None


def _pil_load(image: Image.Image, path: str | Path) -> None:
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{path}: image data is corrupt or truncated ({exc})") from None


def _pil_bands(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """``(H, W, C)`` band array of a decoded PIL image plus the alpha-derived validity mask (or None)."""
    mode = image.mode
    if mode == "P" or mode == "PA":
        image = image.convert("RGBA" if mode == "PA" or "transparency" in image.info else "RGB")
    elif mode == "1":
        image = image.convert("L")
    elif mode not in ("L", "LA", "RGB", "RGBA", "I", "F") and not mode.startswith("I;16"):
        image = image.convert("RGBA" if "A" in mode else "RGB")
    array = np.asarray(image)
    if not array.dtype.isnative:  # 16-bit big-endian PNG ("I;16B")
        array = array.astype(array.dtype.newbyteorder("="))
    if array.ndim == 2:
        array = array[:, :, None]
    valid = None
    if image.mode in ("LA", "RGBA"):
        valid = array[:, :, -1] > 0
    return array, valid


def _read_pil_rgb(path: str | Path, max_pixels: int | None) -> RSImage | None:
    """A whole 8-bit RGB PNG/JPEG as decoded by PIL (no array round trip); None for any other mode."""
    image = _pil_open(path)
    if image.mode != "RGB":
        image.close()
        return None
    try:
        _check_decode_size(path, image.size, _decode_limit(max_pixels), whole_file=True)
        _pil_load(image, path)
    except BaseException:
        image.close()
        raise
    size = image.size
    return RSImage(
        pixels=image,
        meta=None,
        original_size=size,
        window=(0, 0, *size),
        bands=(1, 2, 3),
        valid_mask=None,
        value_range=None,
        path=str(path),
    )


def _read_pil(
    path: str | Path,
    window: Window | None,
    out_size: tuple[int, int] | None,
    max_pixels: int | None,
) -> tuple[np.ndarray, np.ndarray | None, tuple[int, int], Window]:
    """Decode a PIL-readable file: ``(bands HxWxC, valid or None, original size, window)``."""
    image = _pil_open(path)
    try:
        size = image.size
        window = _check_window(window, size, path) if window is not None else (0, 0, *size)
        _check_decode_size(path, size, _decode_limit(max_pixels), whole_file=True)
        _pil_load(image, path)
        array, valid = _pil_bands(image)
    finally:
        image.close()
    x, y, w, h = window
    array, valid = array[y : y + h, x : x + w], None if valid is None else valid[y : y + h, x : x + w]
    if out_size is not None and out_size != (w, h):
        array, valid = _resize_bands(array, valid, out_size)
    return array, valid, size, window


def _resize_bands(
    array: np.ndarray, valid: np.ndarray | None, out_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Area-average resize of each band (PIL ``BOX`` down, ``BICUBIC`` up), nearest for the mask."""
    from PIL import Image

    h, w = array.shape[:2]
    down = out_size[0] <= w and out_size[1] <= h
    resample = Image.Resampling.BOX if down else Image.Resampling.BICUBIC
    planes = []
    for c in range(array.shape[2]):
        band = array[:, :, c]
        # PIL resizes uint8 ("L") and float32 ("F") planes; other dtypes go through float32 and back
        src = band if band.dtype == np.uint8 else band.astype(np.float32)
        out = np.asarray(Image.fromarray(src).resize(out_size, resample))
        if band.dtype != np.uint8:
            if np.issubdtype(band.dtype, np.integer):
                info = np.iinfo(band.dtype)
                out = np.clip(np.rint(out), info.min, info.max)
            out = out.astype(band.dtype)
        planes.append(out)
    resized = np.stack(planes, axis=-1)
    if valid is not None:
        valid = np.asarray(
            Image.fromarray(valid.astype(np.uint8) * 255).resize(out_size, Image.Resampling.NEAREST)
        ).astype(bool)
    return resized, valid


# --------------------------------------------------------------------------------------------- raster sources


@contextlib.contextmanager
def _open_raster(path: str | Path) -> Iterator[Any]:
    """``rasterio.open`` with clear errors; non-georeferenced TIFFs open without a warning."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    _check_exists(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(path)
    except RasterioIOError as exc:
        raise ImageReadError(
            f"{path}: not a readable raster ({exc}); expected a GeoTIFF/COG (or another GDAL format) that is "
            "complete and not corrupt"
        ) from None
    try:
        yield src
    finally:
        src.close()


def _rasterio_read(
    src: Any,
    path: str | Path,
    bands: tuple[int, ...],
    window: Window,
    out_size: tuple[int, int] | None,
    resampling: str,
    *,
    with_mask: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read ``bands`` of ``window`` (decimated to ``out_size``) as ``(H, W, C)`` plus the validity mask."""
    from rasterio.enums import MaskFlags, Resampling
    from rasterio.errors import RasterioIOError
    from rasterio.windows import Window as RioWindow

    x, y, w, h = window
    out_w, out_h = out_size if out_size is not None else (w, h)
    rio_window = RioWindow(x, y, w, h)
    try:
        method = Resampling[resampling]
    except KeyError:
        raise ValueError(
            f"resampling={resampling!r} is not a rasterio Resampling name (e.g. 'average', 'nearest', 'bilinear')"
        ) from None
    try:
        data = src.read(
            list(bands), window=rio_window, out_shape=(len(bands), out_h, out_w), resampling=method
        )
        valid = None
        if with_mask:
            flags = [src.mask_flag_enums[b - 1] for b in bands]
            if not all(f == [MaskFlags.all_valid] for f in flags):
                masks = src.read_masks(
                    list(bands),
                    window=rio_window,
                    out_shape=(len(bands), out_h, out_w),
                    resampling=Resampling.nearest,
                )
                valid = np.all(masks > 0, axis=0)
    except RasterioIOError as exc:
        raise ImageReadError(
            f"{path}: failed to read window {window} ({exc}); the file may be truncated"
        ) from None
    array = np.moveaxis(data, 0, -1)
    if with_mask and np.issubdtype(array.dtype, np.floating):
        finite = np.all(np.isfinite(array), axis=-1)
        if not finite.all():
            valid = finite if valid is None else valid & finite
    return array, valid


def _crs_string(crs: Any) -> str | None:
    if crs is None:
        return None
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


def gsd_metres(transform: Sequence[float], crs: Any, width: int, height: int) -> tuple[float, float] | None:
    """Ground sample distance ``(x, y)`` in metres per pixel from an affine transform.

    The pixel's x and y edge vectors are ``(a, d)`` and ``(b, e)`` (rotation allowed). For a projected CRS their
    lengths are multiplied by the CRS's linear unit (e.g. 0.3048 for feet). For a geographic CRS the degree
    components are converted to metres with the WGS84 meridian and parallel arc lengths **at the latitude of the
    image centre** (``transform * (width/2, height/2)``), so the x GSD of a lat/lon image shrinks with
    ``cos(latitude)``. Web-Mercator (EPSG:3857) metres are returned as projected metres; they overstate ground
    distance by ``1 / cos(latitude)``.

    Args:
        transform: affine ``(a, b, c, d, e, f)``.
        crs: a rasterio ``CRS``, or anything ``CRS.from_user_input`` takes (``"EPSG:4326"``, WKT, an int).
        width: image width in pixels (for the centre).
        height: image height in pixels.

    Returns:
        ``(gsd_x, gsd_y)`` in metres, or None if ``crs`` is None or neither projected nor geographic.

    Example:
        >>> gsd_metres((10.0, 0, 600000, 0, -10.0, 5000000), "EPSG:32633", 100, 100)
        (10.0, 10.0)
        >>> [round(v, 3) for v in gsd_metres((1e-4, 0, 10.0, 0, -1e-4, 45.0005), "EPSG:4326", 10, 10)]
        [7.885, 11.113]
    """
    from rasterio.crs import CRS

    if crs is None:
        return None
    crs = crs if isinstance(crs, CRS) else CRS.from_user_input(crs)
    a, b, _, d, e, f = (float(v) for v in tuple(transform)[:6])
    if crs.is_projected:
        unit = float(crs.linear_units_factor[1])
        return math.hypot(a, d) * unit, math.hypot(b, e) * unit
    if crs.is_geographic:
        degrees_per_unit = math.degrees(float(crs.units_factor[1]))
        lat = (d * width / 2 + e * height / 2 + f) * degrees_per_unit
        phi = math.radians(max(-90.0, min(90.0, lat)))
        e2 = WGS84_F * (2 - WGS84_F)
        w = math.sqrt(1 - e2 * math.sin(phi) ** 2)
        m_per_deg_lat = math.radians(1) * WGS84_A * (1 - e2) / w**3
        m_per_deg_lon = math.radians(1) * WGS84_A * math.cos(phi) / w
        sx, sy = m_per_deg_lon * degrees_per_unit, m_per_deg_lat * degrees_per_unit
        return math.hypot(a * sx, d * sy), math.hypot(b * sx, e * sy)
    return None


def _geo_meta(src: Any, window: Window, out_size: tuple[int, int] | None) -> GeoMeta:
    from affine import Affine

    x, y, w, h = window
    out_w, out_h = out_size if out_size is not None else (w, h)
    transform = src.transform @ Affine.translation(x, y) @ Affine.scale(w / out_w, h / out_h)
    corners = [transform @ (col, row) for col in (0, out_w) for row in (0, out_h)]
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    return GeoMeta(
        crs=_crs_string(src.crs),
        transform=tuple(float(v) for v in tuple(transform)[:6]),
        gsd=gsd_metres(transform, src.crs, out_w, out_h),
        band_count=int(src.count),
        dtype=str(src.dtypes[0]),
        nodata=None if src.nodata is None else float(src.nodata),
        bounds=(min(xs), min(ys), max(xs), max(ys)),
        window=window,
    )


# ------------------------------------------------------------------------------------------------ 8-bit stretch


_HISTOGRAM_DTYPES = (np.uint8, np.int8, np.uint16, np.int16)


def _lerp(a: float, b: float, t: float) -> float:
    # numpy's own lerp (``np.percentile`` linear method): from the nearer end, for bit-identical results
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


def _band_percentiles(values: np.ndarray, percentiles: Sequence[float]) -> list[float]:
    """``np.percentile(values, percentiles)`` (linear method) for a 1-D array; exact histogram path for <=16 bits."""
    n = values.size
    if values.dtype.type in _HISTOGRAM_DTYPES:
        # counting sort: O(n) with a 65,536-bin histogram and no float64 copy of a possibly huge window
        offset = -int(np.iinfo(values.dtype).min)
        codes = values.astype(np.int32) + offset if offset else values
        cumulative = np.cumsum(np.bincount(codes.ravel(), minlength=np.iinfo(values.dtype).max + offset + 1))
        out = []
        for q in percentiles:
            position = (n - 1) * (float(q) / 100)
            k = math.floor(position)
            below = int(np.searchsorted(cumulative, k, side="right")) - offset
            above = int(np.searchsorted(cumulative, min(k + 1, n - 1), side="right")) - offset
            out.append(_lerp(float(below), float(above), position - k))
        return out
    return [float(v) for v in np.percentile(values.astype(np.float64), list(percentiles))]


def _normalise_value_range(value_range: ValueRange | None, n_bands: int) -> list[tuple[float, float]] | None:
    if value_range is None:
        return None
    pairs: list[tuple[float, float]]
    if len(value_range) == 2 and all(isinstance(v, int | float | np.number) for v in value_range):
        pairs = [(float(value_range[0]), float(value_range[1]))] * n_bands  # type: ignore[arg-type]
    else:
        pairs = [(float(lo), float(hi)) for lo, hi in value_range]  # type: ignore[misc]
        if len(pairs) != n_bands:
            raise ValueError(
                f"value_range has {len(pairs)} (lo, hi) pairs but {n_bands} band(s) are shown; give one pair for "
                "all bands or one per band"
            )
    for lo, hi in pairs:
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"value_range needs finite lo < hi, got ({lo}, {hi})")
    return pairs


def _stretch_band(band: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``clip(rint(255 * (v - lo) / (hi - lo)), 0, 255)`` as uint8; a flat range maps ``v > lo`` to 255."""
    if hi <= lo:
        return np.where(band > lo, 255, 0).astype(np.uint8)
    if band.dtype.type in _HISTOGRAM_DTYPES:
        # lookup table over every representable value: exact, and no float copy of the band
        info = np.iinfo(band.dtype)
        codes = np.arange(info.min, info.max + 1, dtype=np.float64)
        lut = np.clip(np.rint(255.0 * (codes - lo) / (hi - lo)), 0, 255).astype(np.uint8)
        return lut[band.astype(np.int32) - info.min] if info.min else lut[band]
    out = np.empty(band.shape, dtype=np.uint8)
    rows = max(1, 4_000_000 // max(1, band.shape[1]))  # float64 temporaries of ~32 MB at a time
    for r0 in range(0, band.shape[0], rows):
        scaled = 255.0 * (band[r0 : r0 + rows].astype(np.float64) - lo) / (hi - lo)
        scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
        out[r0 : r0 + rows] = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return out


def stretch_to_uint8(
    array: np.ndarray,
    valid: np.ndarray | None = None,
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
    value_range: ValueRange | None = None,
) -> tuple[np.ndarray, tuple[tuple[float, float], ...]]:
    """Scale each band of ``(H, W, C)`` ``array`` to uint8 by a percentile (or fixed) stretch.

    ``v8 = clip(rint(255 * (v - lo) / (hi - lo)), 0, 255)`` per band, computed in float64 (``rint`` rounds half to
    even). ``lo, hi`` are ``np.percentile(valid values, percentiles)`` (linear method), or ``value_range``. A band
    with ``hi <= lo`` (flat) becomes 0 where ``v <= lo`` and 255 above. Pixels with ``valid == False`` are left out
    of the percentiles and set to 0.

    Args:
        array: ``(H, W, C)`` or ``(H, W)`` numeric array.
        valid: optional boolean ``(H, W)`` mask of pixels to use.
        percentiles: lower and upper percentile, in 0..100.
        value_range: fixed ``(lo, hi)`` for all bands, or a sequence of one pair per band; overrides percentiles.

    Returns:
        ``(uint8 array of the same shape, ((lo, hi) per band))``.

    Example:
        >>> import numpy as np
        >>> out, ranges = stretch_to_uint8(np.array([[0, 100, 200, 1000]], dtype=np.uint16), value_range=(0, 200))
        >>> out.tolist(), ranges
        ([[0, 128, 255, 255]], ((0.0, 200.0),))
    """
    squeeze = array.ndim == 2
    if squeeze:
        array = array[:, :, None]
    if array.ndim != 3:
        raise ValueError(f"stretch_to_uint8 expects an (H, W, C) or (H, W) array, got shape {array.shape}")
    if valid is not None and valid.shape != array.shape[:2]:
        raise ValueError(f"valid mask shape {valid.shape} does not match the image {array.shape[:2]}")
    lo_q, hi_q = (float(p) for p in percentiles)
    if not 0 <= lo_q <= hi_q <= 100:
        raise ValueError(f"percentiles must satisfy 0 <= low <= high <= 100, got {percentiles!r}")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    fixed = _normalise_value_range(value_range, array.shape[2])
    out = np.empty(array.shape, dtype=np.uint8)
    ranges = []
    for c in range(array.shape[2]):
        band = array[:, :, c]
        if fixed is not None:
            lo, hi = fixed[c]
        else:
            values = band if valid is None else band[valid]
            if np.issubdtype(values.dtype, np.floating):
                values = values[np.isfinite(values)]
            lo, hi = _band_percentiles(values.ravel(), (lo_q, hi_q)) if values.size else (0.0, 0.0)
        ranges.append((float(lo), float(hi)))
        out[:, :, c] = _stretch_band(band, lo, hi)
    if valid is not None:
        out[~valid] = 0
    return (out[:, :, 0] if squeeze else out), tuple(ranges)


def _to_rgb(
    array: np.ndarray,
    valid: np.ndarray | None,
    value_range: ValueRange | None,
    percentiles: tuple[float, float],
) -> tuple[np.ndarray, tuple[tuple[float, float], ...] | None]:
    """Selected bands ``(H, W, 1 or 3)`` -> uint8 ``(H, W, 3)``; stretch unless uint8 without a fixed range."""
    if array.dtype == np.uint8 and value_range is None:
        rgb, ranges = array, None
        if valid is not None and not valid.all():
            rgb = rgb.copy()
            rgb[~valid] = 0
    else:
        rgb, ranges = stretch_to_uint8(array, valid, percentiles, value_range)
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    return np.ascontiguousarray(rgb), ranges


# -------------------------------------------------------------------------------------------------- public API


def raster_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an image without decoding its pixels (PIL lazy open, or the GeoTIFF header).

    Example:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.png"
        >>> Image.new("RGB", (30, 20)).save(p)
        >>> raster_size(p)
        (30, 20)
    """
    if _uses_pil(path):
        image = _pil_open(path)
        size = image.size
        image.close()
        return size
    with _open_raster(path) as src:
        return int(src.width), int(src.height)


def load_image(
    path: str | Path,
    bands: Sequence[int] | None = None,
    window: Window | None = None,
    max_pixels: int | None = None,
    *,
    out_size: tuple[int, int] | None = None,
    value_range: ValueRange | None = None,
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
    resampling: str = "average",
) -> RSImage:
    """Load PNG/JPEG (PIL) or GeoTIFF/COG (rasterio) as model-ready RGB plus its georeferencing.

    Args:
        path: image file (``.png``/``.jpg``/... go through PIL; anything else through rasterio/GDAL, including
            ``/vsicurl/`` and ``s3://`` COG URLs).
        bands: 1-based bands shown as R, G, B (3 values) or as grey (1 value); default ``(1, 2, 3)`` for files with
            3+ bands, else ``(1,)``.
        window: ``(x, y, w, h)`` region in source pixels; default the whole image. Must lie inside the image.
        max_pixels: decode limit in pixels -- the whole file for PNG/JPEG (they cannot be read partially), the
            returned region for rasters. Default: PIL's limit, ``2 * PIL.Image.MAX_IMAGE_PIXELS``. Raise it to opt in
            to very large images.
        out_size: ``(width, height)`` to return the region at; rasters are read decimated from overviews by GDAL
            (``resampling``), PNG/JPEG are decoded then box-filtered.
        value_range: fixed ``(lo, hi)`` (or one pair per band) mapped to 0..255 instead of the percentile stretch.
        percentiles: the stretch percentiles for non-uint8 data (computed on the pixels read).
        resampling: rasterio resampling name for ``out_size`` reads of rasters. Without overviews in the file,
            ``"average"`` visits every source pixel (seconds for a 27,000 x 20,000 raster); ``"nearest"`` is
            about 4x faster; with overviews both are fast.

    Returns:
        :class:`RSImage`; ``meta`` is None for PNG/JPEG.

    Raises:
        FileNotFoundError: the file does not exist.
        ImageReadError: the file is corrupt/truncated or not an image.
        ImageTooLargeError: more pixels than ``max_pixels``.
        ValueError: a band index that does not exist, a window outside the image, a bad ``value_range``.
    """
    out_size = _check_out_size(out_size, path)
    if _uses_pil(path) and window is None and out_size is None and bands is None and value_range is None:
        fast = _read_pil_rgb(path, max_pixels)  # the common case: an 8-bit RGB PNG/JPEG, used as is
        if fast is not None:
            return fast
    if _uses_pil(path):
        array, valid, size, window = _read_pil(path, window, out_size, max_pixels)
        bands = _resolve_bands(bands, array.shape[2], path, for_rgb=True)
        selected = array[:, :, [b - 1 for b in bands]]
        rgb, ranges = _to_rgb(selected, valid, value_range, percentiles)
        meta = None
    else:
        with _open_raster(path) as src:
            size = (int(src.width), int(src.height))
            window = _check_window(window, size, path) if window is not None else (0, 0, *size)
            bands = _resolve_bands(bands, int(src.count), path, for_rgb=True)
            _check_decode_size(path, out_size or window[2:], _decode_limit(max_pixels), whole_file=False)
            selected, valid = _rasterio_read(src, path, bands, window, out_size, resampling, with_mask=True)
            meta = _geo_meta(src, window, out_size)
        rgb, ranges = _to_rgb(selected, valid, value_range, percentiles)
    from PIL import Image

    return RSImage(
        pixels=Image.fromarray(rgb),
        meta=meta,
        original_size=size,
        window=window,
        bands=bands,
        valid_mask=valid,
        value_range=ranges,
        path=str(path),
    )


def read_window(
    path: str | Path,
    x: int,
    y: int,
    w: int,
    h: int,
    bands: Sequence[int] | None = None,
    out_size: tuple[int, int] | None = None,
    *,
    resampling: str = "average",
) -> np.ndarray:
    """Raw pixel values of one window, ``(h, w, C)`` in the file's dtype (no stretch, nodata kept as is).

    For GeoTIFF/COG only the blocks that intersect the window are decoded (rasterio ``Window``). With ``out_size``
    the window is read at that ``(width, height)`` through ``out_shape`` decimation: GDAL picks the closest overview
    level when the file has overviews, so a 27,000 x 20,000 raster can be previewed without decoding it. PNG/JPEG
    are decoded whole (within PIL's decompression-bomb limit) and sliced.

    Args:
        path: image file.
        x: left column of the window (source pixels).
        y: top row.
        w: window width.
        h: window height.
        bands: 1-based bands to return, any number; default all bands (for PNG/JPEG: all channels incl. alpha).
        out_size: ``(width, height)`` of the returned array; default ``(w, h)``.
        resampling: rasterio resampling name used when ``out_size`` differs from the window.

    Returns:
        ``np.ndarray`` of shape ``(out_h, out_w, len(bands))``.

    Example:
        >>> import tempfile, pathlib, numpy as np
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "b.tif"
        >>> _ = save_geotiff(p, np.arange(2 * 8 * 8, dtype=np.uint16).reshape(2, 8, 8), None, (1, 0, 0, 0, -1, 8))
        >>> read_window(p, 2, 1, 3, 2, bands=(2,))[:, :, 0].tolist()
        [[74, 75, 76], [82, 83, 84]]
    """
    window = (x, y, w, h)
    out_size = _check_out_size(out_size, path)
    if _uses_pil(path):
        array, _valid, _size, window = _read_pil(path, window, out_size, None)
        selected = _resolve_bands(bands, array.shape[2], path, for_rgb=False) if bands is not None else None
        return array if selected is None else array[:, :, [b - 1 for b in selected]]
    with _open_raster(path) as src:
        window = _check_window(window, (int(src.width), int(src.height)), path)
        all_bands = tuple(range(1, int(src.count) + 1))
        chosen = all_bands if bands is None else _resolve_bands(bands, int(src.count), path, for_rgb=False)
        array, _ = _rasterio_read(src, path, chosen, window, out_size, resampling, with_mask=False)
    return array


class WindowReader:
    """Callable ``reader(x, y, w, h) -> uint8 (h, w, 3)`` over one image, for tiling code.

    The file stays open between calls (reopened after a ``fork``, e.g. in DataLoader workers; one reader per thread).
    Non-uint8 rasters are stretched with **one** per-band range for the whole image, computed at construction from
    a read whose longest side is at most 1024 px (GDAL serves it from the overviews when present), so tiles of the
    same scene match in brightness. Use it as a context manager or call :meth:`close`.

    Attributes:
        path: the source path.
        size: ``(width, height)`` of the image.
        bands: 1-based bands shown as R, G, B.
        meta: :class:`GeoMeta` of the whole raster (None for PNG/JPEG).
        value_range: per-band ``(lo, hi)`` used for every tile; None for uint8 data read as is.
    """

    def __init__(
        self,
        path: str | Path,
        bands: Sequence[int] | None = None,
        *,
        value_range: ValueRange | None = None,
        percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
        max_pixels: int | None = None,
        resampling: str = "average",
    ) -> None:
        self.path = str(path)
        self.resampling = resampling
        self._src: Any = None
        self._pid = -1
        self._pil_array: np.ndarray | None = None
        self._pil_valid: np.ndarray | None = None
        if _uses_pil(path):
            array, valid, self.size, _ = _read_pil(path, None, None, max_pixels)
            self.bands = _resolve_bands(bands, array.shape[2], path, for_rgb=True)
            self._pil_array, self._pil_valid = array[:, :, [b - 1 for b in self.bands]], valid
            self.meta = None
            sample, sample_valid = self._pil_array, valid
        else:
            src = self._dataset()
            self.size = (int(src.width), int(src.height))
            self.bands = _resolve_bands(bands, int(src.count), path, for_rgb=True)
            full = (0, 0, *self.size)
            self.meta = _geo_meta(src, full, None)
            scale = min(1.0, STRETCH_SAMPLE_SIDE / max(self.size))
            sample_size = (max(1, round(self.size[0] * scale)), max(1, round(self.size[1] * scale)))
            sample, sample_valid = _rasterio_read(
                src, path, self.bands, full, sample_size, resampling, with_mask=True
            )
        if sample.dtype == np.uint8 and value_range is None:
            self.value_range: tuple[tuple[float, float], ...] | None = None
        else:
            _, self.value_range = stretch_to_uint8(sample, sample_valid, percentiles, value_range)

    def _dataset(self) -> Any:
        # GDAL handles must not cross a fork: reopen in a child process
        if self._src is None or self._pid != os.getpid():
            import rasterio
            from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

            _check_exists(self.path)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", NotGeoreferencedWarning)
                    self._src = rasterio.open(self.path)
            except RasterioIOError as exc:
                raise ImageReadError(f"{self.path}: not a readable raster ({exc})") from None
            self._pid = os.getpid()
        return self._src

    def __call__(self, x: int, y: int, w: int, h: int, out_size: tuple[int, int] | None = None) -> np.ndarray:
        """RGB uint8 tile ``(h, w, 3)`` (or ``out_size``) of window ``(x, y, w, h)``; nodata is black."""
        window = _check_window((x, y, w, h), self.size, self.path)
        out_size = _check_out_size(out_size, self.path)
        if self._pil_array is not None:
            array = self._pil_array[y : y + h, x : x + w]
            valid = None if self._pil_valid is None else self._pil_valid[y : y + h, x : x + w]
            if out_size is not None and out_size != (w, h):
                array, valid = _resize_bands(array, valid, out_size)
        else:
            array, valid = _rasterio_read(
                self._dataset(), self.path, self.bands, window, out_size, self.resampling, with_mask=True
            )
        rgb, _ = _to_rgb(array, valid, self.value_range, DEFAULT_PERCENTILES)
        return rgb

    def close(self) -> None:
        """Close the underlying dataset (a later call reopens it)."""
        if self._src is not None and self._pid == os.getpid():
            self._src.close()
        self._src = None

    def __enter__(self) -> WindowReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_src"], state["_pid"] = None, -1  # open handles do not pickle; the worker reopens the file
        return state


def open_window_reader(
    path: str | Path,
    bands: Sequence[int] | None = None,
    *,
    value_range: ValueRange | None = None,
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
    max_pixels: int | None = None,
) -> WindowReader:
    """Open ``path`` for repeated window reads: ``reader(x, y, w, h) -> np.ndarray`` uint8 ``(h, w, 3)``.

    See :class:`WindowReader` for the shared stretch and process safety.

    Example:
        >>> import tempfile, pathlib, numpy as np
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.tif"
        >>> _ = save_geotiff(p, np.zeros((3, 64, 64), np.uint8), "EPSG:32633", (1, 0, 0, 0, -1, 64))
        >>> with open_window_reader(p) as reader:
        ...     reader(0, 0, 32, 16).shape
        (16, 32, 3)
    """
    return WindowReader(path, bands, value_range=value_range, percentiles=percentiles, max_pixels=max_pixels)


# ------------------------------------------------------------------------------------------------------ writing


def _overview_factors(width: int, height: int, blocksize: int) -> list[int]:
    """2, 4, 8, ... until the coarsest level fits in one block."""
    factors, factor = [], 2
    while math.ceil(max(width, height) / (factor // 2)) > blocksize:
        factors.append(factor)
        factor *= 2
    return factors


def _profile(
    width: int,
    height: int,
    count: int,
    dtype: Any,
    crs: Any,
    transform: Any,
    nodata: float | None,
    tiled: bool,
    blocksize: int,
    compress: str | None,
) -> dict[str, Any]:
    from affine import Affine
    from rasterio.crs import CRS

    if isinstance(transform, Affine):
        affine = transform
    else:
        values = tuple(float(v) for v in transform)
        if len(values) not in (6, 9):
            raise ValueError(f"transform must be 6 affine numbers (a, b, c, d, e, f), got {len(values)}")
        affine = Affine(*values[:6])
    if tiled and blocksize % 16:
        raise ValueError(f"blocksize must be a multiple of 16 for tiled GeoTIFF, got {blocksize}")
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": np.dtype(dtype).name,
        "crs": None if crs is None else CRS.from_user_input(crs),
        "transform": affine,
        "nodata": nodata,
        "BIGTIFF": "IF_SAFER",
    }
    if compress:
        profile["compress"] = compress
    if tiled:
        profile.update(tiled=True, blockxsize=blocksize, blockysize=blocksize)
    if count > 1:
        profile["interleave"] = "pixel"
    return profile


def _write_geotiff(
    path: str | Path,
    profile: dict[str, Any],
    write_body: Callable[[Any], None],
    overviews: bool,
    cog: bool,
) -> Path:
    """Write through a temp file in the target folder and rename over ``path`` (never a half-written raster)."""
    import rasterio
    import rasterio.shutil
    from rasterio.enums import Resampling
    from rasterio.errors import NotGeoreferencedWarning

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temps = []
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tif", dir=path.parent)
        os.close(fd)
        temps.append(tmp)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(tmp, "w", **profile) as dst:
                write_body(dst)
                if overviews and not cog:
                    factors = _overview_factors(
                        profile["width"], profile["height"], profile.get("blockxsize", 512)
                    )
                    if factors:
                        dst.build_overviews(factors, Resampling.average)
            final = tmp
            if cog:
                # GDAL's COG driver re-lays the file out: header, then overviews, then full resolution tiles
                fd, cog_tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".cog.tif", dir=path.parent)
                os.close(fd)
                temps.append(cog_tmp)
                options = {
                    "BLOCKSIZE": profile.get("blockxsize", 512),
                    "OVERVIEWS": "AUTO" if overviews else "NONE",
                    "OVERVIEW_RESAMPLING": "AVERAGE",
                    "BIGTIFF": "IF_SAFER",
                }
                if profile.get("compress"):
                    options["COMPRESS"] = str(profile["compress"]).upper()
                rasterio.shutil.copy(tmp, cog_tmp, driver="COG", **options)
                final = cog_tmp
        os.replace(final, path)
        temps.remove(final)
    finally:
        for tmp in temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    return path


def save_geotiff(
    path: str | Path,
    array: np.ndarray,
    crs: Any,
    transform: Any,
    *,
    nodata: float | None = None,
    tiled: bool = True,
    blocksize: int = 512,
    compress: str | None = "deflate",
    overviews: bool = True,
    cog: bool = False,
) -> Path:
    """Write ``array`` as a GeoTIFF atomically (temp file + rename); deterministic bytes for the same input.

    Args:
        path: output ``.tif``.
        array: ``(bands, height, width)`` (rasterio order) or ``(height, width)``.
        crs: ``"EPSG:32633"``, an EPSG int, WKT, a rasterio ``CRS``, or None (not georeferenced).
        transform: affine ``(a, b, c, d, e, f)`` or an ``affine.Affine``; e.g. ``(gsd, 0, left, 0, -gsd, top)``.
        nodata: value marking missing pixels.
        tiled: write ``blocksize`` x ``blocksize`` tiles (needed for fast window reads) instead of strips.
        blocksize: tile side, a multiple of 16.
        compress: GDAL compression (``"deflate"``, ``"lzw"``, ``"zstd"``, None).
        overviews: add internal overviews (2x, 4x, ... down to one tile, average resampling). With ``tiled`` this
            is a "COG-like" file that GDAL reads efficiently at any scale.
        cog: write a true Cloud Optimized GeoTIFF with GDAL's COG driver (overviews before the full-resolution
            data, as HTTP range readers expect); implies tiling.

    Returns:
        The written path.

    Example:
        >>> import tempfile, pathlib, numpy as np
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.tif"
        >>> save_geotiff(p, np.ones((16, 16), np.float32), "EPSG:4326", (0.1, 0, 10, 0, -0.1, 50)).name
        'd.tif'
    """
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or 0 in array.shape:
        raise ValueError(
            f"save_geotiff: array must be (bands, height, width) or (height, width), got shape {array.shape}; "
            "for a channels-last image pass array.transpose(2, 0, 1)"
        )
    count, height, width = array.shape
    profile = _profile(
        width, height, count, array.dtype, crs, transform, nodata, tiled or cog, blocksize, compress
    )
    return _write_geotiff(path, profile, lambda dst: dst.write(array), overviews, cog)


def save_geotiff_tiled(
    path: str | Path,
    size: tuple[int, int],
    count: int,
    dtype: Any,
    render: Callable[[int, int, int, int], np.ndarray],
    crs: Any,
    transform: Any,
    *,
    chunk: int = 2048,
    nodata: float | None = None,
    blocksize: int = 512,
    compress: str | None = "deflate",
    overviews: bool = True,
    cog: bool = False,
) -> Path:
    """Write a large GeoTIFF chunk by chunk, never holding the whole image in memory (tiled, atomic).

    ``render(x, y, w, h)`` returns the ``(count, h, w)`` (or ``(h, w)`` when ``count == 1``) pixels of that
    window; it is called for ``chunk`` x ``chunk`` windows in row-major order. Other arguments as in
    :func:`save_geotiff`.

    Args:
        path: output ``.tif``.
        size: ``(width, height)`` of the raster.
        count: number of bands.
        dtype: numpy dtype of the bands.
        render: window -> pixels callback.
        crs: CRS as in :func:`save_geotiff`.
        transform: affine transform as in :func:`save_geotiff`.
        chunk: side of the windows handed to ``render``; a multiple of ``blocksize`` keeps writes tile aligned.
        nodata: nodata value.
        blocksize: tile side.
        compress: GDAL compression.
        overviews: add internal overviews.
        cog: write a true COG.

    Returns:
        The written path.
    """
    width, height = (int(v) for v in size)
    if width <= 0 or height <= 0 or count <= 0 or chunk <= 0:
        raise ValueError(
            f"save_geotiff_tiled: size, count and chunk must be positive, got {size}, {count}, {chunk}"
        )
    profile = _profile(width, height, count, dtype, crs, transform, nodata, True, blocksize, compress)

    def body(dst: Any) -> None:
        from rasterio.windows import Window as RioWindow

        for y in range(0, height, chunk):
            for x in range(0, width, chunk):
                w, h = min(chunk, width - x), min(chunk, height - y)
                block = np.asarray(render(x, y, w, h), dtype=dtype)
                if block.ndim == 2:
                    block = block[None]
                if block.shape != (count, h, w):
                    raise ValueError(
                        f"save_geotiff_tiled: render({x}, {y}, {w}, {h}) returned shape {block.shape}, "
                        f"expected {(count, h, w)}"
                    )
                dst.write(block, window=RioWindow(x, y, w, h))

    return _write_geotiff(path, profile, body, overviews, cog)


#: A window up to this many times the target area is decoded natively and resized bicubically (what Qwen's image
#: processor does); a larger one is read decimated, so memory stays within a few views whatever the image size.
NATIVE_READ_FACTOR = 4


def read_view(path: str | Path, window: Window | None, target: tuple[int, int]) -> Any:
    """PIL RGB of ``window`` (``(x, y, w, h)``; None = the whole image) at ``target`` (width, height), in bounded memory.

    Up to :data:`NATIVE_READ_FACTOR` times the target area: a native read resized with bicubic resampling (exactly the
    processor's path). Larger: a decimated read (GDAL ``out_shape``, average resampling, from overviews when present),
    never decoding the full resolution -- the only case where pixels differ from a full decode + resize.
    """
    if window is None:
        width, height = raster_size(path)
        window = (0, 0, width, height)
    _, _, w, h = window
    if w * h > NATIVE_READ_FACTOR * target[0] * target[1]:
        return load_image(path, window=window, out_size=target).pixels
    image = load_image(path, window=window).pixels
    return image if image.size == target else image.resize(target, resample=3)  # 3 = PIL bicubic
