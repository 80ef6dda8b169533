"""Qwen2.5-VL and Qwen3-VL backbones through transformers' own classes, behind one uniform contract.

The contract every rszoo vision-language backbone follows (timm-style, so networks and training stages never reach into
a particular architecture):

* ``forward(input_ids, attention_mask, pixel_values, image_grid_thw, mm_token_type_ids, ...)`` -> transformers output
  with ``logits``; ``generate(...)`` as in transformers;
* ``build_processor()`` -> the matching processor (tokenizer + image processor + chat template);
* ``freeze_groups()`` -> the parts a recipe can freeze: ``vision_tower``, ``projector``, ``language_model``,
  ``embeddings``;
* ``fsdp_units()`` -> the block classes to shard and activation-checkpoint (vision blocks, decoder layers);
* ``hf_model`` -> the wrapped ``*ForConditionalGeneration`` (its state dict keys are transformers' keys, so rszoo
  checkpoints stay loadable by plain transformers).

Presets hold the published configurations (``Qwen/Qwen2.5-VL-3B-Instruct`` ...) and their published parameter counts;
tiny presets are the same architectures at toy sizes with the offline tiny tokenizer.

Example:
    >>> from rszoo.backbones.qwen_vl import backbone_preset
    >>> backbone_preset("qwen2_5_vl-3b")["hf_id"]
    'Qwen/Qwen2.5-VL-3B-Instruct'
"""

from __future__ import annotations

import copy
from typing import Any

import torch.nn as nn

from rszoo.registry import BACKBONES

__all__ = [
    "FAMILIES",
    "QwenVLBackbone",
    "backbone_preset",
    "build_processor",
    "hf_config_class",
    "hf_model_class",
]

FAMILIES = ("qwen2_5_vl", "qwen3_vl")

# Special-token ids of the shipped tiny tokenizer (rszoo/tokenizers/assets/qwen_tiny); a test keeps them in step.
_TINY_IDS = {
    "image_token_id": 908,
    "video_token_id": 909,
    "vision_start_token_id": 905,
    "vision_end_token_id": 906,
}
_TINY_TEXT_IDS = {"bos_token_id": 896, "eos_token_id": 898, "pad_token_id": 896}
_QWEN_IDS = {
    "image_token_id": 151655,
    "video_token_id": 151656,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
}
_QWEN_TEXT_IDS = {"bos_token_id": 151643, "eos_token_id": 151645}


def _qwen2_5_vl(
    text: dict[str, Any], vision: dict[str, Any], tie: bool, tiny: bool = False
) -> dict[str, Any]:
    ids, text_ids = (_TINY_IDS, _TINY_TEXT_IDS) if tiny else (_QWEN_IDS, _QWEN_TEXT_IDS)
    return {
        "model_type": "qwen2_5_vl",
        "tie_word_embeddings": tie,
        **ids,
        "text_config": {
            "hidden_act": "silu",
            "rms_norm_eps": 1e-6,
            "attention_dropout": 0.0,
            "use_sliding_window": False,
            "tie_word_embeddings": tie,
            **text_ids,
            **text,
        },
        "vision_config": {
            "hidden_act": "silu",
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "in_channels": 3,
            "window_size": 112,
            "tokens_per_second": 2,
            **vision,
        },
    }


def _qwen3_vl(text: dict[str, Any], vision: dict[str, Any], tie: bool, tiny: bool = False) -> dict[str, Any]:
    ids, text_ids = (_TINY_IDS, _TINY_TEXT_IDS) if tiny else (_QWEN_IDS, _QWEN_TEXT_IDS)
    return {
        "model_type": "qwen3_vl",
        "tie_word_embeddings": tie,
        **ids,
        "text_config": {
            "hidden_act": "silu",
            "rms_norm_eps": 1e-6,
            "attention_bias": False,
            "attention_dropout": 0.0,
            "tie_word_embeddings": tie,
            **text_ids,
            **text,
        },
        "vision_config": {
            "hidden_act": "gelu_pytorch_tanh",
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "in_channels": 3,
            **vision,
        },
    }


_MROPE_25 = {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [16, 24, 24]}
_MROPE_3 = {
    "rope_type": "default",
    "rope_theta": 5_000_000.0,
    "mrope_section": [24, 20, 20],
    "mrope_interleaved": True,
}

