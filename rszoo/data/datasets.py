"""The data sets and generators of ``rszoo.registry.DATASETS``: synthetic-world writers and loaders of public formats.

Entries are thin functions that import their module when called, so listing the registry stays instant.

Example:
    >>> from rszoo.registry import DATASETS
    >>> DATASETS.list("synth*")
    ['synth', 'synth_large', 'synth_pairs']
"""

from __future__ import annotations

from typing import Any

from rszoo.registry import DATASETS


@DATASETS.register(
    "synth", kind="generator", description="synthetic scenes + captions, VQA, grounding, COCO/DOTA"
)
def synth(out_dir: str, **kwargs: Any) -> dict[str, Any]:
    from rszoo.data.synth import write_dataset

    return write_dataset(out_dir, **kwargs)


@DATASETS.register(
    "synth_pairs", kind="generator", description="synthetic bi-temporal pairs with change records"
)
def synth_pairs(out_dir: str, **kwargs: Any) -> dict[str, Any]:
    from rszoo.data.synth import write_pairs

    return write_pairs(out_dir, **kwargs)


@DATASETS.register("synth_large", kind="generator", description="synthetic large scenes (PNG / GeoTIFF)")
def synth_large(out_dir: str, **kwargs: Any) -> dict[str, Any]:
    from rszoo.data.synth import write_large

    return write_large(out_dir, **kwargs)


@DATASETS.register("messages_jsonl", kind="loader", description="OpenAI-messages chat JSONL (SFT)")
def messages_jsonl(path: str, **kwargs: Any) -> list[dict[str, Any]]:
    from rszoo.training.data import load_messages_jsonl

    return load_messages_jsonl(path, **kwargs)


@DATASETS.register("grounding_jsonl", kind="loader", description="rszoo grounding records JSONL")
def grounding_jsonl(path: str, **kwargs: Any) -> Any:
    from rszoo.data.grounding import load_grounding_jsonl

    return load_grounding_jsonl(path, **kwargs)


@DATASETS.register(
    "dior_rsvg", kind="loader", description="DIOR-RSVG (VOC XML + description, split index files)"
)
def dior_rsvg(root: str, split: str, **kwargs: Any) -> Any:
    from rszoo.data.grounding import load_dior_rsvg

    return load_dior_rsvg(root, split, **kwargs)


@DATASETS.register("vrsbench_vg", kind="loader", description="VRSBench visual grounding (0-100 scaled boxes)")
def vrsbench_vg(json_path: str, image_root: str, **kwargs: Any) -> Any:
    from rszoo.data.grounding import load_vrsbench_vg

    return load_vrsbench_vg(json_path, image_root, **kwargs)


@DATASETS.register(
    "rrsisd", kind="loader", description="RRSIS-D (RefCOCO-style refs as JSON + COCO instances)"
)
def rrsisd(root: str, split: str, **kwargs: Any) -> Any:
    from rszoo.data.grounding import load_rrsisd

    return load_rrsisd(root, split, **kwargs)


@DATASETS.register(
    "mixture", kind="loader", description="data-engine mixture from a data recipe YAML (RSCoVLM)"
)
def mixture(recipe_path: str, **kwargs: Any) -> Any:
    from rszoo.data.engine import build_mixture

    return build_mixture(recipe_path, **kwargs)
