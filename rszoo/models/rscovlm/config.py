"""RSCoVLM configuration and presets (Co-Training Vision Language Models for Remote Sensing Multi-task Learning).

One Qwen2.5-VL co-trained on scene classification, VQA, captioning, grounding, oriented detection and UHR reasoning
(Zoom-in Chain). The paper fine-tunes Qwen2.5-VL-7B-Instruct with images constrained to 224x224 .. 1008x1008 pixels
(an *area* budget: min_pixels 50,176, max_pixels 1,016,064 — see notes on the released code).

Example:
    >>> from rszoo.models.rscovlm.config import RSCoVLMConfig
    >>> cfg = RSCoVLMConfig.from_name("rscovlm-7b")
    >>> cfg.base_model, cfg.min_pixels, cfg.max_pixels
    ('Qwen/Qwen2.5-VL-7B-Instruct', 50176, 1016064)
"""

from __future__ import annotations

import dataclasses

from rszoo.config import ConfigError
from rszoo.data.detection_format import DOTA_V1_CATEGORIES
from rszoo.models.vlm.config import VLMConfig

__all__ = ["DOTA_V1_CATEGORIES", "RSCoVLMConfig"]


_PAPER_PIXELS = {"min_pixels": 224 * 224, "max_pixels": 1008 * 1008}


@dataclasses.dataclass
class RSCoVLMConfig(VLMConfig):
    """A Qwen2.5-VL multi-task RS model.

    Attributes:
        detection_categories: the category list of dense-detection prompts (DOTA v1.0 by default).
        detection_format: ``plain`` (``x1,y1,...,x4,y4 label`` lines; the released default) or ``json``.
    """

    detection_categories: list[str] = dataclasses.field(default_factory=lambda: list(DOTA_V1_CATEGORIES))
    detection_format: str = "plain"

    family = "rscovlm"
    network = "rszoo.models.rscovlm.model:RSCoVLMModel"
    card = {
        "paper": "RSCoVLM: Co-Training Vision Language Models for Remote Sensing Multi-task Learning",
        "paper_url": "https://github.com/VisionXLab/RSCoVLM",
        "tasks": "classification, VQA, captioning, grounding, oriented detection, UHR",
        "status": "implemented",
        "lightning_module": "RSCoVLM",
    }
    presets = {
        "rscovlm-7b": {
            "backbone": "qwen2_5_vl-7b",
            "processor": "Qwen/Qwen2.5-VL-7B-Instruct",
            "base_model": "Qwen/Qwen2.5-VL-7B-Instruct",
            "generation": {"max_new_tokens": 2048, "do_sample": False},
            **_PAPER_PIXELS,
        },
        "rscovlm-3b": {
            "backbone": "qwen2_5_vl-3b",
            "processor": "Qwen/Qwen2.5-VL-3B-Instruct",
            "base_model": "Qwen/Qwen2.5-VL-3B-Instruct",
            "generation": {"max_new_tokens": 2048, "do_sample": False},
            **_PAPER_PIXELS,
        },
        "rscovlm-tiny": {
            "backbone": "qwen2_5_vl-tiny",
            "processor": "rszoo:qwen-tiny",
            "base_model": None,
            "generation": {"max_new_tokens": 128, "do_sample": False},
            "min_pixels": 56 * 56,
            "max_pixels": 448 * 448,
        },
    }

    def validate(self) -> None:
        super().validate()
        if self.detection_format not in ("plain", "json"):
            raise ConfigError(
                f"RSCoVLMConfig.detection_format must be 'plain' or 'json', got {self.detection_format!r}"
            )
        if not self.detection_categories or not all(
            isinstance(c, str) and c for c in self.detection_categories
        ):
            raise ConfigError("RSCoVLMConfig.detection_categories must be a non-empty list of category names")
        if self.model_family != "qwen2_5_vl":
            raise ConfigError(
                "RSCoVLMConfig: boxes are Qwen2.5-VL absolute pixels of the resized input; "
                f"hf_config.model_type must be 'qwen2_5_vl', got {self.model_family!r}"
            )


RSCoVLMConfig.register_presets()