# Published configurations (config.json of each Hugging Face repo) and published parameter counts (the safetensors
# totals the Hub reports for each repo; tied embeddings count once). The meta-device test checks them exactly.
_PRESETS: dict[str, dict[str, Any]] = {
    "qwen2_5_vl-3b": {
        "family": "qwen2_5_vl",
        "hf_id": "Qwen/Qwen2.5-VL-3B-Instruct",
        "published_params": 3_754_622_976,
        "hf_config": _qwen2_5_vl(
            text={
                "vocab_size": 151936,
                "hidden_size": 2048,
                "intermediate_size": 11008,
                "num_hidden_layers": 36,
                "num_attention_heads": 16,
                "num_key_value_heads": 2,
                "max_position_embeddings": 128000,
                "max_window_layers": 70,
                "rope_parameters": _MROPE_25,
            },
            vision={
                "depth": 32,
                "hidden_size": 1280,
                "intermediate_size": 3420,
                "num_heads": 16,
                "out_hidden_size": 2048,
                "fullatt_block_indexes": [7, 15, 23, 31],
            },
            tie=True,
        ),
    },
    "qwen2_5_vl-7b": {
        "family": "qwen2_5_vl",
        "hf_id": "Qwen/Qwen2.5-VL-7B-Instruct",
        "published_params": 8_292_166_656,
        "hf_config": _qwen2_5_vl(
            text={
                "vocab_size": 152064,
                "hidden_size": 3584,
                "intermediate_size": 18944,
                "num_hidden_layers": 28,
                "num_attention_heads": 28,
                "num_key_value_heads": 4,
                "max_position_embeddings": 128000,
                "max_window_layers": 28,
                "rope_parameters": _MROPE_25,
            },
            vision={
                "depth": 32,
                "hidden_size": 1280,
                "intermediate_size": 3420,
                "num_heads": 16,
                "out_hidden_size": 3584,
                "fullatt_block_indexes": [7, 15, 23, 31],
            },
            tie=False,
        ),
    },
    "qwen2_5_vl-tiny": {
        "family": "qwen2_5_vl",
        "hf_id": None,
        "published_params": None,
        "hf_config": _qwen2_5_vl(
            text={
                "vocab_size": 1024,
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "max_position_embeddings": 4096,
                "max_window_layers": 2,
                "rope_parameters": {
                    "rope_type": "default",
                    "rope_theta": 1_000_000.0,
                    "mrope_section": [2, 3, 3],
                },
            },
            vision={
                "depth": 2,
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_heads": 2,
                "out_hidden_size": 64,
                "fullatt_block_indexes": [1],
            },
            tie=True,
            tiny=True,
        ),
    },
    "qwen3_vl-2b": {
        "family": "qwen3_vl",
        "hf_id": "Qwen/Qwen3-VL-2B-Instruct",
        "published_params": 2_127_532_032,
        "hf_config": _qwen3_vl(
            text={
                "vocab_size": 151936,
                "hidden_size": 2048,
                "intermediate_size": 6144,
                "num_hidden_layers": 28,
                "num_attention_heads": 16,
                "num_key_value_heads": 8,
                "head_dim": 128,
                "max_position_embeddings": 262144,
                "rope_parameters": _MROPE_3,
            },
            vision={
                "depth": 24,
                "hidden_size": 1024,
                "intermediate_size": 4096,
                "num_heads": 16,
                "out_hidden_size": 2048,
                "num_position_embeddings": 2304,
                "deepstack_visual_indexes": [5, 11, 17],
            },
            tie=True,
        ),
    },
    "qwen3_vl-4b": {
        "family": "qwen3_vl",
        "hf_id": "Qwen/Qwen3-VL-4B-Instruct",
        "published_params": 4_437_815_808,
        "hf_config": _qwen3_vl(
            text={
                "vocab_size": 151936,
                "hidden_size": 2560,
                "intermediate_size": 9728,
                "num_hidden_layers": 36,
                "num_attention_heads": 32,
                "num_key_value_heads": 8,
                "head_dim": 128,
                "max_position_embeddings": 262144,
                "rope_parameters": _MROPE_3,
            },
            vision={
                "depth": 24,
                "hidden_size": 1024,
                "intermediate_size": 4096,
                "num_heads": 16,
                "out_hidden_size": 2560,
                "num_position_embeddings": 2304,
                "deepstack_visual_indexes": [5, 11, 17],
            },
            tie=True,
        ),
    },
    "qwen3_vl-8b": {
        "family": "qwen3_vl",
        "hf_id": "Qwen/Qwen3-VL-8B-Instruct",
        "published_params": 8_767_123_696,
        "hf_config": _qwen3_vl(
            text={
                "vocab_size": 151936,
                "hidden_size": 4096,
                "intermediate_size": 12288,
                "num_hidden_layers": 36,
                "num_attention_heads": 32,
                "num_key_value_heads": 8,
                "head_dim": 128,
                "max_position_embeddings": 262144,
                "rope_parameters": _MROPE_3,
            },
            vision={
                "depth": 27,
                "hidden_size": 1152,
                "intermediate_size": 4304,
                "num_heads": 16,
                "out_hidden_size": 4096,
                "num_position_embeddings": 2304,
                "deepstack_visual_indexes": [8, 16, 24],
            },
            tie=False,
        ),
    },
    "qwen3_vl-tiny": {
        "family": "qwen3_vl",
        "hf_id": None,
        "published_params": None,
        "hf_config": _qwen3_vl(
            text={
                "vocab_size": 1024,
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "head_dim": 16,
                "max_position_embeddings": 4096,
                "rope_parameters": {
                    "rope_type": "default",
                    "rope_theta": 5_000_000.0,
                    "mrope_section": [2, 3, 3],
                    "mrope_interleaved": True,
                },
            },
            vision={
                "depth": 2,
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_heads": 2,
                "out_hidden_size": 64,
                "num_position_embeddings": 576,
                "deepstack_visual_indexes": [0],
            },
            tie=True,
            tiny=True,
        ),
    },
}


