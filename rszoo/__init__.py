"""rszoo: a PyTorch Lightning model zoo for remote-sensing multimodal foundation models.

The public API is small and stable:

* :func:`list_models` — preset names (``<model>-<size>``), with fnmatch wildcards;
* :func:`create_model` — build a network (a plain ``nn.Module``) from a preset, with config overrides;
* :func:`load_model` — load any saved rszoo model folder or Hub id;
* the paper LightningModules :class:`RSGroundR1` and :class:`RSCoVLM` (more follow), each with ``from_pretrained``;
* :mod:`rszoo.registry` — ``MODELS``, ``BACKBONES``, ``TOKENIZERS``, ``REWARDS``, ``METRICS`` ... with ``.build`` and ``.list``.

``import rszoo`` is light: torch, transformers and Lightning are imported only when a model is built.

Example:
    >>> import rszoo
    >>> rszoo.list_models("rsground_r1-*")
    ['rsground_r1-3b', 'rsground_r1-7b', 'rsground_r1-tiny']
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["RSCoVLM", "RSGroundR1", "__version__", "create_model", "list_models", "load_model", "registry"]

if TYPE_CHECKING:  # pragma: no cover
    from rszoo.models.rscovlm.task import RSCoVLM
    from rszoo.models.rsground_r1.task import RSGroundR1

# Paper LightningModules, imported on first attribute access (they pull in Lightning).
_LAZY = {"RSGroundR1": "rszoo.models.rsground_r1.task", "RSCoVLM": "rszoo.models.rscovlm.task"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "registry":
        return importlib.import_module("rszoo.registry")
    raise AttributeError(f"module 'rszoo' has no attribute {name!r}")


def list_models(pattern: str = "*", **meta: Any) -> list[str]:
    """Preset names matching ``pattern`` (fnmatch), optionally filtered by metadata such as ``tiny=True``.

    Example:
        >>> list_models("rs*-tiny")
        ['rscovlm-tiny', 'rsground_r1-tiny']
    """
    from rszoo.registry import MODELS

    return MODELS.list(pattern, **meta)


def create_model(name: str, **overrides: Any) -> Any:
    """Build the network of preset ``name`` (random weights), with config field ``overrides``.

    Real presets are large: build them under ``torch.device("meta")`` to inspect shapes without memory.

    Example:
        >>> model = create_model("rsground_r1-tiny", max_pixels=224 * 224)
        >>> model.config.max_pixels
        50176
    """
    from rszoo.config import ModelConfig

    config = ModelConfig.from_name(name, **overrides)
    return config.network_class()(config)


def load_model(path_or_hub_id: str, *, revision: str | None = None, **kwargs: Any) -> Any:
    """Load a saved rszoo model folder, Hub id, or named variant (``<model>-<size>.<tag>``, see
    ``ModelConfig.register_pretrained``) whatever its family; ``kwargs`` go to ``from_pretrained``.

    Example:
        >>> import tempfile
        >>> folder = create_model("rsground_r1-tiny").save_pretrained(tempfile.mkdtemp() + "/m")
        >>> type(load_model(folder)).__name__
        'RSGroundR1Model'
    """
    from rszoo.config import ModelConfig
    from rszoo.models.base import resolve_pretrained
    from rszoo.registry import MODELS

    if "." in str(path_or_hub_id) and str(path_or_hub_id) in MODELS.list("*", pretrained=True):
        meta = MODELS.entry(str(path_or_hub_id)).meta  # a named variant: '<model>-<size>.<tag>'
        path_or_hub_id, revision = meta["repo_id"], revision or meta.get("revision")
    directory = resolve_pretrained(path_or_hub_id, revision)
    network_class = ModelConfig.from_checkpoint(directory).network_class()
    return network_class.from_pretrained(directory, **kwargs)
