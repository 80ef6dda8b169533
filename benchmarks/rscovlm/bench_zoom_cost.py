"""Zoom-in Chain cost vs image size: visual tokens, wall time and peak memory of the two views.

For square synthetic images from 1,024 to 27,000 px per side (tiled zstd GeoTIFFs with internal overviews: uniform
ground plus one rendered synthetic 1,024 px scene at the centre, so the rasters write in seconds), in one process:

* **tokens** -- the visual tokens the Zoom-in Chain feeds the model (full view + zoomed view, counted by a real
  Qwen2.5-VL image processor at the paper's budget, 224^2 .. 1008^2 pixels) vs the tokens one full-resolution view
  would need (``smart_resize`` with no upper bound: ``round(H/28) * round(W/28)``);
* **preparing the two views** -- rszoo (:func:`read_full_view`: decimated read from the overviews;
  :func:`read_zoom_view`: windowed read of the tiles under the box) vs decoding the whole image and resizing / cropping
  it in memory, as RSCoVLM's training loader does with PIL (only for sizes up to ``--max-whole`` px, where the
  decode fits comfortably in memory);
* **end to end** -- :func:`zoom_in_answer` with a scripted stand-in for the network (real processor, replies fixed:
  a tool call on the rendered scene, then an answer), i.e. everything but the transformer itself.

Wall time is the median over repeats; peak RSS is the increase of the kernel's high-water mark over the RSS before
the phase (``/proc/self/clear_refs`` + ``VmHWM``). The uniform ground decompresses faster than real imagery, which
favours the whole-image decode: the reported ratios are conservative.

Usage: ``python benchmarks/rscovlm/bench_zoom_cost.py [--sizes 1024 2048 ... 27000] [--max-whole 16384]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from _common import measure, save_result, track_memory_exactly  # noqa: E402

from rszoo.data.images import load_image, save_geotiff_tiled  # noqa: E402
from rszoo.data.resize import smart_resize  # noqa: E402
from rszoo.models.rscovlm.zoom import (  # noqa: E402
    format_tool_call,
    read_full_view,
    read_zoom_view,
    zoom_in_answer,
)

MIN_PIXELS, MAX_PIXELS, FACTOR = 224 * 224, 1008 * 1008, 28  # the paper's budget (notes §0.9)
SCENE = 1024  # side of the rendered synthetic scene placed at the centre
ZOOM = 512  # side of the region the scripted model zooms into
GROUND = (96, 104, 84)


def write_raster(path: Path, size: int, scene_rgb: np.ndarray) -> tuple[float, tuple[int, int]]:
    """A size x size RGB tiled GeoTIFF with overviews; the scene at the centre. Returns (seconds, scene origin)."""
    ox = oy = max(0, size // 2 - SCENE // 2)
    scene = scene_rgb[: size - oy, : size - ox]
    chunk = 2048
    ground = np.empty((3, chunk, chunk), np.uint8)
    ground[:] = np.array(GROUND, np.uint8)[:, None, None]

    def render(x: int, y: int, w: int, h: int) -> np.ndarray:
        out = ground[:, :h, :w]
        ax, ay = max(x, ox), max(y, oy)
        bx, by = min(x + w, ox + scene.shape[1]), min(y + h, oy + scene.shape[0])
        if ax < bx and ay < by:
            out = out.copy()
            out[:, ay - y : by - y, ax - x : bx - x] = np.moveaxis(
                scene[ay - oy : by - oy, ax - ox : bx - ox], 2, 0
            )
        return out

    t0 = time.perf_counter()
    save_geotiff_tiled(
        path,
        (size, size),
        3,
        np.uint8,
        render,
        "EPSG:32633",
        (0.3, 0, 500000, 0, -0.3, 4500000),
        chunk=chunk,
        compress="zstd",
    )
    return time.perf_counter() - t0, (ox, oy)


class ScriptedVLM:
    """Stands in for the network: a real Qwen2.5-VL processor at the paper's budget and two fixed replies."""

    def __init__(self, processor: Any, box_model: list[int]) -> None:
        self.processor = processor
        self.box_model = box_model
        self.turn = 0

    def chat(self, conversations: list, images: list, **kwargs: Any) -> list[str]:
        self.turn += 1
        return [format_tool_call(self.box_model) if self.turn % 2 else "white"]


