"""rszoo.data.images against hand-computed numpy, published geodesy numbers, and rasterio/PIL read directly."""

from __future__ import annotations

import math
import os
import pickle
import re
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning

from rszoo.data.images import (
    ImageReadError,
    ImageTooLargeError,
    gsd_metres,
    load_image,
    open_window_reader,
    raster_size,
    read_window,
    save_geotiff,
    save_geotiff_tiled,
    stretch_to_uint8,
)

UTM = "EPSG:32633"
UTM_TRANSFORM = (0.5, 0.0, 500000.0, 0.0, -0.5, 4500000.0)


def hand_stretch(
    band: np.ndarray, valid: np.ndarray | None = None, q=(2, 98)
) -> tuple[np.ndarray, float, float]:
    """The documented stretch, written out with plain numpy (float64 percentiles, linear method)."""
    values = band[valid] if valid is not None else band.ravel()
    values = values.astype(np.float64)
    values = values[np.isfinite(values)]
    lo, hi = np.percentile(values, q)
    out = np.clip(np.rint(255.0 * (band.astype(np.float64) - lo) / (hi - lo)), 0, 255)
    out = np.nan_to_num(out, nan=0).astype(np.uint8)
    if valid is not None:
        out[~valid] = 0
    return out, float(lo), float(hi)


