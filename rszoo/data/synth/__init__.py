"""A deterministic synthetic remote-sensing world with full ground truth.

Scenes are tiles cut from procedurally generated worlds: a wavy street grid with major and minor roads, land-cover
blocks (residential, industrial, airport, cropland, forest ...), meandering rivers, and objects placed where they
belong (DOTA categories plus buildings). Each scene is a graph (:class:`Scene`) from which the image, masks, boxes,
captions, referring expressions, VQA pairs, spatial relations and change lists are all derived, so every label is
exact. Everything is a pure function of integer seeds: the same seed gives the same bytes.

Quick start:
    >>> from rszoo.data.synth import generate_scene, render, synthesize, captions, referring_expressions
    >>> scene = generate_scene(0, size=256)
    >>> image = render(scene)                      # 256 x 256 x 3 uint8
    >>> text = captions(scene)[0]
    >>> refs = referring_expressions(scene)         # each with a box and structured facts
    >>> scene, image = synthesize(0, size=256)      # both at once: the same graph and bytes, faster

Modules: :mod:`.graph` (dataclasses), :mod:`.world` (roads, rivers, blocks), :mod:`.placement` (objects),
:mod:`.render` (pictures), :mod:`.text` (captions, expressions, VQA), :mod:`.relations`, :mod:`.temporal`
(bi-temporal pairs), :mod:`.sun` and :mod:`.clouds` (acquisition effects), :mod:`.large` (big images, GeoTIFF),
:mod:`.writers` (data sets on disk). Importing this package does not import torch.
"""

from __future__ import annotations

from rszoo.data.synth.categories import (
    CATEGORIES,
    CATEGORY_SPECS,
    COLOUR_RGB,
    LANDCOVER_CLASSES,
    LANDCOVER_KINDS,
)
from rszoo.data.synth.clouds import cloud_alpha, cloud_mask
from rszoo.data.synth.generate import GENERATOR_VERSION, generate_scene, synthesize
from rszoo.data.synth.graph import Acquisition, Polyline, Region, Scene, SceneObject
from rszoo.data.synth.large import generate_large_scene, geo_reference, render_large, write_geotiff
from rszoo.data.synth.raster import landcover_map
from rszoo.data.synth.relations import RELATIONS, grid_cell, relation_holds, relations
from rszoo.data.synth.render import iter_chunks, render, render_window
from rszoo.data.synth.sun import shadow_offset, solar_position
from rszoo.data.synth.temporal import CHANGE_KINDS, Change, change_mask, generate_pair
from rszoo.data.synth.text import captions, referring_expressions, resolve, scene_text, vqa_pairs
from rszoo.data.synth.writers import TASKS, write_dataset, write_large, write_pairs

__all__ = [
    "CATEGORIES",
    "CATEGORY_SPECS",
    "CHANGE_KINDS",
    "COLOUR_RGB",
    "GENERATOR_VERSION",
    "LANDCOVER_CLASSES",
    "LANDCOVER_KINDS",
    "RELATIONS",
    "TASKS",
    "Acquisition",
    "Change",
    "Polyline",
    "Region",
    "Scene",
    "SceneObject",
    "captions",
    "change_mask",
    "cloud_alpha",
    "cloud_mask",
    "generate_large_scene",
    "generate_pair",
    "generate_scene",
    "geo_reference",
    "grid_cell",
    "iter_chunks",
    "landcover_map",
    "referring_expressions",
    "relation_holds",
    "relations",
    "render",
    "render_large",
    "render_window",
    "resolve",
    "scene_text",
    "shadow_offset",
    "solar_position",
    "synthesize",
    "vqa_pairs",
    "write_dataset",
    "write_geotiff",
    "write_large",
    "write_pairs",
]