def backbone_preset(name: str) -> dict[str, Any]:
    """A deep copy of the preset ``name`` (keys: family, hf_id, published_params, hf_config)."""
    entry = BACKBONES.entry(name)
    if "preset" not in entry.meta:
        raise ValueError(
            f"backbone {name!r} is a family, not a sized preset; pick one of {BACKBONES.list(name + '-*')}"
        )
    return copy.deepcopy(entry.meta["preset"])


def hf_config_class(family: str) -> Any:
    """The transformers config class of a Qwen-VL family."""
    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig

        return Qwen2_5_VLConfig
    if family == "qwen3_vl":
        from transformers import Qwen3VLConfig

        return Qwen3VLConfig
    raise ValueError(f"unknown Qwen-VL family {family!r}; expected one of {FAMILIES}")


def hf_model_class(family: str) -> Any:
    """The transformers ``*ForConditionalGeneration`` class of a Qwen-VL family."""
    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLForConditionalGeneration

        return Qwen2_5_VLForConditionalGeneration
    if family == "qwen3_vl":
        from transformers import Qwen3VLForConditionalGeneration

        return Qwen3VLForConditionalGeneration
    raise ValueError(f"unknown Qwen-VL family {family!r}; expected one of {FAMILIES}")


def family_of(hf_config: dict[str, Any]) -> str:
    """The family of a transformers config dict (its ``model_type``), with a clear error for other architectures."""
    model_type = hf_config.get("model_type")
    if model_type not in FAMILIES:
        raise ValueError(
            f"config model_type {model_type!r} is not a supported Qwen-VL family; expected one of {FAMILIES}"
        )
    return model_type


def patch_factor(family: str) -> int:
    """Pixels per merged visual token side: 28 for Qwen2.5-VL, 32 for Qwen3-VL."""
    return {"qwen2_5_vl": 28, "qwen3_vl": 32}[family]


TINY_PROCESSOR = "rszoo:qwen-tiny"  # the offline tiny tokenizer + image processor


def build_processor(spec: str, family: str, min_pixels: int, max_pixels: int) -> Any:
    """The processor named by ``spec``: the offline tiny one (``"rszoo:qwen-tiny"``), a local folder or a Hub id.

    The pixel budget of the rszoo config always wins over the one saved with the processor, so dynamic resolution is
    set in one place.
    """
    if spec == TINY_PROCESSOR:
        from rszoo.tokenizers.qwen_tiny import build_processor as build_tiny

        return build_tiny(family, min_pixels=min_pixels, max_pixels=max_pixels)
    from transformers import AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(spec, trust_remote_code=False)
    except OSError as exc:
        raise OSError(
            f"could not load the processor {spec!r}: {exc}. Pass a local folder holding the processor files "
            "(tokenizer.json, preprocessor_config.json, chat_template), or a Hub id already in the local cache."
        ) from None
    processor.image_processor.size = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
    return processor