@pytest.fixture
def s2_stack(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A 4-band uint16 UTM 'Sentinel-2 like' stack (B2, B3, B4, B8 as bands 1..4), tiled in 16 px blocks."""
    rng = np.random.default_rng(7)
    data = rng.gamma(2.0, 600.0, size=(4, 90, 120)).astype(np.uint16)
    path = save_geotiff(tmp_path / "s2.tif", data, UTM, UTM_TRANSFORM, blocksize=16)
    return path, data


# ------------------------------------------------------------------------------------------------- metadata / GSD


def test_utm_metadata_and_window_transform(s2_stack):
    path, _ = s2_stack
    full = load_image(path)
    meta = full.meta
    assert meta.crs == UTM
    assert meta.transform == UTM_TRANSFORM
    assert meta.gsd == (0.5, 0.5)
    assert (meta.band_count, meta.dtype, meta.nodata) == (4, "uint16", None)
    assert meta.bounds == (500000.0, 4500000.0 - 45.0, 500000.0 + 60.0, 4500000.0)
    assert full.original_size == (120, 90) and full.size == (120, 90) and full.window == (0, 0, 120, 90)
    assert full.bands == (1, 2, 3) and full.valid_mask is None

    part = load_image(path, window=(10, 20, 40, 30))
    assert part.meta.window == (10, 20, 40, 30)
    # the transform maps pixel (0, 0) of the window to the window's corner in UTM metres
    assert part.meta.transform == (0.5, 0.0, 500005.0, 0.0, -0.5, 4499990.0)
    assert part.meta.bounds == (500005.0, 4499990.0 - 15.0, 500025.0, 4499990.0)
    assert part.original_size == (120, 90) and part.size == (40, 30)


def test_decimated_read_scales_gsd_and_transform(s2_stack):
    path, _ = s2_stack
    image = load_image(path, window=(0, 0, 120, 80), out_size=(30, 20))
    assert image.size == (30, 20)
    assert image.meta.gsd == (2.0, 2.0)
    assert image.meta.transform == (2.0, 0.0, 500000.0, 0.0, -2.0, 4500000.0)
    assert image.meta.bounds == (500000.0, 4500000.0 - 40.0, 500060.0, 4500000.0)
    assert image.box_to_source([0, 0, 30, 20]) == [0.0, 0.0, 120.0, 80.0]
    assert image.box_to_source([1, 2, 3, 4]) == [4.0, 8.0, 12.0, 16.0]


# Length of one degree on the WGS84 ellipsoid (published table, metres): latitude -> (along meridian, along parallel)
WGS84_DEGREE = {
    0: (110574, 111320),
    15: (110649, 107551),
    30: (110852, 96486),
    45: (111133, 78847),
    60: (111412, 55800),
}


@pytest.mark.parametrize("lat", sorted(WGS84_DEGREE))
def test_geographic_gsd_matches_published_degree_lengths(lat):
    step = 1e-3
    # 10 x 10 pixels centred on `lat`: the centre row is at top - 5 * step
    transform = (step, 0.0, 12.0, 0.0, -step, lat + 5 * step)
    gx, gy = gsd_metres(transform, "EPSG:4326", 10, 10)
    m_lat, m_lon = WGS84_DEGREE[lat]
    assert gx == pytest.approx(m_lon * step, abs=1.5 * step)  # table rounded to 1 m per degree
    assert gy == pytest.approx(m_lat * step, abs=1.5 * step)


def test_geographic_geotiff_meta(tmp_path):
    path = save_geotiff(
        tmp_path / "ll.tif", np.zeros((3, 20, 40), np.uint8), "EPSG:4326", (1e-4, 0, 10.0, 0, -1e-4, 45.001)
    )
    meta = load_image(path).meta
    assert meta.crs == "EPSG:4326"
    # centre latitude 45.000 -> 78,847 m per degree of longitude, 111,133 m per degree of latitude
    assert meta.gsd[0] == pytest.approx(7.8847, abs=2e-4)
    assert meta.gsd[1] == pytest.approx(11.1133, abs=2e-4)


def test_gsd_rotation_and_foot_units():
    theta = math.radians(30)
    rotated = (2 * math.cos(theta), -2 * math.sin(theta), 0, 2 * math.sin(theta), 2 * math.cos(theta), 0)
    assert gsd_metres(rotated, UTM, 10, 10) == pytest.approx((2.0, 2.0))
    # NAD83 / New York Long Island in US survey feet
    assert gsd_metres((1, 0, 0, 0, -1, 0), "EPSG:2263", 10, 10) == pytest.approx((1200 / 3937, 1200 / 3937))
    assert gsd_metres((1, 0, 0, 0, -1, 0), None, 10, 10) is None


def test_non_georeferenced_tiff(tmp_path):
    path = save_geotiff(tmp_path / "plain.tif", np.zeros((1, 8, 8), np.uint8), None, (1, 0, 0, 0, 1, 0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = load_image(path)
    assert not [w for w in caught if w.category is NotGeoreferencedWarning]
    assert image.meta.crs is None and image.meta.gsd is None
    assert np.asarray(image.pixels).shape == (8, 8, 3)


# ------------------------------------------------------------------------------------------------- bands / stretch


def test_band_selection_uint8(tmp_path):
    data = np.stack([np.full((6, 5), v, np.uint8) for v in (10, 20, 30, 40)])
    path = save_geotiff(tmp_path / "b.tif", data, UTM, UTM_TRANSFORM)
    assert np.asarray(load_image(path).pixels)[0, 0].tolist() == [10, 20, 30]
    assert np.asarray(load_image(path, bands=(4, 3, 2)).pixels)[0, 0].tolist() == [40, 30, 20]
    assert np.asarray(load_image(path, bands=(4,)).pixels)[0, 0].tolist() == [40, 40, 40]
    assert load_image(path, bands=(4, 3, 2)).value_range is None  # uint8 used as is

    single = save_geotiff(tmp_path / "one.tif", data[:1], UTM, UTM_TRANSFORM)
    image = load_image(single)
    assert image.bands == (1,) and np.asarray(image.pixels)[0, 0].tolist() == [10, 10, 10]


@pytest.mark.parametrize(
    ("bands", "match"),
    [
        ((5, 3, 2), r"band 5 does not exist; the image has 4 band\(s\), numbered 1..4"),
        ((0,), "1-based"),
        ((1, 2), "3 bands"),
    ],
)
def test_bad_band_selection(s2_stack, bands, match):
    path, _ = s2_stack
    with pytest.raises(ValueError, match=match):
        load_image(path, bands=bands)


def test_uint16_percentile_stretch_matches_numpy(s2_stack):
    path, data = s2_stack
    image = load_image(path, bands=(3, 2, 1))
    pixels = np.asarray(image.pixels)
    for channel, band in enumerate((3, 2, 1)):
        expected, lo, hi = hand_stretch(data[band - 1])
        assert image.value_range[channel] == (lo, hi)
        np.testing.assert_array_equal(pixels[:, :, channel], expected)


def test_stretch_is_computed_on_the_window(s2_stack):
    path, data = s2_stack
    x, y, w, h = 30, 10, 50, 40
    image = load_image(path, bands=(4,), window=(x, y, w, h))
    expected, lo, hi = hand_stretch(data[3, y : y + h, x : x + w])
    assert image.value_range == ((lo, hi),)
    np.testing.assert_array_equal(np.asarray(image.pixels)[:, :, 1], expected)


def test_fixed_value_range(s2_stack):
    path, data = s2_stack
    image = load_image(path, bands=(3, 2, 1), value_range=(0, 3000))
    expected = np.clip(np.rint(255.0 * data[2].astype(np.float64) / 3000), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(image.pixels)[:, :, 0], expected)
    per_band = load_image(path, bands=(3, 2, 1), value_range=[(0, 3000), (0, 2000), (100, 1100)])
    expected = np.clip(np.rint(255.0 * (data[0].astype(np.float64) - 100) / 1000), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(per_band.pixels)[:, :, 2], expected)
    with pytest.raises(ValueError, match="3 band"):
        load_image(path, value_range=[(0, 1), (0, 1)])
    with pytest.raises(ValueError, match="lo < hi"):
        load_image(path, value_range=(5, 5))


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", "int32", "float32", "float64"])
def test_percentiles_equal_numpy(dtype):
    rng = np.random.default_rng(3)
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    for n in (1, 2, 7, 1000, 4097):
        if info is not None:
            values = rng.integers(info.min, int(info.max) + 1, size=n, dtype=np.int64).astype(dtype)
        else:
            values = (rng.standard_normal(n) * 1e3).astype(dtype)
        for q in ((2, 98), (0, 100), (25, 75), (1.5, 99.9)):
            _, ((lo, hi),) = stretch_to_uint8(values.reshape(1, -1), percentiles=q)
            ref = np.percentile(values.astype(np.float64), q)
            assert (lo, hi) == (float(ref[0]), float(ref[1])), (dtype, n, q)


def test_int16_sar_and_float_with_nodata(tmp_path):
    rng = np.random.default_rng(11)
    sar = (rng.standard_normal((2, 40, 50)) * 400 - 1500).astype(np.int16)  # dB x 100, negative values
    sar[:, :5, :] = -32768
    path = save_geotiff(tmp_path / "sar.tif", sar, UTM, UTM_TRANSFORM, nodata=-32768)
    image = load_image(path)  # 2 bands -> band 1 as grey
    valid = sar[0] != -32768
    expected, lo, hi = hand_stretch(sar[0], valid)
    assert image.bands == (1,) and image.meta.nodata == -32768.0
    np.testing.assert_array_equal(image.valid_mask, valid)
    np.testing.assert_array_equal(np.asarray(image.pixels)[:, :, 0], expected)
    assert image.value_range == ((lo, hi),)

    ndvi = rng.uniform(-1, 1, size=(1, 30, 30)).astype(np.float32)
    ndvi[0, 0, :10] = np.nan
    ndvi[0, 1, :10] = -9999
    fpath = save_geotiff(tmp_path / "ndvi.tif", ndvi, UTM, UTM_TRANSFORM, nodata=-9999)
    image = load_image(fpath)
    valid = np.isfinite(ndvi[0]) & (ndvi[0] != -9999)
    expected, _, _ = hand_stretch(ndvi[0], valid)
    np.testing.assert_array_equal(image.valid_mask, valid)
    np.testing.assert_array_equal(np.asarray(image.pixels)[:, :, 2], expected)


def test_uint8_nodata_becomes_black(tmp_path):
    data = np.full((3, 10, 10), 200, np.uint8)
    data[:, 2:4, 2:4] = 7
    path = save_geotiff(tmp_path / "nd.tif", data, UTM, UTM_TRANSFORM, nodata=7)
    image = load_image(path)
    pixels = np.asarray(image.pixels)
    assert pixels[2, 2].tolist() == [0, 0, 0] and pixels[0, 0].tolist() == [200, 200, 200]
    assert image.valid_mask.sum() == 96


# ------------------------------------------------------------------------------------------------- windowed reads


@pytest.mark.parametrize(
    "window", [(0, 0, 120, 90), (3, 5, 17, 29), (15, 15, 2, 2), (100, 70, 20, 20), (16, 0, 64, 90)]
)
def test_window_equals_slice_of_full_read(s2_stack, window):
    path, data = s2_stack
    x, y, w, h = window
    expected = data[:, y : y + h, x : x + w].transpose(1, 2, 0)
    np.testing.assert_array_equal(read_window(path, x, y, w, h), expected)
    np.testing.assert_array_equal(read_window(path, x, y, w, h, bands=(4, 1)), expected[:, :, [3, 0]])
    with rasterio.open(path) as src:  # and what rasterio itself returns for the full raster
        np.testing.assert_array_equal(src.read()[:, y : y + h, x : x + w].transpose(1, 2, 0), expected)


def test_decimated_read_shape_and_average(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 60000, (2, 128, 192), dtype=np.uint16)
    path = save_geotiff(tmp_path / "d.tif", data, UTM, UTM_TRANSFORM, blocksize=32, overviews=False)
    small = read_window(path, 0, 0, 192, 128, out_size=(48, 32))
    assert small.shape == (32, 48, 2) and small.dtype == np.uint16
    block_mean = data.reshape(2, 32, 4, 48, 4).mean(axis=(2, 4)).transpose(1, 2, 0)
    assert np.abs(small - block_mean).max() <= 0.5  # GDAL rounds the 4x4 average to the nearest integer
    assert read_window(path, 32, 0, 64, 64, out_size=(7, 9)).shape == (9, 7, 2)


def test_decimated_read_uses_overviews(tmp_path):
    data = np.random.default_rng(2).integers(1, 255, (1, 128, 192), dtype=np.uint8)
    path = save_geotiff(tmp_path / "ovr.tif", data, UTM, UTM_TRANSFORM, blocksize=32)
    with rasterio.open(path) as src:
        assert src.overviews(1) == [2, 4, 8]
    with rasterio.open(path, "r+") as dst:  # blank the full-resolution pixels but keep the old overviews
        dst.write(np.zeros_like(data))
    assert read_window(path, 0, 0, 192, 128).max() == 0
    assert read_window(path, 0, 0, 192, 128, out_size=(48, 32)).min() > 0  # served from the 4x overview


def test_window_reader_tiles_share_one_stretch(s2_stack):
    path, data = s2_stack
    with open_window_reader(path, bands=(3, 2, 1)) as reader:
        assert reader.size == (120, 90) and reader.meta.crs == UTM
        # the stretch comes from the whole raster (here small enough to be read at full resolution)
        for channel, band in enumerate((3, 2, 1)):
            _, lo, hi = hand_stretch(data[band - 1])
            assert reader.value_range[channel] == (lo, hi)
        tile = reader(40, 30, 32, 32)
        assert tile.shape == (32, 32, 3) and tile.dtype == np.uint8
        same = load_image(path, bands=(3, 2, 1), window=(40, 30, 32, 32), value_range=reader.value_range)
        np.testing.assert_array_equal(tile, np.asarray(same.pixels))
        assert reader(0, 0, 64, 64, out_size=(16, 16)).shape == (16, 16, 3)
        with pytest.raises(ValueError, match="outside"):
            reader(100, 80, 32, 32)
    clone = pickle.loads(pickle.dumps(reader))  # e.g. sent to a DataLoader worker: reopens lazily
    np.testing.assert_array_equal(clone(40, 30, 32, 32), tile)
    clone.close()


def test_window_reader_stretch_from_reduced_resolution(tmp_path):
    rng = np.random.default_rng(5)
    data = rng.integers(0, 4000, (1, 2048, 1536), dtype=np.uint16)
    path = save_geotiff(tmp_path / "big.tif", data, UTM, UTM_TRANSFORM, blocksize=256)
    reader = open_window_reader(path)
    sample = read_window(path, 0, 0, 1536, 2048, out_size=(768, 1024))  # longest side 1024
    _, lo, hi = hand_stretch(sample[:, :, 0])
    assert reader.value_range == ((lo, hi),)
    reader.close()


# ------------------------------------------------------------------------------------------------- PNG / JPEG


def test_png_round_trip_and_size(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    path = tmp_path / "a.png"
    Image.fromarray(rgb).save(path)
    assert raster_size(path) == (53, 37)
    image = load_image(path)
    assert image.meta is None and image.size == (53, 37) and image.pixels.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(image.pixels), rgb)
    np.testing.assert_array_equal(read_window(path, 5, 6, 10, 11), rgb[6:17, 5:15])
    np.testing.assert_array_equal(np.asarray(load_image(path, window=(5, 6, 10, 11)).pixels), rgb[6:17, 5:15])
    np.testing.assert_array_equal(np.asarray(load_image(path, bands=(3, 1, 2)).pixels), rgb[:, :, [2, 0, 1]])


def test_jpeg_round_trip(tmp_path):
    yy, xx = np.mgrid[0:64, 0:96]
    rgb = np.stack([xx * 2, yy * 3, (xx + yy)], axis=-1).astype(np.uint8)
    path = tmp_path / "a.jpg"
    Image.fromarray(rgb).save(path, quality=95)
    image = load_image(path)
    assert image.size == (96, 64)
    assert np.abs(np.asarray(image.pixels).astype(int) - rgb).mean() < 2.0


def test_rgba_alpha_is_the_valid_mask(tmp_path):
    rgba = np.full((8, 8, 4), 255, np.uint8)
    rgba[:2, :, 3] = 0
    path = tmp_path / "a.png"
    Image.fromarray(rgba).save(path)
    image = load_image(path)
    assert image.bands == (1, 2, 3)
    assert image.valid_mask[:2].sum() == 0 and image.valid_mask[2:].all()
    assert np.asarray(image.pixels)[0, 0].tolist() == [0, 0, 0]
    assert np.asarray(image.pixels)[4, 4].tolist() == [255, 255, 255]


def test_grey_and_16bit_png(tmp_path):
    grey = np.arange(100, dtype=np.uint8).reshape(10, 10)
    Image.fromarray(grey).save(tmp_path / "g.png")
    pixels = np.asarray(load_image(tmp_path / "g.png").pixels)
    np.testing.assert_array_equal(pixels, np.repeat(grey[:, :, None], 3, axis=2))

    deep = np.random.default_rng(4).integers(0, 65535, (20, 30), dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "d.png")
    image = load_image(tmp_path / "d.png")
    expected, lo, hi = hand_stretch(deep)
    assert image.value_range == ((lo, hi),)
    np.testing.assert_array_equal(np.asarray(image.pixels)[:, :, 0], expected)
    np.testing.assert_array_equal(read_window(tmp_path / "d.png", 0, 0, 30, 20)[:, :, 0], deep)


# ------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_missing_file_names_the_path(tmp_path, suffix):
    path = tmp_path / f"nope{suffix}"
    for call in (
        lambda: load_image(path),
        lambda: read_window(path, 0, 0, 1, 1),
        lambda: raster_size(path),
        lambda: open_window_reader(path),
    ):
        with pytest.raises(FileNotFoundError, match=re.escape(f"nope{suffix}")):
            call()


def test_corrupt_and_truncated_files(tmp_path):
    garbage = os.urandom(2048)
    for name in ("bad.png", "bad.tif", "bad.jpg"):
        (tmp_path / name).write_bytes(garbage)
        with pytest.raises(ImageReadError, match=re.escape(name)):
            load_image(tmp_path / name)
    rgb = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "full.png")
    blob = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.png"):
        load_image(tmp_path / "cut.png")
    tif = save_geotiff(
        tmp_path / "full.tif", rgb.transpose(2, 0, 1), UTM, UTM_TRANSFORM, blocksize=64, overviews=False
    )
    blob = tif.read_bytes()
    (tmp_path / "cut.tif").write_bytes(blob[: len(blob) // 2])  # header intact, tiles missing
    with pytest.raises(ImageReadError, match=r"cut\.tif.*truncated"):
        load_image(tmp_path / "cut.tif")


@pytest.mark.parametrize("window", [(-1, 0, 10, 10), (0, 0, 121, 10), (110, 80, 20, 20), (0, 0, 0, 5)])
def test_window_outside_raster(s2_stack, window):
    path, _ = s2_stack
    with pytest.raises(ValueError, match=r"outside the 120x90 image|positive width"):
        read_window(path, *window)
    with pytest.raises(ValueError, match=r"outside the 120x90 image|positive width"):
        load_image(path, window=window)


def test_decompression_bomb_guard_and_opt_in(tmp_path, monkeypatch):
    path = tmp_path / "uhr.png"
    Image.new("RGB", (300, 200), (1, 2, 3)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # PIL errors above 2x this, i.e. 40,000 pixels
    assert raster_size(path) == (300, 200)  # the header alone is always readable
    with pytest.raises(ImageTooLargeError) as err:
        load_image(path)
    message = str(err.value)
    assert "uhr.png" in message and "60,000 pixels" in message and "40,000" in message
    assert "Cloud Optimized GeoTIFF" in message and "max_pixels=60000" in message
    with pytest.raises(ImageTooLargeError):
        load_image(path, max_pixels=59_999)
    image = load_image(path, max_pixels=60_000)  # opt in, although PIL's own global limit is lower
    assert image.size == (300, 200) and np.asarray(image.pixels)[0, 0].tolist() == [1, 2, 3]
    assert Image.MAX_IMAGE_PIXELS == 20_000  # PIL's global is restored

    tif = save_geotiff(tmp_path / "uhr.tif", np.zeros((3, 200, 300), np.uint8), UTM, UTM_TRANSFORM)
    with pytest.raises(ImageTooLargeError, match="out_size"):
        load_image(tif)
    assert load_image(tif, out_size=(150, 100)).size == (150, 100)  # decimated read stays under the limit


# ------------------------------------------------------------------------------------------------- writing


def test_save_geotiff_is_deterministic_atomic_and_cog(tmp_path):
    data = np.random.default_rng(9).integers(0, 3000, (3, 300, 260), dtype=np.uint16)
    a = save_geotiff(tmp_path / "a.tif", data, UTM, UTM_TRANSFORM, blocksize=64)
    b = save_geotiff(tmp_path / "b.tif", data, UTM, UTM_TRANSFORM, blocksize=64)
    assert a.read_bytes() == b.read_bytes()
    cog = save_geotiff(tmp_path / "c.tif", data, UTM, UTM_TRANSFORM, blocksize=64, cog=True)
    with rasterio.open(cog) as src:
        assert src.profile["tiled"] and src.profile["blockxsize"] == 64
        assert src.overviews(1) and src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        np.testing.assert_array_equal(src.read(), data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif", "b.tif", "c.tif"]  # no temp files left
    with pytest.raises(ValueError, match="transpose"):
        save_geotiff(tmp_path / "bad.tif", np.zeros((4, 4, 3, 1)), UTM, UTM_TRANSFORM)


def test_save_geotiff_tiled_matches_in_memory_write(tmp_path):
    data = np.random.default_rng(10).integers(0, 256, (3, 150, 170), dtype=np.uint8)
    calls = []

    def render(x, y, w, h):
        calls.append((x, y, w, h))
        return data[:, y : y + h, x : x + w]

    path = save_geotiff_tiled(
        tmp_path / "t.tif", (170, 150), 3, np.uint8, render, UTM, UTM_TRANSFORM, chunk=64, blocksize=32
    )
    assert calls[0] == (0, 0, 64, 64) and calls[-1] == (128, 128, 42, 22) and len(calls) == 9
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(src.read(), data)
        assert src.crs.to_epsg() == 32633 and src.overviews(1) == [2, 4, 8]

    def broken(x, y, w, h):
        if x > 0:
            raise RuntimeError("render failed")
        return data[:, y : y + h, x : x + w]

    with pytest.raises(RuntimeError, match="render failed"):
        save_geotiff_tiled(
            tmp_path / "broken.tif", (170, 150), 3, np.uint8, broken, UTM, UTM_TRANSFORM, chunk=64
        )
    assert not (tmp_path / "broken.tif").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.tif"]


def test_import_is_light():
    code = "import sys, rszoo.data.images; print(sorted(m for m in ('rasterio', 'PIL', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims ``width`` x ``height`` RGB but whose pixel data is cut short."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + b"\x00" * (3 * width))  # a single scanline
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def test_uhr_png_is_refused_with_pils_default_limit(tmp_path):
    path = tmp_path / "uhr_27000x20000.png"
    _png_header_only(path, 27000, 20000)
    assert raster_size(path) == (27000, 20000)
    with pytest.raises(
        ImageTooLargeError, match=r"540,000,000 pixels exceeds the decode limit of 178,956,970"
    ):
        load_image(path)


def test_uhr_geotiff_preview_without_full_decode(tmp_path):
    path = tmp_path / "uhr.tif"
    profile = dict(
        driver="GTiff",
        width=27000,
        height=20000,
        count=3,
        dtype="uint8",
        crs=UTM,
        tiled=True,
        blockxsize=512,
        blockysize=512,
        transform=rasterio.Affine(*UTM_TRANSFORM),
        SPARSE_OK=True,
    )
    with rasterio.open(path, "w", **profile) as dst:  # sparse: only one tile is actually written
        dst.write(np.full((3, 512, 512), 200, np.uint8), window=rasterio.windows.Window(1024, 512, 512, 512))
    with pytest.raises(ImageTooLargeError, match="out_size"):
        load_image(path)
    preview = load_image(path, out_size=(1176, 840), resampling="nearest")  # no overviews: keep it cheap
    assert preview.size == (1176, 840) and preview.meta.gsd == pytest.approx(
        (0.5 * 27000 / 1176, 0.5 * 20000 / 840)
    )
    tile = load_image(path, window=(1024, 512, 512, 512))
    assert np.asarray(tile.pixels).min() == 200


def test_fast_rgb_path_equals_the_general_path(tmp_path):
    """8-bit RGB PNG/JPEG skip the band/stretch machinery; the pixels must be exactly those of the general path."""
    from rszoo.data.images import load_image

    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, (37, 53, 3), dtype=np.uint8)).save(tmp_path / "rgb.png")
    fast = load_image(tmp_path / "rgb.png")
    general = load_image(tmp_path / "rgb.png", bands=(1, 2, 3))
    assert np.array_equal(np.asarray(fast.pixels), np.asarray(general.pixels))
    assert (fast.original_size, fast.window, fast.bands, fast.meta) == (
        (53, 37),
        (0, 0, 53, 37),
        (1, 2, 3),
        None,
    )
