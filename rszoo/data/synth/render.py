"""Rasterise a scene graph into an RGB image (one job: pictures; vectorised numpy/PIL only).

Pipeline per chunk: layout raster of material slots -> textures pasted through slot masks (precomputed, world-aligned
banks) -> furrows, parking stalls and apron lines -> road markings -> shadows (swept along the sun direction, from the
acquisition) -> objects, category by category (oriented outlines with parts: windows, court lines, containers ...) ->
radiometry (sun elevation, haze growing with the off-nadir angle) -> clouds and their shadows -> sensor noise.

Images are rendered on a fixed grid of ``CHUNK x CHUNK`` tiles anchored at the scene origin; :func:`render_window`
renders only the chunks a window touches and crops them, so any window equals the same crop of :func:`render`
pixel for pixel (PIL's scanline fill is not exactly translation invariant, so a fixed grid is what makes that true),
and a large scene never needs more memory than its output image plus one chunk.

Example:
    >>> from rszoo.data.synth import generate_scene
    >>> scene = generate_scene(2, size=96)
    >>> img = render(scene)
    >>> img.shape, img.dtype.name
    ((96, 96, 3), 'uint8')
    >>> bool((render_window(scene, 10, 20, 30, 40) == img[20:60, 10:40]).all())
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from functools import cache, lru_cache

import numpy as np
from PIL import Image, ImageDraw

from rszoo.data.synth.acquire import season_factor
from rszoo.data.synth.clouds import apply_clouds
from rszoo.data.synth.graph import Region, Scene, SceneObject
from rszoo.data.synth.raster import MATERIAL_ORDER, Pen, layout_raster, pil_points, point, slot_of
from rszoo.data.synth.shapes import STYLES, Style
from rszoo.data.synth.sites import apron_stands, stall_lines
from rszoo.data.synth.sun import shadow_offset, shadow_offsets
from rszoo.data.synth.texture import NOISE_OFFSET, is_identity, noise_crop, texture_crop_core, tint_lut

__all__ = ["CHUNK", "iter_chunks", "render", "render_window", "shadow_polygons"]

CHUNK = 512
_VEGETATION = frozenset({"forest", "grassland", "cropland", "airport", "residential"})
_SHADOW_STRENGTH = 150  # alpha of the shadow layer (0..255)
_DEFAULT_SUN = (315.0, 50.0)  # lighting used for roof shading when a scene has no acquisition


@cache
def _equal_lut(value: int) -> list[int]:
    return [255 if v == value else 0 for v in range(256)]


@cache
def _furrow_lut() -> list[int]:
    return [int(v * 0.72) for v in range(256)] * 3


@cache
def _shadow_lut() -> list[int]:
    # shadows are lit by blue skylight only: darker, bluish
    factors = (0.42, 0.46, 0.56)
    return [int(v * f) for f in factors for v in range(256)]


@cache
def _shaded_lut() -> list[int]:
    """Each channel value under a shadow: the shadow colour (:func:`_shadow_lut`) blended in at _SHADOW_STRENGTH.

    Taken from Pillow's own blend (a paste through a constant mask), so one lookup gives exactly what a paste
    through the shadow mask would.
    """
    ramp = Image.frombytes("RGB", (256, 1), bytes(v for v in range(256) for _ in range(3)))
    shaded = ramp.copy()
    shaded.paste(point(ramp, _shadow_lut()), (0, 0), Image.new("L", ramp.size, _SHADOW_STRENGTH))
    return [value for band in shaded.split() for value in band.getdata()]


def _clamp(rgb: Sequence[float]) -> tuple[int, int, int]:
    return (min(255, max(0, int(rgb[0]))), min(255, max(0, int(rgb[1]))), min(255, max(0, int(rgb[2]))))


def _scaled(rgb: Sequence[int], f: float) -> tuple[int, int, int]:
    return _clamp((rgb[0] * f, rgb[1] * f, rgb[2] * f))


def _world_px(scene: Scene) -> tuple[int, int]:
    """World pixel coordinates of the scene's top-left pixel (texture banks are anchored to the world)."""
    return round(scene.origin[0] / scene.gsd), round(scene.origin[1] / scene.gsd)


def _sun(scene: Scene) -> tuple[float, float]:
    if scene.acquisition is None:
        return _DEFAULT_SUN
    return scene.acquisition.sun_azimuth, scene.acquisition.sun_elevation