class QwenVLBackbone(nn.Module):
    """A Qwen2.5-VL / Qwen3-VL model from transformers behind rszoo's backbone contract.

    Args:
        hf_config: a transformers config dict (``model_type`` qwen2_5_vl or qwen3_vl), e.g. a preset's ``hf_config``.
        attn_implementation: ``"sdpa"`` (default) or ``"eager"``; ``"flash_attention_2"`` on GPU clusters.

    Example:
        >>> from rszoo.backbones.qwen_vl import QwenVLBackbone, backbone_preset
        >>> bb = QwenVLBackbone(backbone_preset("qwen2_5_vl-tiny")["hf_config"])
        >>> sorted(bb.freeze_groups())
        ['embeddings', 'language_model', 'projector', 'vision_tower']
    """

    def __init__(self, hf_config: dict[str, Any], attn_implementation: str = "sdpa") -> None:
        super().__init__()
        self.family = family_of(hf_config)
        kwargs = copy.deepcopy({k: v for k, v in hf_config.items() if k != "model_type"})
        config = hf_config_class(self.family)(**kwargs)
        config._attn_implementation = attn_implementation
        self.hf_model = hf_model_class(self.family)._from_config(config)

    @classmethod
    def wrap(cls, hf_model: nn.Module) -> QwenVLBackbone:
        """Wrap an existing transformers model (e.g. one loaded with ``from_pretrained``) without copying it."""
        self = cls.__new__(cls)
        nn.Module.__init__(self)
        self.family = family_of({"model_type": hf_model.config.model_type})
        self.hf_model = hf_model
        return self

    # -- the contract -----------------------------------------------------------------------------------------------
    def forward(self, **batch: Any) -> Any:
        """Run transformers' forward; pass ``mm_token_type_ids`` with images (Qwen2.5-VL silently uses 1-D positions
        without it, Qwen3-VL raises)."""
        return self.hf_model(**batch)

    def generate(self, **kwargs: Any) -> Any:
        """transformers' ``generate``; sampling settings passed here override the checkpoint's generation_config."""
        return self.hf_model.generate(**kwargs)

    @property
    def config(self) -> Any:
        return self.hf_model.config

    def freeze_groups(self) -> dict[str, list[nn.Module]]:
        """Modules of each freezable part. The vision tower excludes the merger, which is the ``projector``."""
        inner = self.hf_model.model
        visual, lm = inner.visual, inner.language_model
        projector_names = ("merger", "deepstack_merger_list")  # Qwen3-VL's DeepStack mergers project too
        return {
            "vision_tower": [m for n, m in visual.named_children() if n not in projector_names],
            "projector": [m for n, m in visual.named_children() if n in projector_names],
            "language_model": [m for n, m in lm.named_children() if n != "embed_tokens"],
            "embeddings": [lm.embed_tokens, self.hf_model.lm_head],
        }

    def fsdp_units(self) -> set[type[nn.Module]]:
        """Block classes to shard and activation-checkpoint: the vision blocks and the decoder layers."""
        inner = self.hf_model.model
        return {type(inner.visual.blocks[0]), type(inner.language_model.layers[0])}

    def rope_positions(self, inputs: dict[str, Any]) -> tuple[Any, Any]:
        """3-D (temporal, height, width) rope positions of a prompt and the text offset after it.

        Returns ``(position_ids (3, B, L), delta (B, 1))``: a token appended at sequence index ``i >= L`` has position
        ``i + delta`` on all three axes. Passing positions explicitly keeps prefix-cached decoding independent of the
        model's internal ``rope_deltas`` state.
        """
        import torch

        if inputs.get("image_grid_thw") is None or inputs.get("mm_token_type_ids") is None:
            ids = inputs["input_ids"]
            positions = (
                torch.arange(ids.shape[1], device=ids.device).view(1, 1, -1).expand(3, ids.shape[0], -1)
            )
            return positions, torch.zeros(ids.shape[0], 1, dtype=torch.long, device=ids.device)
        return self.hf_model.model.get_rope_index(
            inputs["input_ids"],
            mm_token_type_ids=inputs["mm_token_type_ids"],
            image_grid_thw=inputs["image_grid_thw"],
            attention_mask=inputs.get("attention_mask"),
        )


for _name, _preset in _PRESETS.items():
    BACKBONES.register(
        _name,
        obj=QwenVLBackbone,
        preset=_preset,
        family=_preset["family"],
        size=_name.split("-", 1)[1],
        hf_id=_preset["hf_id"],
    )
