"""The RSCoVLM network: a Qwen2.5-VL chat model with the paper's task interfaces.

* :meth:`RSCoVLMModel.detect` — auto-regressive oriented detection: the dense-detection prompt, the response parsed by
  :func:`rszoo.data.detection_format.parse_detection_response` (never raises; counts repairs and drops) and mapped back
  to original pixels;
* :meth:`RSCoVLMModel.answer` — classification / VQA / captioning: one question per image, greedy;
* :meth:`RSCoVLMModel.zoom_answer` — the Zoom-in Chain on an ultra-high-resolution image (see
  :mod:`rszoo.models.rscovlm.zoom`).

Example:
    >>> import numpy as np
    >>> from PIL import Image
    >>> import rszoo
    >>> model = rszoo.create_model("rscovlm-tiny")
    >>> image = Image.fromarray(np.zeros((224, 224, 3), dtype=np.uint8))
    >>> found = model.detect([image], max_new_tokens=8)[0]  # an untrained model: no valid lines, and no exception
    >>> isinstance(found.detections, list)
    True
"""

from __future__ import annotations

from typing import Any

from rszoo.data.resize import input_size_for
from rszoo.models.rscovlm.config import RSCoVLMConfig
from rszoo.models.vlm.model import VLMModel

__all__ = ["RSCoVLMModel"]


class RSCoVLMModel(VLMModel):
    """Qwen2.5-VL co-trained on RS tasks (see the module docstring)."""

    config_class = RSCoVLMConfig

    def detection_messages(
        self, image: Any, categories: list[str] | None = None, fmt: str | None = None
    ) -> list[dict]:
        """The dense-detection chat (system prompt + ``find the ...``) exactly as RSCoVLM evaluates."""
        from rszoo.data.detection_format import SYSTEM_PROMPTS, user_prompt

        fmt = fmt or self.config.detection_format
        categories = categories or self.config.detection_categories
        messages: list[dict[str, Any]] = []
        system = SYSTEM_PROMPTS[("quad", fmt)]
        if system is not None:
            messages.append({"role": "system", "content": system})
        text = user_prompt(categories, fmt=fmt, box="quad", for_eval=True)
        messages.append(
            {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": text}]}
        )
        return messages

    def input_size(self, original_size: tuple[int, int]) -> tuple[int, int]:
        """(W, H) of the model input for an original (W, H) image."""
        cfg = self.config
        return input_size_for(original_size, cfg.patch_factor, cfg.min_pixels, cfg.max_pixels)

    def detect(
        self,
        images: list[Any],
        categories: list[str] | None = None,
        fmt: str | None = None,
        **generate_kwargs: Any,
    ) -> list[Any]:
        """Detect objects in each PIL image; returns ``ParsedDetections`` (quads in original pixels, score 1.0)."""
        from rszoo.data.detection_format import parse_detection_response

        categories = categories or self.config.detection_categories
        conversations = [self.detection_messages(img, categories, fmt) for img in images]
        texts = self.chat(conversations, [[img] for img in images], **generate_kwargs)
        return [
            parse_detection_response(
                text,
                categories,
                fmt="auto",
                box="quad",
                original_size=img.size,
                input_size=self.input_size(img.size),
            )
            for img, text in zip(images, texts)
        ]

    def answer(self, images: list[Any], questions: list[str], **generate_kwargs: Any) -> list[str]:
        """Answer one question per image (classification, VQA, captioning prompts)."""
        conversations = [
            [{"role": "user", "content": [{"type": "image", "image": img}, {"type": "text", "text": q}]}]
            for img, q in zip(images, questions)
        ]
        return self.chat(conversations, [[img] for img in images], **generate_kwargs)

    def zoom_answer(self, image_path: str, question: str, **kwargs: Any) -> dict[str, Any]:
        """Answer about an ultra-high-resolution image with the Zoom-in Chain (two views, windowed reads)."""
        from rszoo.models.rscovlm.zoom import zoom_in_answer

        kwargs.setdefault("min_pixels", self.config.min_pixels)
        kwargs.setdefault("max_pixels", self.config.max_pixels)
        return zoom_in_answer(self, image_path, question, **kwargs)
