"""RSGround-R1 configuration and presets (Huang, He, Wen, 2026; arXiv 2601.21634).

The network is Qwen2.5-VL (the paper fine-tunes Qwen2.5-VL-3B-Instruct); what makes it RSGround-R1 is the training:
position-aware CoT-SFT, then GRPO with a positional reward and spatial-consistency weighting.

Example:
    >>> from rszoo.models.rsground_r1.config import RSGroundR1Config
    >>> RSGroundR1Config.from_name("rsground_r1-3b").base_model
    'Qwen/Qwen2.5-VL-3B-Instruct'
"""

from __future__ import annotations

import dataclasses

from rszoo.config import ConfigError
from rszoo.data.answers import REC_PROMPT_TEMPLATE
from rszoo.models.vlm.config import VLMConfig

__all__ = ["RSGroundR1Config"]

_QWEN_PIXELS = {"min_pixels": 3136, "max_pixels": 12845056}  # Qwen2.5-VL preprocessor_config.json


@dataclasses.dataclass
class RSGroundR1Config(VLMConfig):
    """A Qwen2.5-VL grounding model with the RSGround-R1 prompt.

    Attributes:
        question_template: the user prompt; ``{Question}`` is replaced by the referring expression.
    """

    question_template: str = REC_PROMPT_TEMPLATE

    family = "rsground_r1"
    network = "rszoo.models.rsground_r1.model:RSGroundR1Model"
    card = {
        "paper": "RSGround-R1: position-aware CoT-SFT + spatially guided GRPO for remote sensing visual grounding",
        "paper_url": "https://arxiv.org/abs/2601.21634",
        "tasks": "visual grounding",
        "status": "implemented",
        "lightning_module": "RSGroundR1",
    }
    presets = {
        "rsground_r1-3b": {
            "backbone": "qwen2_5_vl-3b",
            "processor": "Qwen/Qwen2.5-VL-3B-Instruct",
            "base_model": "Qwen/Qwen2.5-VL-3B-Instruct",
            "generation": {"max_new_tokens": 256, "do_sample": False},
            **_QWEN_PIXELS,
        },
        "rsground_r1-7b": {
            "backbone": "qwen2_5_vl-7b",
            "processor": "Qwen/Qwen2.5-VL-7B-Instruct",
            "base_model": "Qwen/Qwen2.5-VL-7B-Instruct",
            "generation": {"max_new_tokens": 256, "do_sample": False},
            **_QWEN_PIXELS,
        },
        "rsground_r1-tiny": {
            "backbone": "qwen2_5_vl-tiny",
            "processor": "rszoo:qwen-tiny",
            "base_model": None,
            "generation": {
                "max_new_tokens": 320,
                "do_sample": False,
            },  # position-aware CoT answers run to ~280 tokens
            "min_pixels": 56 * 56,
            "max_pixels": 448 * 448,
        },
    }

    def validate(self) -> None:
        super().validate()
        if "{Question}" not in self.question_template:
            raise ConfigError("RSGroundR1Config.question_template must contain the placeholder {Question}")
        if self.model_family != "qwen2_5_vl":
            raise ConfigError(
                "RSGroundR1Config: the answer format uses Qwen2.5-VL absolute pixel boxes; "
                f"hf_config.model_type must be 'qwen2_5_vl', got {self.model_family!r}"
            )


RSGroundR1Config.register_presets()
