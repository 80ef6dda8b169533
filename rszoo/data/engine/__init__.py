"""rszoo's data curation engine: declare subsets in a YAML data recipe, process them offline into unified records,
serve them online as chat SFT samples with weighted mixing, prompt randomisation and dynamic resolution.

Paper-agnostic; RSCoVLM (paper Sec. III-B/C) is its first user. Modules, one job each:

* :mod:`~rszoo.data.engine.recipe` -- the data-recipe YAML schema, validation, static ``name%P`` / ``name*K`` lists;
* :mod:`~rszoo.data.engine.sources` -- loaders of public formats (DOTA, COCO, refGeo, LRS-VQA, RSVQA, VRSBench,
  LLaVA conversations, rszoo JSONL, the synthetic world) into plain record dataclasses;
* :mod:`~rszoo.data.engine.offline` -- task-tag replacement, text cleaning, box unification, degenerate quads, image
  sizes, the unified-record cache;
* :mod:`~rszoo.data.engine.online` -- record -> messages row: templates, synonyms, plain/JSON outputs, random resize
  with boxes rescaled in sync, Zoom-in Chain, dense detection;
* :mod:`~rszoo.data.engine.mixture` -- :class:`MixtureDataset`, :class:`WeightedMixtureSampler` (resumable,
  sharded, length-aware batching) and the entry points :func:`build_mixture` / :func:`mixture_sampler_factory`.

Importing this package is light: the names below load their module on first use (``mixture`` imports torch).

Example:
    >>> import rszoo.data.engine as engine
    >>> sorted(engine.FORMATS)[:3]
    ['coco', 'dota', 'grounding_jsonl']
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "FORMATS",
    "DataRecipe",
    "DataRecipeError",
    "MixtureDataset",
    "MixtureKey",
    "OfflineOptions",
    "OnlineOptions",
    "WeightedMixtureSampler",
    "build_mixture",
    "load_data_recipe",
    "mixture_sampler_factory",
    "process_recipe",
]

_WHERE = {
    "FORMATS": "sources",
    "DataRecipe": "recipe",
    "DataRecipeError": "recipe",
    "load_data_recipe": "recipe",
    "OfflineOptions": "offline",
    "process_recipe": "offline",
    "OnlineOptions": "online",
    "MixtureDataset": "mixture",
    "MixtureKey": "mixture",
    "WeightedMixtureSampler": "mixture",
    "build_mixture": "mixture",
    "mixture_sampler_factory": "mixture",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'rszoo.data.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(f"rszoo.data.engine.{_WHERE[name]}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