def shadow_polygons(obj: SceneObject, scene: Scene) -> list[list[tuple[float, float]]]:
    """The ground shadow of ``obj`` in scene pixels as polygons whose union is the shadow (empty if none).

    Solid objects sweep their outline along the shadow vector: the outline, its shifted copy and the band joining
    their two extreme points across the sweep (exact for convex outlines). Thin objects (aircraft, bridges) cast
    only the shifted copy. No acquisition or a flat object means no shadow.
    """
    acq = scene.acquisition
    if acq is None:
        return []
    sweep = _shadow_sweep(obj, shadow_offsets(acq.sun_azimuth, acq.sun_elevation, scene.gsd))
    if sweep is None:
        return []
    shifted, band_ends = sweep
    if band_ends is None:
        return [shifted]
    a, b = obj.shape[band_ends[0]], obj.shape[band_ends[1]]
    band = [(a[0], a[1]), (b[0], b[1]), shifted[band_ends[1]], shifted[band_ends[0]]]
    return [[(x, y) for x, y in obj.shape], band, shifted]


def _shadow_sweep(
    obj: SceneObject, offset: Callable[[float], tuple[float, float]]
) -> tuple[list[tuple[float, float]], tuple[int, int] | None] | None:
    """The outline shifted by the shadow vector and the indices of the two outline vertices the band joins (None
    for thin objects), or None without a shadow; ``offset`` maps a height to the shadow vector
    (:func:`.sun.shadow_offsets`). Used by :func:`shadow_polygons`; the renderer does the same arithmetic vectorised."""
    if obj.height_m <= 0:
        return None
    dx, dy = offset(obj.height_m)
    if dx * dx + dy * dy < 0.25:
        return None
    shifted = [(x + dx, y + dy) for x, y in obj.shape]
    if _style(obj).thin:
        return shifted, None
    nx, ny = -dy, dx
    proj = [x * nx + y * ny for x, y in obj.shape]
    return shifted, (proj.index(min(proj)), proj.index(max(proj)))


def _shadow_reach(scene: Scene) -> float:
    """Longest shadow in pixels (objects this far outside a chunk may still darken it)."""
    acq = scene.acquisition
    if acq is None or not scene.objects:
        return 0.0
    tallest = max(o.height_m for o in scene.objects)
    dx, dy = shadow_offset(tallest, acq.sun_azimuth, acq.sun_elevation, scene.gsd)
    return math.hypot(dx, dy)