def decode_whole_views(
    path: Path, box: list[int], view: tuple[int, int], crop_view: tuple[int, int]
) -> list[Any]:
    """The alternative: decode the whole raster, resize it to the view, crop the box natively and resize that."""
    from PIL import Image

    whole = load_image(path, max_pixels=2**40).pixels  # opt in past PIL's decompression-bomb limit
    full = whole.resize(view, Image.Resampling.BICUBIC)
    crop = whole.crop(tuple(box))
    if crop.size != crop_view:
        crop = crop.resize(crop_view, Image.Resampling.BICUBIC)
    return [full, crop]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384, 27000])
    parser.add_argument(
        "--max-whole", type=int, default=16384, help="largest side decoded whole for comparison"
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import rasterio

    from rszoo.data.synth import generate_large_scene, render
    from rszoo.tokenizers.qwen_tiny import build_processor

    track_memory_exactly()
    processor = build_processor("qwen2_5_vl", min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    scene_rgb = render(generate_large_scene(3, SCENE, SCENE))
    rows = []
    with tempfile.TemporaryDirectory(prefix="rszoo-zoom-") as tmp:
        for size in args.sizes:
            path = Path(tmp) / f"uhr_{size}.tif"
            write_s, (ox, oy) = write_raster(path, size, scene_rgb)
            # the scripted model zooms into a ZOOM px square at the centre of the rendered scene
            x0, y0 = ox + min(SCENE, size) // 2 - ZOOM // 2, oy + min(SCENE, size) // 2 - ZOOM // 2
            box = [x0, y0, x0 + ZOOM, y0 + ZOOM]
            view_h, view_w = smart_resize(size, size, FACTOR, MIN_PIXELS, MAX_PIXELS)
            box_model = [
                int(box[0] * view_w / size),
                int(box[1] * view_h / size),
                -(-box[2] * view_w // size),
                -(-box[3] * view_h // size),
            ]
            stub = ScriptedVLM(processor, box_model)
            result = zoom_in_answer(
                stub,
                path,
                "What color is the largest building?",
                min_pixels=MIN_PIXELS,
                max_pixels=MAX_PIXELS,
            )
            assert result["mode"] == "zoom", result["mode"]
            zoom_box = result["box"]
            end_to_end = measure(
                lambda p=path, s=stub: zoom_in_answer(
                    s, p, "What color is the largest building?", min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS
                ),
                args.repeats,
            )

            def ours(p: Path = path, b: list[int] = zoom_box) -> list[Any]:
                full, _ = read_full_view(p, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, factor=FACTOR)
                zoom = read_zoom_view(p, b, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, factor=FACTOR)
                return [full, zoom[0] if zoom else None]

            ours_views = ours()
            ours_cost = measure(ours, args.repeats)
            crop_view = ours_views[1].size
            whole_cost = None
            if size <= args.max_whole:
                whole_views = decode_whole_views(path, zoom_box, (view_w, view_h), crop_view)
                # same views up to resampling: the zoomed view is native in both (identical pixels when unscaled)
                assert whole_views[0].size == ours_views[0].size and whole_views[1].size == crop_view
                if crop_view == (zoom_box[2] - zoom_box[0], zoom_box[3] - zoom_box[1]):
                    assert np.array_equal(np.asarray(whole_views[1]), np.asarray(ours_views[1]))
                del whole_views
                whole_cost = measure(
                    lambda p=path, b=zoom_box, cv=crop_view, v=(view_w, view_h): decode_whole_views(
                        p, b, v, cv
                    ),
                    max(1, args.repeats - 1) if size <= 8192 else 1,
                )
            full_h, full_w = smart_resize(size, size, FACTOR, MIN_PIXELS, 2**62)  # no upper bound
            tokens = result["visual_tokens"]
            two_views = tokens["full_view"] + tokens["zoom_view"]
            single = full_w * full_h // FACTOR**2
            with rasterio.open(path) as src:
                overviews = src.overviews(1)
            row = {
                "size": size,
                "raster": {
                    "write_s": round(write_s, 2),
                    "file_mib": round(path.stat().st_size / 2**20, 2),
                    "overviews": overviews,
                    "decoded_mib": round(3 * size * size / 2**20, 1),
                },
                "zoom_box": zoom_box,
                "views": {
                    "full_view": result["sizes"]["full_view"],
                    "zoom_view": result["sizes"]["zoom_view"],
                },
                "tokens": {
                    "full_view": tokens["full_view"],
                    "zoom_view": tokens["zoom_view"],
                    "two_views": two_views,
                    "prompt_total_both_turns": tokens["prompt_total"],
                    "single_full_resolution_view": single,
                    "single_over_two_views": round(single / two_views, 2),
                },
                "prepare_views_rszoo": ours_cost,
                "prepare_views_decode_whole": whole_cost,
                "zoom_in_answer_end_to_end_scripted": end_to_end,
            }
            if whole_cost is not None:
                row["ratios"] = {
                    "time_whole_over_rszoo": round(whole_cost["median_s"] / ours_cost["median_s"], 1),
                    "peak_rss_whole_over_rszoo": round(
                        whole_cost["peak_rss_increase_mib"] / max(ours_cost["peak_rss_increase_mib"], 0.1), 1
                    ),
                }
            print(
                f"{size:>6} px: tokens {two_views} (two views) vs {single} (one full-res view); prepare views "
                f"{ours_cost['median_s']:.3f} s / {ours_cost['peak_rss_increase_mib']} MiB"
                + (
                    f" vs decode whole {whole_cost['median_s']:.2f} s / {whole_cost['peak_rss_increase_mib']} MiB"
                    if whole_cost
                    else ""
                )
            )
            rows.append(row)
            path.unlink()
        gdal_cachemax = rasterio.env.get_gdal_config("GDAL_CACHEMAX")

    sizes = [r["size"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    ax.plot(
        sizes,
        [r["tokens"]["single_full_resolution_view"] for r in rows],
        "o-",
        color="tab:gray",
        label="one full-resolution view",
    )
    ax.plot(
        sizes,
        [r["tokens"]["two_views"] for r in rows],
        "o-",
        color="tab:blue",
        label="Zoom-in Chain (2 views)",
    )
    ax.set(
        xscale="log", yscale="log", xlabel="image side (px)", ylabel="visual tokens", title="visual tokens"
    )
    ax.legend()
    whole_rows = [r for r in rows if r["prepare_views_decode_whole"]]
    for ax, key, title in (
        (axes[1], "median_s", "preparing the two views: wall time (s)"),
        (axes[2], "peak_rss_increase_mib", "preparing the two views: peak RSS increase (MiB)"),
    ):
        ax.plot(
            sizes,
            [max(r["prepare_views_rszoo"][key], 0.05) for r in rows],
            "o-",
            color="tab:blue",
            label="rszoo: decimated + windowed reads",
        )
        ax.plot(
            [r["size"] for r in whole_rows],
            [max(r["prepare_views_decode_whole"][key], 0.05) for r in whole_rows],
            "o-",
            color="tab:gray",
            label="decode whole image",
        )
        ax.set(xscale="log", yscale="log", xlabel="image side (px)", title=title)
        ax.legend()
    fig.suptitle(
        f"Zoom-in Chain cost on square tiled GeoTIFFs (budget {MIN_PIXELS}..{MAX_PIXELS} px per view)"
    )
    fig.tight_layout()
    save_result(
        "zoom_cost",
        {
            "budget": {"min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS, "factor": FACTOR},
            "raster": "square RGB uint8 GeoTIFF, 512 px zstd tiles, internal overviews; uniform ground + one "
            f"{SCENE} px rendered synthetic scene at the centre",
            "max_whole_decode_side": args.max_whole,
            "gdal_cachemax": gdal_cachemax,
            "results": rows,
        },
        fig,
    )


if __name__ == "__main__":
    main()
