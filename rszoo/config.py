"""Model configuration dataclasses: one per model family, with named presets (litgpt style).

A config is plain data: JSON-serialisable, classes referred to by name, validated in ``__post_init__`` with errors that
name the field and say what was expected. Each family subclasses :class:`ModelConfig`, sets ``family``, ``network``
(``"module:Class"`` of its ``nn.Module``) and ``presets`` (preset name -> field values), and calls
:meth:`ModelConfig.register_presets` so every preset appears in :data:`rszoo.registry.MODELS`.

Example:
    >>> from rszoo.config import ModelConfig
    >>> cfg = ModelConfig.from_name("rsground_r1-tiny")
    >>> cfg.name, type(cfg).__name__
    ('rsground_r1-tiny', 'RSGroundR1Config')
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Self

from rszoo.registry import MODELS

__all__ = ["CONFIG_FILE", "ConfigError", "ModelConfig", "check_known_keys", "deep_merge"]

CONFIG_FILE = "rszoo.json"  # rszoo's own config inside a saved model folder (config.json stays transformers')


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type; the message names it."""


def check_known_keys(
    values: Iterable[str],
    allowed: Iterable[str],
    where: str,
    what: str = "key(s)",
    error: type[ValueError] = ConfigError,
) -> None:
    """Raise ``error`` naming ``where``, the unknown keys and the allowed ones (one message for every config).

    >>> check_known_keys({"lr": 1, "epochs": 2}, ["lr", "max_steps"], "recipe.yaml: optim", "option(s)")
    Traceback (most recent call last):
    ...
    rszoo.config.ConfigError: recipe.yaml: optim: unknown option(s) ['epochs']; allowed: ['lr', 'max_steps']
    """
    allowed = set(allowed)
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise error(f"{where}: unknown {what} {unknown}; allowed: {sorted(allowed)}")


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base`` (dicts merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


_FAMILIES: dict[str, type[ModelConfig]] = {}


@dataclasses.dataclass
class ModelConfig:
    """Base class of every model config. ``name`` is the preset (``<family>-<size>``) it came from."""

    name: str = ""

    family: ClassVar[str] = ""
    network: ClassVar[str] = ""  # "package.module:Class" of the nn.Module built from this config
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    card: ClassVar[
        dict[str, Any]
    ] = {}  # paper title/url, tasks, status: shown by `rszoo list` and model cards

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check invariants; subclasses extend it and raise :class:`ConfigError` naming the field."""
        if not isinstance(self.name, str):
            raise ConfigError(f"{type(self).__name__}.name must be a string, got {type(self.name).__name__}")

    # -- construction ---------------------------------------------------------------------------------------------
    @classmethod
    def _family_class(cls, name: str) -> type[ModelConfig]:
        """The config class registered for preset ``name`` (works from the base class)."""
        entry = MODELS.entry(name.split(".", 1)[0])
        config_cls = entry.obj
        if cls is not ModelConfig and not issubclass(config_cls, cls):
            raise ConfigError(f"preset {name!r} belongs to {config_cls.__name__}, not {cls.__name__}")
        return config_cls

    @classmethod
    def from_name(cls, name: str, **overrides: Any) -> Self:
        """Build the preset ``name`` with field ``overrides`` (dict fields are deep-merged)."""
        config_cls = cls._family_class(name)
        values = dict(config_cls.presets[name.split(".", 1)[0]])
        values["name"] = name
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(values.get(key), dict):
                values[key] = deep_merge(values[key], value)
            else:
                values[key] = value
        return config_cls.from_dict(values, source=f"preset {name!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> Self:
        """Build from a plain dict; unknown keys fail naming the key, the source and the allowed keys."""
        if not isinstance(data, dict):
            raise ConfigError(
                f"{source}: expected a mapping of {cls.__name__} fields, got {type(data).__name__}"
            )
        check_known_keys(data, (f.name for f in dataclasses.fields(cls)), source, f"{cls.__name__} key(s)")
        try:
            return cls(**copy.deepcopy(data))
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        except TypeError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> Self:
        """Build from a JSON or YAML file holding ``{"family": ..., "config": {...}}`` or just the fields."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        text = path.read_text(encoding="utf-8")
        try:
            if path.suffix in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except Exception as exc:
            raise ConfigError(f"{path}: cannot parse ({exc})") from None
        if isinstance(data, dict) and "config" in data and "family" in data:
            config_cls = cls.family_class(data["family"], source=str(path))
            if cls is not ModelConfig and not issubclass(config_cls, cls):
                raise ConfigError(
                    f"{path}: holds a {data['family']!r} config, not a {cls.family or cls.__name__} one"
                )
            return config_cls.from_dict(data["config"], source=str(path))
        if cls is ModelConfig:
            raise ConfigError(
                f"{path}: has no 'family' key, so the model family is unknown; use <Family>Config.from_file"
            )
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_checkpoint(cls, directory: str | Path) -> Self:
        """Read ``rszoo.json`` from a saved model folder."""
        directory = Path(directory)
        path = directory / CONFIG_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"{directory} has no {CONFIG_FILE}; it is not an rszoo model folder (a plain transformers folder "
                "loads with <Model>.from_pretrained instead)"
            )
        return cls.from_file(path)

    @classmethod
    def family_class(cls, family: str, source: str = "") -> type[ModelConfig]:
        """The config class registered for ``family``."""
        MODELS.list()  # import the modules that register families
        if family not in _FAMILIES:
            raise ConfigError(f"{source}: unknown model family {family!r}; known: {sorted(_FAMILIES)}")
        return _FAMILIES[family]

    # -- serialisation --------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Field values as JSON-serialisable data."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """The ``rszoo.json`` text: family, rszoo version and the fields."""
        from rszoo import __version__

        payload = {"family": self.family, "rszoo_version": __version__, "config": self.to_dict()}
        return json.dumps(payload, indent=2, sort_keys=False) + "\n"

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_json` atomically."""
        from rszoo.utils.io import atomic_write_text

        atomic_write_text(path, self.to_json())

    # -- registration ---------------------------------------------------------------------------------------------
    @classmethod
    def register_presets(cls) -> None:
        """Put every preset of this family into ``MODELS`` (metadata: family, size, paper, tasks, status)."""
        if not cls.family or not cls.network:
            raise TypeError(f"{cls.__name__} must set the class attributes 'family' and 'network'")
        _FAMILIES[cls.family] = cls
        for preset in cls.presets:
            size = preset.split("-", 1)[1] if "-" in preset else ""
            MODELS.register(
                preset, obj=cls, overwrite=True, family=cls.family, size=size, tiny=size == "tiny", **cls.card
            )

    @classmethod
    def register_pretrained(
        cls, name: str, repo_id: str, revision: str | None = None, description: str = ""
    ) -> None:
        """Name published weights ``<model>-<size>.<tag>`` (a Hub id, optionally pinned to a revision, or a folder).

        ``rszoo.load_model(name)`` then loads them and ``rszoo.list_models(pretrained=True)`` lists them.

        Example:
            >>> from rszoo.models.rsground_r1.config import RSGroundR1Config
            >>> RSGroundR1Config.register_pretrained("rsground_r1-3b.mine", "my-org/rsground-r1-3b", revision="v1")
            >>> "rsground_r1-3b.mine" in ModelConfig.pretrained_names()
            True
        """
        base, _, tag = name.partition(".")
        if not tag or base not in cls.presets:
            raise ConfigError(
                f"pretrained names are '<preset>.<tag>' with a {cls.family!r} preset ({sorted(cls.presets)}); got {name!r}"
            )
        MODELS.register(
            name,
            obj=cls,
            overwrite=True,
            family=cls.family,
            size=base.split("-", 1)[1],
            tiny=False,
            pretrained=True,
            repo_id=repo_id,
            revision=revision,
            description=description,
            **cls.card,
        )

    @staticmethod
    def pretrained_names() -> list[str]:
        """Every registered ``<model>-<size>.<tag>`` name."""
        return MODELS.list("*", pretrained=True)

    @classmethod
    def network_class(cls) -> type:
        """The ``nn.Module`` class this config builds (imported on demand)."""
        from rszoo.registry import resolve

        return resolve(cls.network)
