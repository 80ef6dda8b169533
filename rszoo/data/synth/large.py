"""Large scenes (4096 px and up): generation, chunked rendering and GeoTIFF geo-referencing (one job: big images).

A large scene is an ordinary :class:`~rszoo.data.synth.graph.Scene` with thousands of small objects. Nothing builds
a full-size intermediate: the layout raster used for placement is made in 1024 px tiles (16 kept), and rendering goes
chunk by chunk (:data:`~rszoo.data.synth.render.CHUNK` px), so peak memory is the output image plus one chunk --
or just one chunk when streaming to a GeoTIFF with :func:`write_geotiff`.

The GeoTIFF CRS is the UTM zone of the scene centre (WGS 84); the transform puts the scene's top-left corner at its
projected position with square ``gsd`` pixels, north up (the local tangent plane of the world is treated as the UTM
grid; the meridian convergence, < 1 deg within a zone, is ignored).

Example:
    >>> scene = generate_large_scene(1, 600, 500)
    >>> (scene.width, scene.height), len(scene.objects) > 0
    ((600, 500), True)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rszoo.data.synth.acquire import latlon_of
from rszoo.data.synth.generate import generate_scene
from rszoo.data.synth.graph import Scene
from rszoo.data.synth.render import iter_chunks, render

__all__ = ["generate_large_scene", "geo_reference", "render_large", "write_geotiff"]


def generate_large_scene(
    seed: int, width: int = 4096, height: int = 4096, density: float = 1.0, **options: Any
) -> Scene:
    """A large scene (default 4096 x 4096) centred on a town: many small objects at the default 0.3-0.8 m gsd.

    ``options`` are those of :func:`~rszoo.data.synth.generate.generate_scene` (``gsd``, ``world_seed``, ``origin``,
    ``acquisition``, ``cloud_cover`` ...); ``landuse`` defaults to ``residential`` so the centre is built up.
    """
    options.setdefault("landuse", "residential")
    options.setdefault("scene_id", f"large-{seed}")
    return generate_scene(seed, width=width, height=height, density=density, **options)


def render_large(scene: Scene) -> np.ndarray:
    """Render a (large) scene chunk by chunk into one ``H x W x 3`` array (same pixels as :func:`render`)."""
    return render(scene)


def geo_reference(scene: Scene) -> tuple[str, Any]:
    """``(crs, affine_transform)`` for the scene: UTM zone of its centre, top-left corner, ``gsd`` pixels."""
    from rasterio.crs import CRS
    from rasterio.transform import Affine
    from rasterio.warp import transform as warp_transform

    cx = scene.origin[0] + scene.width * scene.gsd / 2
    cy = scene.origin[1] + scene.height * scene.gsd / 2
    lat_c, lon_c = latlon_of(scene.world_seed, cx, cy)
    zone = int((lon_c + 180.0) // 6.0) % 60 + 1
    epsg = (32600 if lat_c >= 0 else 32700) + zone
    lat0, lon0 = latlon_of(scene.world_seed, scene.origin[0], scene.origin[1])
    xs, ys = warp_transform(CRS.from_epsg(4326), CRS.from_epsg(epsg), [lon0], [lat0])
    transform = Affine(scene.gsd, 0.0, float(xs[0]), 0.0, -scene.gsd, float(ys[0]))
    return f"EPSG:{epsg}", transform


def write_geotiff(scene: Scene, path: str | Path) -> Path:
    """Stream the rendered scene into a tiled, deflate-compressed RGB GeoTIFF, one chunk at a time.

    Written to a temporary name and renamed, like every file of the generator.
    """
    import os

    import rasterio
    from rasterio.windows import Window

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    crs, transform = geo_reference(scene)
    profile = {
        "driver": "GTiff",
        "width": scene.width,
        "height": scene.height,
        "count": 3,
        "dtype": "uint8",
        "crs": crs,
        "transform": transform,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "photometric": "RGB",
    }
    # rasterio writes by path, so the temp-file-and-rename of rszoo.utils.io.atomic_write is done by hand here
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.tif")
    try:
        with rasterio.open(tmp, "w", **profile) as dst:
            for x, y, tile in iter_chunks(scene):
                h, w = tile.shape[:2]
                dst.write(np.moveaxis(tile, 2, 0), window=Window(x, y, w, h))
            dst.update_tags(generator=scene.generator, scene_id=scene.id, gsd=str(scene.gsd))
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
