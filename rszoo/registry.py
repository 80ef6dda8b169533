"""One small registry mechanism for every pluggable part of rszoo.

A :class:`Registry` maps names to objects (classes, builder functions, presets). Modules register their parts with
``@REGISTRY.register("name")``; users look them up with ``get``, build them with ``build`` and list them with
``list("pattern*")`` (fnmatch wildcards). To keep ``import rszoo`` light, each registry knows which modules populate
it and imports them only on first use.

Example:
    >>> from rszoo import registry
    >>> "iou" in registry.REWARDS.list("*iou*")
    True
    >>> registry.REWARDS.get("iuo")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    rszoo.registry.UnknownNameError: unknown reward 'iuo'; closest: iou, giou, diou
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BACKBONES",
    "DATASETS",
    "METRICS",
    "MODELS",
    "REWARDS",
    "STRATEGIES",
    "TOKENIZERS",
    "Registry",
    "UnknownNameError",
]


class UnknownNameError(KeyError):
    """Raised when a name is not in a registry; the message lists the closest known names."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly instead.
        return str(self.args[0]) if self.args else ""


@dataclass
class Entry:
    """A registered object with free-form metadata (paper, tasks, status, ...)."""

    name: str
    obj: Any
    meta: dict[str, Any] = field(default_factory=dict)


class Registry:
    """A named mapping from strings to objects, filled lazily by the modules listed in ``modules``."""

    def __init__(self, kind: str, modules: Iterable[str] = ()) -> None:
        self.kind = kind
        self._modules = list(modules)
        self._entries: dict[str, Entry] = {}
        self._loaded = False

    # -- registration -------------------------------------------------------------------------------------------
    def register(self, name: str | None = None, *, obj: Any = None, overwrite: bool = False, **meta: Any):
        """Register ``obj`` under ``name``; without ``obj`` this returns a decorator.

        The decorated object's ``__name__`` is the default name. Registering a taken name raises unless
        ``overwrite=True`` (silent shadowing is how registries rot).
        """

        def add(target: Any) -> Any:
            key = name or getattr(target, "__name__", None)
            if not key:
                raise ValueError(f"{self.kind}: cannot infer a name for {target!r}; pass name=")
            if key in self._entries and not overwrite and self._entries[key].obj is not target:
                raise ValueError(f"{self.kind} {key!r} is already registered by {self._entries[key].obj!r}")
            self._entries[key] = Entry(key, target, dict(meta))
            return target

        return add(obj) if obj is not None else add

    def add_module(self, module: str) -> None:
        """Declare a module that registers into this registry (imported on first lookup)."""
        if module not in self._modules:
            self._modules.append(module)
            self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self._modules:
            importlib.import_module(module)

    # -- lookup -------------------------------------------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def entry(self, name: str) -> Entry:
        """Return the :class:`Entry` for ``name`` or raise :class:`UnknownNameError` with suggestions."""
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._entries), n=5, cutoff=0.4)
            hint = (
                f"closest: {', '.join(close)}"
                if close
                else f"known: {', '.join(sorted(self._entries)) or 'none'}"
            )
            raise UnknownNameError(f"unknown {self.kind} {name!r}; {hint}") from None

    def get(self, name: str) -> Any:
        """Return the object registered under ``name``."""
        return self.entry(name).obj

    def build(self, name: str, /, **kwargs: Any) -> Any:
        """Call the registered class or builder with ``kwargs``."""
        target = self.get(name)
        if not callable(target):
            raise TypeError(f"{self.kind} {name!r} is not buildable (it is {type(target).__name__})")
        return target(**kwargs)

    def list(self, pattern: str = "*", **meta_filters: Any) -> list[str]:
        """Sorted names matching the fnmatch ``pattern`` (and equal metadata values, if given)."""
        self._load()
        names = fnmatch.filter(self._entries, pattern)
        for key, value in meta_filters.items():
            names = [n for n in names if self._entries[n].meta.get(key) == value]
        return sorted(names)

    def items(self, pattern: str = "*") -> list[Entry]:
        """Entries whose names match ``pattern``, sorted by name."""
        return [self._entries[n] for n in self.list(pattern)]

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"


def _lazy_callable(path: str) -> Callable[..., Any]:
    """Resolve ``'package.module:attr'`` to the attribute (used for classes referred to by name in configs)."""
    module, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


resolve = _lazy_callable

# The named registries. Each lists the modules that fill it; they are imported on first lookup only.
MODELS = Registry(
    "model",
    modules=[
        "rszoo.models.rsground_r1.config",
        "rszoo.models.rscovlm.config",
    ],
)
BACKBONES = Registry("backbone", modules=["rszoo.backbones.qwen_vl"])
TOKENIZERS = Registry("tokenizer", modules=["rszoo.tokenizers.qwen_tiny"])
REWARDS = Registry("reward", modules=["rszoo.rewards.grounding"])
METRICS = Registry(
    "metric", modules=["rszoo.metrics.grounding", "rszoo.metrics.detection", "rszoo.metrics.vqa"]
)
DATASETS = Registry("dataset", modules=["rszoo.data.datasets"])
STRATEGIES = Registry("strategy", modules=["rszoo.training.strategies"])
