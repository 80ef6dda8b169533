"""Window reads from a large tiled GeoTIFF: rszoo ``read_window`` vs decoding the whole raster and slicing.

Writes a ``--size`` x ``--size`` 3-band uint8 GeoTIFF (512 px deflate tiles + internal overviews, i.e. what
``save_geotiff_tiled`` produces for the synthetic UHR scenes) into a temp dir, then in one process:

1. ``read_window(path, x, y, 512, 512)`` at seeded random positions (only the intersecting tiles are decoded);
2. ``read_window(path, 0, 0, W, H, out_size=(1024, 1024))``: a whole-scene preview served from the overviews;
3. the alternative: ``rasterio.open(path).read()`` (the whole raster) then ``array[:, y:y+512, x:x+512]``.

Wall time is the median over repeats; peak RSS is measured per phase by resetting the kernel's high-water mark
(``/proc/self/clear_refs``) and reading ``VmHWM``, reported as the increase over the RSS before the phase. GDAL's
block cache is left at its default (``GDAL_CACHEMAX``, recorded in the JSON), as a user would run it.

Usage: ``python benchmarks/data/bench_window_read.py [--size 16384] [--window 512] [--reads 20]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from _common import measure, save_result, track_memory_exactly  # noqa: E402

from rszoo.data.images import read_window, save_geotiff_tiled  # noqa: E402


def render_scene(x: int, y: int, w: int, h: int) -> np.ndarray:
    """Deterministic smooth 'terrain' plus seeded noise for one chunk, (3, h, w) uint8."""
    yy, xx = np.mgrid[y : y + h, x : x + w].astype(np.float32)
    base = 110 + 60 * np.sin(xx / 700.0) * np.cos(yy / 900.0)
    noise = np.random.default_rng([x, y]).integers(0, 24, size=(3, h, w), dtype=np.uint8)
    bands = np.stack([base, base * 0.9 + 20, base * 0.7 + 30]).astype(np.uint8)
    return bands + noise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16384, help="raster side in pixels")
    parser.add_argument("--window", type=int, default=512, help="window side in pixels")
    parser.add_argument("--reads", type=int, default=20, help="random window reads to time")
    parser.add_argument("--full-repeats", type=int, default=3, help="whole-raster decodes to time")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import rasterio

    track_memory_exactly()
    size, win = args.size, args.window
    rng = np.random.default_rng(0)
    windows = [
        (int(rng.integers(0, size - win)), int(rng.integers(0, size - win))) for _ in range(args.reads)
    ]

    with tempfile.TemporaryDirectory(prefix="rszoo-bench-") as tmp:
        path = Path(tmp) / "scene.tif"
        t0 = time.perf_counter()
        save_geotiff_tiled(
            path, (size, size), 3, np.uint8, render_scene, "EPSG:32633", (0.3, 0, 500000, 0, -0.3, 4500000)
        )
        write_s = time.perf_counter() - t0
        with rasterio.open(path) as src:
            overviews = src.overviews(1)
        file_mib = path.stat().st_size / 2**20
        print(f"wrote {size}x{size} GeoTIFF ({file_mib:.0f} MiB, overviews {overviews}) in {write_s:.1f} s")

        position = iter(windows * 1000)

        def ours() -> np.ndarray:
            x, y = next(position)
            return read_window(path, x, y, win, win)

        ours_result = measure(ours, args.reads)
        preview = measure(lambda: read_window(path, 0, 0, size, size, out_size=(1024, 1024)), 3)

        def full_then_slice() -> np.ndarray:
            x, y = windows[0]
            with rasterio.open(path) as src:
                whole = src.read()
            return np.ascontiguousarray(whole[:, y : y + win, x : x + win].transpose(1, 2, 0))

        full_result = measure(full_then_slice, args.full_repeats)

        # correctness: the window read equals the slice of the full decode
        with rasterio.open(path) as src:
            whole = src.read()
        for x, y in windows[:5]:
            assert np.array_equal(
                read_window(path, x, y, win, win), whole[:, y : y + win, x : x + win].transpose(1, 2, 0)
            )
        del whole
        gdal_cachemax = rasterio.env.get_gdal_config("GDAL_CACHEMAX")

    time_ratio = full_result["median_s"] / ours_result["median_s"]
    rss_ratio = full_result["peak_rss_increase_mib"] / max(ours_result["peak_rss_increase_mib"], 1e-3)
    data = {
        "raster": {
            "width": size,
            "height": size,
            "bands": 3,
            "dtype": "uint8",
            "tile": 512,
            "compress": "deflate",
            "overviews": overviews,
            "file_mib": round(file_mib, 1),
            "write_s": round(write_s, 2),
            "decoded_mib": round(3 * size * size / 2**20, 1),
        },
        "window": win,
        "gdal_cachemax_bytes": gdal_cachemax,
        "results": {
            "rszoo_read_window": ours_result,
            "rszoo_read_window_preview_1024": preview,
            "rasterio_full_read_then_slice": full_result,
        },
        "ratios": {
            "time_full_over_window": round(time_ratio, 1),
            "peak_rss_full_over_window": round(rss_ratio, 1),
            "time_full_over_preview": round(full_result["median_s"] / preview["median_s"], 1),
        },
    }

    labels = [f"read_window\n{win}x{win}", "read_window\npreview 1024²\n(overviews)", "full decode\n+ slice"]
    results = [ours_result, preview, full_result]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, title in (
        (axes[0], "median_s", "median wall time (s)"),
        (axes[1], "peak_rss_increase_mib", "peak RSS increase (MiB)"),
    ):
        values = [max(r[key], 1e-4) for r in results]
        bars = ax.bar(labels, values, color=["tab:blue", "tab:cyan", "tab:gray"])
        ax.set_yscale("log")
        ax.set_title(title)
        for bar, value in zip(bars, values):
            ax.annotate(f"{value:.3g}", (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom")
    fig.suptitle(
        f"{size}x{size} tiled GeoTIFF: window read is {time_ratio:.0f}x faster, {rss_ratio:.0f}x less peak memory"
    )
    fig.tight_layout()
    save_result("window_read", data, fig)


if __name__ == "__main__":
    main()
