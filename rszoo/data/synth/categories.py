"""Object categories, colour names and land-cover kinds of the synthetic world (one job: the vocabulary).

Category names follow DOTA (hyphenated: ``small-vehicle``, ``storage-tank`` ...) plus ``building`` (as in iSAID /
xView). Physical sizes are in metres, so a scene's ground sample distance decides how many pixels an object covers.

Size classes are *relative to the category*: ``small``/``medium``/``large`` are the lower/middle/upper third of the
category's length range on a log scale, so "the large building" means large for a building.

Example:
    >>> CATEGORY_SPECS["plane"].label, CATEGORY_SPECS["plane"].plural
    ('plane', 'planes')
    >>> size_class("small-vehicle", 4.0), size_class("building", 60.0)
    ('small', 'large')
    >>> "storage-tank" in CATEGORIES and len(CATEGORIES) >= 8
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "CATEGORIES",
    "CATEGORY_SPECS",
    "COARSE_LANDCOVER",
    "COLOUR_RGB",
    "LANDCOVER_CLASSES",
    "LANDCOVER_KINDS",
    "SIZE_CLASSES",
    "CategorySpec",
    "category_rgb",
    "size_class",
]

SIZE_CLASSES = ("small", "medium", "large")

# Named colours and their canonical RGB; categories may override the RGB (a "red" roof is terracotta, a "red" tennis
# court is clay) while keeping the name, which is what captions and VQA answers use.
COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "white": (232, 232, 228),
    "black": (34, 35, 38),
    "gray": (128, 128, 126),
    "red": (176, 42, 36),
    "blue": (44, 74, 160),
    "green": (58, 118, 62),
    "yellow": (222, 188, 48),
    "orange": (214, 118, 44),
    "brown": (118, 82, 54),
}

_RGB_OVERRIDES: dict[tuple[str, str], tuple[int, int, int]] = {
    ("building", "red"): (168, 84, 62),
    ("building", "gray"): (138, 136, 132),
    ("building", "white"): (214, 212, 204),
    ("building", "blue"): (78, 104, 150),
    ("building", "brown"): (122, 96, 74),
    ("tennis-court", "green"): (72, 128, 86),
    ("tennis-court", "blue"): (52, 96, 158),
    ("tennis-court", "red"): (178, 96, 62),
    ("basketball-court", "orange"): (196, 112, 58),
    ("basketball-court", "blue"): (56, 92, 150),
    ("basketball-court", "green"): (70, 122, 84),
    ("basketball-court", "red"): (160, 64, 54),
    ("soccer-ball-field", "green"): (70, 134, 64),
    ("swimming-pool", "blue"): (64, 168, 206),
    ("bridge", "gray"): (168, 166, 160),
    ("storage-tank", "white"): (226, 226, 222),
    ("storage-tank", "gray"): (160, 160, 156),
}


@dataclass(frozen=True)
class CategorySpec:
    """Physical and visual description of one object category.

    Attributes:
        name: DOTA-style identifier (``small-vehicle``).
        label: words used in text (``small vehicle``).
        plural: plural form for captions (``small vehicles``).
        length_m: range of the object's length (along its heading) in metres.
        aspect: range of breadth / length.
        height_m: range of the physical height above ground in metres (casts shadows; 0 = flat).
        colours: allowed colour names with sampling weights.
        size_words: adjectives for the small / medium / large size classes in text.
        layer: drawing order (lower first): flat ground objects, then bridges, vehicles, buildings, aircraft.
    """

    name: str
    label: str
    plural: str
    length_m: tuple[float, float]
    aspect: tuple[float, float]
    height_m: tuple[float, float]
    colours: tuple[tuple[str, float], ...]
    size_words: tuple[str, str, str] = ("small", "medium-sized", "large")
    layer: int = 5


_SPECS = (
    CategorySpec(
        "building",
        "building",
        "buildings",
        (7.0, 80.0),
        (0.45, 1.0),
        (3.0, 18.0),
        (("gray", 0.32), ("red", 0.24), ("white", 0.2), ("brown", 0.14), ("blue", 0.1)),
        layer=6,
    ),
    CategorySpec(
        "small-vehicle",
        "small vehicle",
        "small vehicles",
        (3.8, 5.6),
        (0.36, 0.46),
        (1.4, 1.8),
        (
            ("white", 0.3),
            ("black", 0.2),
            ("gray", 0.24),
            ("red", 0.11),
            ("blue", 0.11),
            ("yellow", 0.02),
            ("green", 0.02),
        ),
        size_words=("short", "mid-length", "long"),
        layer=4,
    ),
    CategorySpec(
        "large-vehicle",
        "large vehicle",
        "large vehicles",
        (7.0, 18.0),
        (0.15, 0.3),
        (3.0, 4.0),
        (("white", 0.45), ("gray", 0.2), ("red", 0.1), ("blue", 0.12), ("yellow", 0.08), ("green", 0.05)),
        size_words=("short", "mid-length", "long"),
        layer=4,
    ),
    CategorySpec(
        "ship",
        "ship",
        "ships",
        (8.0, 110.0),
        (0.2, 0.3),
        (2.0, 14.0),
        (("white", 0.5), ("gray", 0.2), ("red", 0.1), ("blue", 0.1), ("black", 0.1)),
        layer=4,
    ),
    CategorySpec(
        "plane",
        "plane",
        "planes",
        (18.0, 72.0),
        (0.85, 1.1),
        (5.0, 16.0),
        (("white", 0.82), ("gray", 0.18)),
        layer=8,
    ),
    CategorySpec(
        "helicopter",
        "helicopter",
        "helicopters",
        (11.0, 20.0),
        (0.75, 0.9),
        (3.0, 4.5),
        (("white", 0.3), ("gray", 0.3), ("red", 0.2), ("black", 0.1), ("yellow", 0.1)),
        layer=8,
    ),
    CategorySpec(
        "storage-tank",
        "storage tank",
        "storage tanks",
        (8.0, 48.0),
        (1.0, 1.0),
        (6.0, 20.0),
        (("white", 0.72), ("gray", 0.28)),
        layer=7,
    ),
    CategorySpec(
        "tennis-court",
        "tennis court",
        "tennis courts",
        (32.0, 38.0),
        (0.48, 0.52),
        (0.0, 0.0),
        (("green", 0.4), ("blue", 0.35), ("red", 0.25)),
        layer=1,
    ),
    CategorySpec(
        "basketball-court",
        "basketball court",
        "basketball courts",
        (28.0, 34.0),
        (0.54, 0.6),
        (0.0, 0.0),
        (("orange", 0.3), ("blue", 0.3), ("green", 0.3), ("red", 0.1)),
        layer=1,
    ),
    CategorySpec(
        "soccer-ball-field",
        "soccer field",
        "soccer fields",
        (40.0, 105.0),
        (0.62, 0.68),
        (0.0, 0.0),
        (("green", 1.0),),
        layer=1,
    ),
    CategorySpec(
        "swimming-pool",
        "swimming pool",
        "swimming pools",
        (6.0, 50.0),
        (0.4, 0.6),
        (0.0, 0.0),
        (("blue", 1.0),),
        layer=1,
    ),
    CategorySpec(
        "bridge",
        "bridge",
        "bridges",
        (20.0, 140.0),
        (0.08, 0.6),
        (5.0, 10.0),
        (("gray", 1.0),),
        layer=2,
    ),
)

CATEGORY_SPECS: dict[str, CategorySpec] = {spec.name: spec for spec in _SPECS}
CATEGORIES: tuple[str, ...] = tuple(CATEGORY_SPECS)

# Land-cover kinds of regions (blocks and their sub-regions), in the order of their semantic class ids.
LANDCOVER_KINDS = (
    "forest",
    "grassland",
    "cropland",
    "bare-soil",
    "water",
    "residential",
    "industrial",
    "airport",
    "parking",
    "apron",
)
# Semantic classes of a land-cover map: region kinds plus the linear features drawn over them.
LANDCOVER_CLASSES = (*LANDCOVER_KINDS, "road")
# The four coarse classes used in captions and VQA ("vegetation, water, bare soil, urban fabric").
COARSE_LANDCOVER: dict[str, str] = {
    "forest": "vegetation",
    "grassland": "vegetation",
    "cropland": "vegetation",
    "bare-soil": "bare soil",
    "water": "water",
    "residential": "urban",
    "industrial": "urban",
    "airport": "urban",
    "parking": "urban",
    "apron": "urban",
    "road": "urban",
}


def category_rgb(category: str, colour: str) -> tuple[int, int, int]:
    """The RGB a category uses for a colour name (category-specific shade if defined)."""
    return _RGB_OVERRIDES.get((category, colour), COLOUR_RGB[colour])


def size_class(category: str, length_m: float) -> str:
    """``small``/``medium``/``large`` from where ``length_m`` falls in the category's range (log scale thirds)."""
    lo, log_range = _LOG_RANGE[category]
    if log_range is None:
        return "medium"
    t = math.log(max(length_m, lo) / lo) / log_range
    return SIZE_CLASSES[0] if t < 1 / 3 else SIZE_CLASSES[1] if t < 2 / 3 else SIZE_CLASSES[2]


# per category: the lower end of the length range and the log of its span (None: one size fits all)
_LOG_RANGE: dict[str, tuple[float, float | None]] = {
    name: (
        spec.length_m[0],
        math.log(spec.length_m[1] / spec.length_m[0]) if spec.length_m[1] > spec.length_m[0] else None,
    )
    for name, spec in CATEGORY_SPECS.items()
}
