"""Scene generation: cut a tile out of a world, place objects, attach an acquisition (one job: the recipe).

Example:
    >>> a = generate_scene(5, size=128)
    >>> b = generate_scene(5, size=128)
    >>> a == b and a.width == 128 and a.generator == GENERATOR_VERSION
    True
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from rszoo.data.synth.acquire import latlon_of, sample_acquisition
from rszoo.data.synth.categories import LANDCOVER_KINDS
from rszoo.data.synth.graph import Acquisition, Scene
from rszoo.data.synth.placement import Placer
from rszoo.data.synth.raster import layout_raster, semantic_of
from rszoo.data.synth.render import CHUNK, render, render_with_layout
from rszoo.data.synth.seeding import mix, stream
from rszoo.data.synth.world import find_landuse, layout

__all__ = ["GENERATOR_VERSION", "LANDUSE_TARGETS", "generate_scene", "synthesize"]

GENERATOR_VERSION = "rszoo-synth/1.0.0"

# Where default scenes are centred: mostly object-rich places, some anywhere, so data sets are instructive.
LANDUSE_TARGETS: tuple[tuple[str, float], ...] = (
    ("residential", 0.3),
    ("industrial", 0.19),
    ("airport", 0.11),
    ("river", 0.13),
    ("grassland", 0.12),
    ("any", 0.15),
)
_VALID_LANDUSE = (*LANDCOVER_KINDS, "river", "any")

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image


def _pick(rng_value: float, table: tuple[tuple[str, float], ...]) -> str:
    total = sum(w for _, w in table)
    r = rng_value * total
    for name, w in table:
        if r < w:
            return name
        r -= w
    return table[-1][0]


def generate_scene(
    seed: int,
    size: int = 256,
    *,
    width: int | None = None,
    height: int | None = None,
    gsd: float | None = None,
    world_seed: int | None = None,
    origin: tuple[float, float] | None = None,
    landuse: str | None = None,
    acquisition: bool | Acquisition | None = True,
    timestamp: str | None = None,
    cloud_cover: float = 0.0,
    off_nadir: float | None = None,
    density: float = 1.0,
    scene_id: str | None = None,
) -> Scene:
    """Generate one scene graph (deterministic in all arguments).

    Args:
        seed: scene seed.
        size: square image size in pixels (``width``/``height`` override it).
        width, height: image size in pixels.
        gsd: metres per pixel; drawn from [0.3, 0.8] when ``None``.
        world_seed: the world to cut the tile from (default: derived from ``seed``; tiles of one world join up).
        origin: world metres of the top-left corner; default: a random place centred on ``landuse``.
        landuse: what to centre the tile on when ``origin`` is ``None``: a land-cover kind, ``"river"`` or
            ``"any"``; default: drawn from :data:`LANDUSE_TARGETS`.
        acquisition: ``True`` draws one (sun, date, view), an :class:`Acquisition` is used as given, ``False``/``None``
            means none (no shadows, no clouds).
        timestamp: fix the acquisition time (ISO-8601), sun angles follow.
        cloud_cover: fraction of the image under cloud (needs an acquisition).
        off_nadir: view angle in degrees (default drawn, mostly < 15).
        density: scales the number of objects (1.0 default).
        scene_id: identifier stored in the scene (default ``synth-<seed>``).

    Raises:
        ValueError: for sizes < 16 px, a non-positive gsd or density, an unknown ``landuse`` or a cloud cover outside
            [0, 1]; the message names the argument.
    """
    width = int(width or size)
    height = int(height or size)
    if width < 16 or height < 16:
        raise ValueError(f"image size must be at least 16x16 px, got {width}x{height}")
    if gsd is not None and gsd <= 0:
        raise ValueError(f"gsd must be positive (metres per pixel), got {gsd}")
    if density <= 0:
        raise ValueError(f"density must be positive, got {density}")
    if not 0.0 <= cloud_cover <= 1.0:
        raise ValueError(f"cloud_cover must be within [0, 1], got {cloud_cover}")
    if landuse is not None and landuse not in _VALID_LANDUSE:
        raise ValueError(f"landuse {landuse!r} is not one of {list(_VALID_LANDUSE)}")
    rng = stream(seed, "scene")
    drawn_gsd = round(rng.uniform(0.3, 0.8), 3)
    if gsd is None:
        gsd = acquisition.gsd if isinstance(acquisition, Acquisition) else drawn_gsd
    gsd = float(gsd)
    world_seed = (mix(seed, "world") & 0x7FFFFFFF) if world_seed is None else int(world_seed)
    if origin is None:
        start = (rng.uniform(-40_000.0, 40_000.0), rng.uniform(-40_000.0, 40_000.0))
        target = landuse or _pick(rng.random(), LANDUSE_TARGETS)
        centre = start
        if target != "any":
            try:
                centre = find_landuse(world_seed, target, start)
            except ValueError:
                centre = start
        jitter = 0.2
        cx = centre[0] + rng.uniform(-jitter, jitter) * width * gsd
        cy = centre[1] + rng.uniform(-jitter, jitter) * height * gsd
        origin = (cx - width * gsd / 2, cy - height * gsd / 2)
    origin = (round(float(origin[0]), 3), round(float(origin[1]), 3))
    lay = layout(world_seed, origin, gsd, width, height)

    acq: Acquisition | None
    if isinstance(acquisition, Acquisition):
        acq = acquisition
    elif acquisition:
        lat, lon = latlon_of(world_seed, origin[0] + width * gsd / 2, origin[1] + height * gsd / 2)
        acq = sample_acquisition(
            stream(seed, "acquisition"),
            lat,
            lon,
            gsd,
            timestamp=timestamp,
            cloud_cover=cloud_cover,
            off_nadir=off_nadir,
        )
    else:
        if cloud_cover > 0:
            raise ValueError("cloud_cover > 0 needs an acquisition; pass acquisition=True")
        acq = None

    landcover = None
    shared = _SHARED_LAYOUT.get()
    if shared is not None and width <= CHUNK and height <= CHUNK:
        # synthesize() renders next: draw the renderer's material raster now; placement uses its semantic view
        materials = layout_raster(
            lay.regions, lay.rivers, lay.roads, gsd, 0, 0, width, height, semantic=False
        )
        shared.append(materials)
        landcover = semantic_of(materials[0])
    placer = Placer(
        width, height, gsd, lay.regions, lay.rivers, lay.roads, stream(seed, "objects"), density, landcover
    )
    objects = placer.populate(lay.blocks, lay.bridges)
    return Scene(
        id=scene_id or f"synth-{seed}",
        seed=int(seed),
        width=width,
        height=height,
        gsd=gsd,
        origin=origin,
        world_seed=world_seed,
        regions=lay.regions,
        roads=lay.roads,
        rivers=lay.rivers,
        objects=objects,
        acquisition=acq,
        generator=GENERATOR_VERSION,
    )


def synthesize(seed: int, size: int = 256, **options: Any) -> tuple[Scene, np.ndarray]:
    """A scene and its image: ``(generate_scene(seed, size, **options), render(scene))``, the same graph and the same
    bytes, faster for scenes of one render chunk (up to 512 px a side): the layout raster that object placement
    looks land cover up in is drawn once and reused by the renderer instead of being drawn twice.

    Example:
        >>> from rszoo.data.synth import render
        >>> scene, image = synthesize(11, size=96)
        >>> scene == generate_scene(11, size=96) and bool((image == render(scene)).all())
        True
    """
    shared: list[tuple[Image.Image, dict[int, list[int]]]] = []
    token = _SHARED_LAYOUT.set(shared)
    try:
        scene = generate_scene(seed, size, **options)
    finally:
        _SHARED_LAYOUT.reset(token)
    return scene, render_with_layout(scene, shared[0]) if shared else render(scene)


# Set by synthesize() around its generate_scene() call: where generate_scene leaves the material layout raster it
# drew for placement (a context variable, so the hand-off belongs to that one call, also across threads).
_SHARED_LAYOUT: ContextVar[list | None] = ContextVar("rszoo_synth_shared_layout", default=None)
