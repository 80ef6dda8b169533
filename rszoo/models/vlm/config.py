"""Config of Qwen-VL based chat networks (the base of RSGround-R1 and RSCoVLM configs)."""

from __future__ import annotations

import dataclasses
from typing import Any

from rszoo.config import ConfigError, ModelConfig, deep_merge

__all__ = ["VLMConfig"]

_KNOWN_FAMILIES = ("qwen2_5_vl", "qwen3_vl")


@dataclasses.dataclass
class VLMConfig(ModelConfig):
    """A Qwen-VL network: transformers architecture config, processor, dynamic-resolution budget, generation defaults.

    Attributes:
        backbone: the backbone preset the architecture comes from (``qwen2_5_vl-3b`` ...); ``hf_config`` is resolved
            from it when empty, and ``backbone_overrides`` are deep-merged on top (e.g. tiny variants of real presets).
        hf_config: the full transformers config dict (``model_type`` qwen2_5_vl / qwen3_vl). Saved models store it, so a
            folder is self-describing even if presets change.
        processor: ``"rszoo:qwen-tiny"`` (the offline tiny processor), a local folder, or a Hub id.
        min_pixels / max_pixels: the smart_resize area budget (Qwen2.5-VL checkpoints ship 3136 / 12,845,056).
        base_model: the published weights this preset starts from (Hub id), for model cards and `init_from`.
        attn_implementation: ``sdpa`` (default), ``eager``, or ``flash_attention_2`` on GPUs.
        generation: default ``generate`` kwargs for prediction (greedy unless set).
    """

    backbone: str = "qwen2_5_vl-tiny"
    backbone_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    hf_config: dict[str, Any] = dataclasses.field(default_factory=dict)
    processor: str = "rszoo:qwen-tiny"
    min_pixels: int = 56 * 56
    max_pixels: int = 448 * 448
    base_model: str | None = None
    attn_implementation: str = "sdpa"
    generation: dict[str, Any] = dataclasses.field(
        default_factory=lambda: {"max_new_tokens": 128, "do_sample": False}
    )

    def __post_init__(self) -> None:
        if not self.hf_config:
            from rszoo.backbones.qwen_vl import backbone_preset

            try:
                preset = backbone_preset(self.backbone)
            except KeyError as exc:
                raise ConfigError(f"{type(self).__name__}.backbone: {exc}") from None
            self.hf_config = deep_merge(preset["hf_config"], self.backbone_overrides)
        elif self.backbone_overrides:
            self.hf_config = deep_merge(self.hf_config, self.backbone_overrides)
        self.backbone_overrides = {}  # applied: the resolved hf_config is the single source of truth from here on
        super().__post_init__()

    def validate(self) -> None:
        super().validate()
        name = type(self).__name__
        if self.hf_config.get("model_type") not in _KNOWN_FAMILIES:
            raise ConfigError(
                f"{name}.hf_config.model_type must be one of {_KNOWN_FAMILIES}, got {self.hf_config.get('model_type')!r}"
            )
        for key in ("text_config", "vision_config"):
            if not isinstance(self.hf_config.get(key), dict):
                raise ConfigError(f"{name}.hf_config.{key} must be a dict of transformers config values")
        if not (isinstance(self.min_pixels, int) and isinstance(self.max_pixels, int)):
            raise ConfigError(f"{name}.min_pixels/max_pixels must be integers (pixel areas)")
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ConfigError(
                f"{name}: need 0 < min_pixels <= max_pixels, got min_pixels={self.min_pixels}, max_pixels={self.max_pixels}"
            )
        if self.attn_implementation not in ("sdpa", "eager", "flash_attention_2", "flex_attention"):
            raise ConfigError(f"{name}.attn_implementation {self.attn_implementation!r} is not supported")
        if not isinstance(self.generation, dict):
            raise ConfigError(f"{name}.generation must be a dict of generate() keyword arguments")

    @property
    def model_family(self) -> str:
        """The Qwen-VL family (``qwen2_5_vl`` or ``qwen3_vl``)."""
        return self.hf_config["model_type"]

    @property
    def patch_factor(self) -> int:
        """Pixels per merged visual token side (28 or 32): the smart_resize factor."""
        return 28 if self.model_family == "qwen2_5_vl" else 32