class _ObjectIndex:
    """Objects bucketed by chunk (with their shadow reach), so each chunk draws only what can touch it."""

    def __init__(self, scene: Scene) -> None:
        reach = _shadow_reach(scene) + 2.0
        self.buckets: dict[tuple[int, int], list[SceneObject]] = {}
        ordered = sorted(scene.objects, key=lambda o: (_layer(o.category), o.id))
        if scene.width <= CHUNK and scene.height <= CHUNK:
            # one chunk (most scenes): its bucket only, with the general case's test for chunk (0, 0)
            self.buckets[0, 0] = [
                o
                for o in ordered
                if o.hbox[0] - reach < CHUNK
                and o.hbox[2] + reach >= 0
                and o.hbox[1] - reach < CHUNK
                and o.hbox[3] + reach >= 0
            ]
            return
        for obj in ordered:
            x1, y1, x2, y2 = obj.hbox
            for cy in range(max(0, int((y1 - reach) // CHUNK)), int((y2 + reach) // CHUNK) + 1):
                for cx in range(max(0, int((x1 - reach) // CHUNK)), int((x2 + reach) // CHUNK) + 1):
                    self.buckets.setdefault((cx, cy), []).append(obj)

    def get(self, cx: int, cy: int) -> list[SceneObject]:
        return self.buckets.get((cx, cy), [])


@cache
def _layer(category: str) -> int:
    from rszoo.data.synth.categories import CATEGORY_SPECS

    return CATEGORY_SPECS[category].layer


def _paste_textures(
    raster: Image.Image, slots: dict[int, list[int]], wx: int, wy: int, season: tuple
) -> Image.Image:
    """The window's ground: each material slot's texture pasted through its mask (within the slot's box).

    The slot with the largest box is the base image, its texture unmasked over the whole window: every pixel it owns
    is covered, and every other pixel is overwritten by its own slot afterwards.
    """
    w, h = raster.size
    if not slots:
        return Image.new("RGB", (w, h))
    order = sorted(slots, key=lambda s: (-(slots[s][2] - slots[s][0]) * (slots[s][3] - slots[s][1]), s))
    # straight on Pillow's core images: the Image wrappers' per-call checks cost more than these small crops
    labels, out = raster.im, None
    for slot in order:
        material, variant = MATERIAL_ORDER[slot // 3], slot % 3
        tint_season = season if material in _VEGETATION else (1.0, 1.0, 1.0)
        lut = (
            None if is_identity(material, variant, tint_season) else tint_lut(material, variant, tint_season)
        )
        if out is None:
            out = texture_crop_core(material, wx, wy, w, h)
            if lut is not None:
                out = out.point(lut, None)
            continue
        x1, y1, x2, y2 = slots[slot]
        if x2 <= x1 or y2 <= y1:
            continue
        # a mode "1" mask makes paste copy pixels instead of blending them (same result for a 0/255 mask)
        mask = labels.crop((x1, y1, x2, y2)).point(_equal_lut(slot), "1")
        box = mask.getbbox(True)
        if box is None:
            continue
        bx, by, bw, bh = x1 + box[0], y1 + box[1], box[2] - box[0], box[3] - box[1]
        tex = texture_crop_core(material, wx + bx, wy + by, bw, bh)
        if lut is not None:
            tex = tex.point(lut, None)
        out.paste(tex, (bx, by, bx + bw, by + bh), mask.crop(box))
    return Image.Image()._new(out)


def _furrows(img: Image.Image, regions: Sequence[Region], gsd: float, x0: int, y0: int) -> None:
    """Darker parallel lines in cropland regions (ploughing/sowing rows), spaced ~3 m, world-aligned per scene."""
    w, h = img.size
    spacing = max(2.0, 3.0 / gsd)
    floor = math.floor
    for region in regions:
        if region.kind != "cropland":
            continue
        xs = [p[0] for p in region.polygon]
        ys = [p[1] for p in region.polygon]
        bx0, by0 = max(int(min(xs)) - x0, 0), max(int(min(ys)) - y0, 0)
        bx1, by1 = min(int(max(xs)) + 1 - x0, w), min(int(max(ys)) + 1 - y0, h)
        if bx1 <= bx0 or by1 <= by0:
            continue
        # on Pillow's core images (a region draws dozens of lines; the wrappers' per-call work would dominate)
        size = (bx1 - bx0, by1 - by0)
        ox, oy = x0 + bx0, y0 + by0  # the box's origin in scene pixels
        mask = Image.core.fill("L", size, 0)
        Pen(mask).polygon(pil_points(region.polygon, ox, oy), 255)
        lines = Image.core.fill("L", size, 0)
        pen = Pen(lines)
        draw_lines, ink = pen.core.draw_lines, pen.ink(70 if region.variant == 2 else 45)
        a = math.radians(region.angle)
        nx, ny = -math.sin(a), math.cos(a)  # normal of the furrow direction
        corners = [(ox, oy), (x0 + bx1, oy), (ox, y0 + by1), (x0 + bx1, y0 + by1)]
        d = [cx * nx + cy * ny for cx, cy in corners]
        ux, uy = math.cos(a), math.sin(a)
        span = abs(bx1 - bx0) + abs(by1 - by0)
        for k in range(math.floor(min(d) / spacing), math.ceil(max(d) / spacing) + 1):
            px, py = nx * k * spacing, ny * k * spacing
            # pil_points of the segment, inlined
            line = [
                floor(px - ux * span - 0.0) - ox,
                floor(py - uy * span) - oy,
                floor(px + ux * span) - ox,
                floor(py + uy * span) - oy,
            ]
            draw_lines(line, ink, 1)
        alpha = lines.chop_multiply(mask)
        box = (bx0, by0, bx1, by1)
        img.im.paste(img.im.crop(box).point(_furrow_lut(), None), box, alpha)


def _markings(draw: Pen, scene: Scene, raster: Image.Image, x0: int, y0: int) -> None:
    """Parking stall lines, apron stand lines and dashed road centre lines.

    Lot and apron lines are painted only where both ends and the middle lie on their own surface in the layout
    raster (a river or a road crossing a lot hides its lines).
    """
    gsd = scene.gsd
    w, h = raster.width, raster.height
    labels = raster.load()  # pixel access: indexing without copying the raster out

    def on(value: int, *pts: tuple[float, float]) -> bool:
        for x, y in pts:
            xi, yi = math.floor(x) - x0, math.floor(y) - y0
            if not (0 <= xi < w and 0 <= yi < h) or labels[xi, yi] != value:
                return False
        return True

    for region in scene.regions:
        if region.frame is None:
            continue
        if region.kind == "parking":
            slot = slot_of("parking")
            for x1, y1, x2, y2 in stall_lines(region.frame, region.angle, gsd):
                if on(slot, (x1, y1), (x2, y2), ((x1 + x2) / 2, (y1 + y2) / 2)):
                    draw.line(pil_points([[x1, y1], [x2, y2]], x0, y0), (214, 214, 206), 1)
        elif region.kind == "apron":
            slot = slot_of("apron")
            width = max(1, round(0.4 / gsd))
            a = math.radians(region.angle)
            for stand in apron_stands(region.frame, region.angle, gsd):
                h_ = math.radians(stand.heading)
                reach = 45.0 / gsd
                end = (stand.x + reach * math.cos(h_), stand.y + reach * math.sin(h_))
                if on(slot, (stand.x, stand.y), end):
                    draw.line(pil_points([[stand.x, stand.y], list(end)], x0, y0), (214, 178, 52), width)
            cx, cy, hu, hv = region.frame
            taxi = hv - 10.0 / gsd
            p1 = (cx - hu * math.cos(a) + taxi * math.sin(a), cy - hu * math.sin(a) - taxi * math.cos(a))
            p2 = (cx + hu * math.cos(a) + taxi * math.sin(a), cy + hu * math.sin(a) - taxi * math.cos(a))
            draw.line(pil_points([p1, p2], x0, y0), (214, 178, 52), width)
    for road in scene.roads:
        if road.kind != "major-road":
            continue
        width = max(1, round(0.2 / gsd))
        pts = np.asarray(road.points, dtype=np.float64)
        # a dash over the first 40% of every world-aligned 10 m segment: continuous across tiles
        # rows (x1, y1, x2, y2); np.concatenate is much cheaper than np.stack for these small arrays
        ends = np.concatenate([pts[:-1], pts[:-1] + 0.4 * (pts[1:] - pts[:-1])], axis=1)
        flat = (np.floor(ends).astype(np.int64) - np.array([x0, y0, x0, y0])).tolist()
        for dash in flat:
            draw.line(dash, (226, 226, 218), width)


def _draw_shadows(img: Image.Image, scene: Scene, objects: Sequence[SceneObject], x0: int, y0: int) -> None:
    acq = scene.acquisition
    if acq is None:
        return
    offset = shadow_offsets(acq.sun_azimuth, acq.sun_elevation, scene.gsd)
    # the casters and their shadow vectors, as in _shadow_sweep
    casters, vectors = [], []
    for obj in objects:
        if obj.height_m > 0:
            dx, dy = offset(obj.height_m)
            if dx * dx + dy * dy >= 0.25:
                casters.append(obj)
                vectors.append((dx, dy))
    if not casters:
        return
    # _shadow_sweep's arithmetic for all casters in one vectorised pass (same float operations, element by element):
    # outline and shifted vertices snapped like pil_points (floor in scene pixels, then the window offset), and the
    # projections on the sweep's normal that pick the band's two ends
    counts = [len(obj.shape) for obj in casters]
    pts = np.array([p for obj in casters for p in obj.shape], dtype=np.float64)
    d = np.repeat(np.array(vectors, dtype=np.float64), counts, axis=0)
    window = np.array([x0, y0], dtype=np.int64)
    moved_all = (np.floor(pts + d).astype(np.int64) - window).ravel().tolist()
    outline_all = (np.floor(pts).astype(np.int64) - window).ravel().tolist()
    proj_all = (pts[:, 0] * -d[:, 1] + pts[:, 1] * d[:, 0]).tolist()
    w, h = img.size
    # which pixels are in shadow; a mode "1" mask makes paste copy pixels instead of blending them
    mask = Image.core.fill("1", (w, h), 0)
    pen = Pen(mask)
    draw_polygon, ink = pen.core.draw_polygon, pen.ink(1)
    boxes = []
    start = 0
    for obj, n in zip(casters, counts):
        end = start + n
        moved = moved_all[2 * start : 2 * end]
        vertices = moved
        if not _style(obj).thin:
            # the polygons of shadow_polygons: outline, band across the sweep, shifted outline
            outline = outline_all[2 * start : 2 * end]
            proj = proj_all[start:end]
            ia, ib = 2 * proj.index(min(proj)), 2 * proj.index(max(proj))
            draw_polygon(outline, ink, 1)
            band = [*outline[ia : ia + 2], *outline[ib : ib + 2], *moved[ib : ib + 2], *moved[ia : ia + 2]]
            draw_polygon(band, ink, 1)
            vertices = moved + outline
        draw_polygon(moved, ink, 1)
        start = end
        # the vertices' box with a pixel to spare holds every pixel the fills set
        xs, ys = vertices[0::2], vertices[1::2]
        box = (max(0, min(xs) - 1), max(0, min(ys) - 1), min(w, max(xs) + 2), min(h, max(ys) + 2))
        if box[0] < box[2] and box[1] < box[3]:
            boxes.append(box)
    # darken box by box (disjoint boxes holding every shadow pixel give the same result as one pass over the
    # mask's bounding box, which would cover most of the image for scattered objects)
    core, lut = img.im, _shaded_lut()
    for box in _disjoint_cover(boxes):
        core.paste(core.crop(box).point(lut, None), box, mask.crop(box))


def _disjoint_cover(boxes: Sequence[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Pairwise disjoint boxes covering ``boxes`` (overlapping ones merged into their bounding box)."""
    out: list[tuple[int, int, int, int]] = []
    for x1, y1, x2, y2 in boxes:
        merged = True
        while merged:
            merged = False
            for k, (a1, b1, a2, b2) in enumerate(out):
                if a1 < x2 and x1 < a2 and b1 < y2 and y1 < b2:
                    x1, y1, x2, y2 = min(x1, a1), min(y1, b1), max(x2, a2), max(y2, b2)
                    del out[k]
                    merged = True
                    break
        out.append((x1, y1, x2, y2))
    return out


def _part_colour(rule: object, obj: SceneObject, lit_side: int) -> tuple[int, int, int]:
    rgb = obj.rgb
    if rule == "body":
        return tuple(rgb)  # type: ignore[return-value]
    if rule == "dark":
        return _scaled(rgb, 0.62)
    if rule == "light":
        return _clamp((rgb[0] * 1.12 + 12, rgb[1] * 1.12 + 12, rgb[2] * 1.12 + 12))
    if rule == "lit":
        return _scaled(rgb, 1.1 if lit_side < 0 else 0.8)
    if rule == "unlit":
        return _scaled(rgb, 1.1 if lit_side > 0 else 0.8)
    if rule == "surround":
        if obj.category == "tennis-court" and obj.colour == "blue":
            return (70, 124, 84)
        return _scaled(rgb, 0.82)
    return rule  # type: ignore[return-value]


@cache
def _unit_points(category: str, style: str) -> np.ndarray:
    return STYLES[category][style].unit_points()


def _style_name(obj: SceneObject) -> str:
    return obj.style or next(iter(STYLES[obj.category]))


def _style(obj: SceneObject) -> Style:
    return STYLES[obj.category][obj.style or next(iter(STYLES[obj.category]))]


def _draw_wake(wake: ImageDraw.ImageDraw, obj: SceneObject, x0: int, y0: int) -> None:
    """A pale V-shaped wake behind the stern of a ship under way (on the water, outside its box)."""
    a = math.radians(obj.angle)
    c, s = math.cos(a), math.sin(a)
    hl, length = obj.width / 2.0, obj.width
    sx, sy = obj.center[0] - c * hl, obj.center[1] - s * hl
    tail, spread = 1.1 * length, 0.28 * length
    tip1 = (sx - c * tail - s * spread, sy - s * tail + c * spread)
    tip2 = (sx - c * tail + s * spread, sy - s * tail - c * spread)
    wake.polygon(pil_points([(sx, sy), tip1, tip2], x0, y0), fill=(214, 226, 230, 38))


def _draw_objects(img: Image.Image, scene: Scene, objects: Sequence[SceneObject], x0: int, y0: int) -> None:
    if not objects:
        return
    sun_az = math.radians(_sun(scene)[0])
    to_sun = (math.sin(sun_az), -math.cos(sun_az))  # screen direction towards the sun
    wakes = [o for o in objects if o.category == "ship" and o.context == "underway"]
    if wakes:
        wake = ImageDraw.Draw(img, "RGBA")
        for obj in wakes:
            _draw_wake(wake, obj, x0, y0)
    pen = Pen(img)
    # transform every object's unit-frame vertices in one vectorised pass
    styles = [_style_name(o) for o in objects]
    units = [_unit_points(o.category, style) for o, style in zip(objects, styles)]
    counts = [len(u) for u in units]
    params = []
    headings = []
    for o in objects:
        a = math.radians(o.angle)
        c, s = math.cos(a), math.sin(a)
        headings.append((c, s))
        hl, hb = o.width / 2.0, o.height / 2.0
        params.append((hl * c, hl * s, -hb * s, hb * c, o.center[0] - x0, o.center[1] - y0))
    u = np.concatenate(units)
    rep = np.repeat(np.array(params, dtype=np.float64), counts, axis=0)
    xs = np.floor(u[:, 0] * rep[:, 0] + u[:, 1] * rep[:, 2] + rep[:, 4] + x0).astype(np.int64) - x0
    ys = np.floor(u[:, 0] * rep[:, 1] + u[:, 1] * rep[:, 3] + rep[:, 5] + y0).astype(np.int64) - y0
    interleaved = np.empty(2 * len(xs), dtype=np.int64)  # x, y, x, y ... (cheaper than np.stack)
    interleaved[0::2], interleaved[1::2] = xs, ys
    flat = interleaved.tolist()
    # Pen's C drawing calls bound once: objects draw ~50 small parts per scene, where call overhead dominates
    draw_polygon, draw_lines, ink_of = pen.core.draw_polygon, pen.core.draw_lines, pen.ink
    start = 0
    for obj, style, (c, s) in zip(objects, styles, headings):
        # which half of a gable roof (-v or +v side of the ridge) faces the sun
        lit_side = 1 if (-s * to_sun[0] + c * to_sun[1]) > 0 else -1
        inks = {}  # part ink by colour rule: objects repeat rules (windows, containers ...)
        for n, rule, is_line in _drawing_steps(obj.category, style):
            end = start + 2 * n
            ink = inks.get(rule)
            if ink is None:
                ink = inks[rule] = ink_of(_part_colour(rule, obj, lit_side))
            if is_line:
                draw_lines(flat[start:end], ink, 1)
            else:
                draw_polygon(flat[start:end], ink, 1)
            start = end


@cache
def _drawing_steps(category: str, style: str) -> tuple[tuple[int, object, bool], ...]:
    """``(vertex count, colour rule, is a line)`` of the outline, then of every part, in the order of
    :meth:`Style.unit_points`."""
    spec = STYLES[category][style]
    steps = [(len(spec.outline), spec.outline_colour, False)]
    steps += [(len(part.points), part.colour, part.kind == "line") for part in spec.parts]
    return tuple(steps)


@lru_cache(maxsize=64)
def _radiometry_lut(sun_elevation: float, off_nadir: float) -> list[int]:
    """Gain from the sun elevation and bluish haze from the off-nadir angle, as an RGB lookup table, minus
    NOISE_OFFSET: the sensor noise is stored offset by it, so adding the noise to this gives the final pixel."""
    gain = 0.82 + 0.22 * math.sin(math.radians(max(sun_elevation, 5.0)))
    haze = min(0.3, 0.03 + 0.006 * off_nadir)
    # (a new LUT for almost every scene: the ufuncs straight, without np.clip's wrapper)
    out = np.floor(_LEVELS * gain * (1 - haze) + _HAZE_RGB * haze + 0.5)
    out = np.minimum(np.maximum(out, NOISE_OFFSET), 255 - 2 * NOISE_OFFSET) - NOISE_OFFSET
    return out.astype(np.int64).ravel().tolist()


_HAZE_RGB = np.array([170.0, 180.0, 196.0])[:, None]
_LEVELS = np.arange(256, dtype=np.float64)[None, :]


def _render_chunk(
    scene: Scene,
    x0: int,
    y0: int,
    w: int,
    h: int,
    objects: Sequence[SceneObject],
    layout: tuple[Image.Image, dict[int, list[int]]] | None = None,
) -> np.ndarray:
    """One chunk; ``layout`` is its material raster and slot boxes when the caller has drawn them already."""
    wx, wy = _world_px(scene)
    wx, wy = wx + x0, wy + y0
    if layout is None:
        layout = layout_raster(
            scene.regions, scene.rivers, scene.roads, scene.gsd, x0, y0, w, h, semantic=False
        )
    raster, slots = layout
    img = _paste_textures(raster, slots, wx, wy, season_factor(scene.acquisition))
    _furrows(img, scene.regions, scene.gsd, x0, y0)
    _markings(Pen(img), scene, raster, x0, y0)
    _draw_shadows(img, scene, objects, x0, y0)
    _draw_objects(img, scene, objects, x0, y0)
    acq = scene.acquisition
    if acq is not None:
        img = point(img, _radiometry_lut(round(acq.sun_elevation, 1), round(acq.off_nadir, 1)))
    else:
        img = point(img, _radiometry_lut(60.0, 0.0))
    # the radiometry LUT (already minus NOISE_OFFSET) keeps values in [0, 231] and the offset noise is in [0, 16],
    # so uint8 arithmetic cannot wrap
    out = np.asarray(img) + noise_crop(wx, wy, w, h)
    if acq is not None and acq.cloud_cover > 0:
        out = apply_clouds(out, scene, x0, y0)
    return out


def _chunks(scene: Scene, x: int, y: int, w: int, h: int) -> Iterator[tuple[int, int, int, int, int, int]]:
    for cy in range(y // CHUNK, (y + h - 1) // CHUNK + 1):
        for cx in range(x // CHUNK, (x + w - 1) // CHUNK + 1):
            x0, y0 = cx * CHUNK, cy * CHUNK
            yield cx, cy, x0, y0, min(CHUNK, scene.width - x0), min(CHUNK, scene.height - y0)


def render_window(scene: Scene, x: int, y: int, w: int, h: int) -> np.ndarray:
    """Render only the window ``(x, y, w, h)`` (pixels) of a scene: ``H x W x 3`` uint8.

    Raises:
        ValueError: if the window is empty or leaves the image.
    """
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > scene.width or y + h > scene.height:
        raise ValueError(
            f"window (x={x}, y={y}, w={w}, h={h}) must be non-empty and inside the {scene.width}x{scene.height} image"
        )
    index = _ObjectIndex(scene)
    chunks = list(_chunks(scene, x, y, w, h))
    if len(chunks) == 1 and chunks[0][2:] == (x, y, w, h):
        # the window is one whole chunk: its tile is the answer
        cx, cy, x0, y0, cw, ch = chunks[0]
        return _render_chunk(scene, x0, y0, cw, ch, index.get(cx, cy))
    out = np.empty((h, w, 3), dtype=np.uint8)
    for cx, cy, x0, y0, cw, ch in chunks:
        tile = _render_chunk(scene, x0, y0, cw, ch, index.get(cx, cy))
        ax, ay = max(x, x0), max(y, y0)
        bx, by = min(x + w, x0 + cw), min(y + h, y0 + ch)
        out[ay - y : by - y, ax - x : bx - x] = tile[ay - y0 : by - y0, ax - x0 : bx - x0]
    return out


def render(scene: Scene) -> np.ndarray:
    """Render the whole scene: ``height x width x 3`` uint8 RGB."""
    return render_window(scene, 0, 0, scene.width, scene.height)


def render_with_layout(scene: Scene, layout: tuple[Image.Image, dict[int, list[int]]]) -> np.ndarray:
    """:func:`render` for a one-chunk scene whose material raster and slot boxes (``layout_raster(scene.regions,
    scene.rivers, scene.roads, scene.gsd, 0, 0, scene.width, scene.height, semantic=False)``) were drawn already
    (by :func:`~rszoo.data.synth.generate.synthesize`, which shares them with object placement).

    Raises:
        ValueError: if the scene is larger than one chunk or the raster does not have its size.
    """
    if scene.width > CHUNK or scene.height > CHUNK or layout[0].size != (scene.width, scene.height):
        raise ValueError(
            f"render_with_layout needs a scene of at most {CHUNK} px a side and its full-size raster; got a "
            f"{scene.width}x{scene.height} scene and a {layout[0].size[0]}x{layout[0].size[1]} raster"
        )
    return _render_chunk(scene, 0, 0, scene.width, scene.height, _ObjectIndex(scene).get(0, 0), layout)


def iter_chunks(scene: Scene) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(x, y, tile)`` chunk by chunk (row-major): stream a large scene to disk without holding it whole."""
    index = _ObjectIndex(scene)
    for cx, cy, x0, y0, cw, ch in _chunks(scene, 0, 0, scene.width, scene.height):
        yield x0, y0, _render_chunk(scene, x0, y0, cw, ch, index.get(cx, cy))
