"""The RSGround-R1 network: Qwen2.5-VL with the grounding prompt, answer parser and box mapping.

Example:
    >>> import numpy as np
    >>> from PIL import Image
    >>> import rszoo
    >>> model = rszoo.create_model("rsground_r1-tiny")
    >>> image = Image.fromarray(np.zeros((256, 256, 3), dtype=np.uint8))
    >>> result = model.ground([image], ["the ship in the top right"])[0]
    >>> sorted(result)  # an untrained tiny model rarely produces a parseable box; the call never raises
    ['box', 'input_size', 'text']
"""

from __future__ import annotations

from typing import Any

from rszoo.data.resize import box_to_original, input_size_for
from rszoo.models.rsground_r1.config import RSGroundR1Config
from rszoo.models.vlm.model import VLMModel

__all__ = ["RSGroundR1Model"]


class RSGroundR1Model(VLMModel):
    """Qwen2.5-VL answering ``<think>...</think><answer>{"bbox_2d": [x1, y1, x2, y2]}</answer>``."""

    config_class = RSGroundR1Config

    def grounding_messages(self, expression: str, image: Any = None) -> list[dict[str, Any]]:
        """The chat for one referring expression (VLM-R1 layout: image first, then the templated question)."""
        text = self.config.question_template.format(Question=expression)
        return [
            {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": text}]}
        ]

    def ground(
        self, images: list[Any], expressions: list[str], **generate_kwargs: Any
    ) -> list[dict[str, Any]]:
        """Locate each expression in its image.

        Returns, per sample, ``{"text": completion, "box": [x1, y1, x2, y2] in original pixels or None,
        "input_size": (W, H) of the resized model input}``. Unparseable answers give ``box=None``.
        """
        from rszoo.data.answers import parse_box

        conversations = [self.grounding_messages(e, img) for img, e in zip(images, expressions)]
        texts = self.chat(conversations, [[img] for img in images], **generate_kwargs)
        results = []
        for image, text in zip(images, texts):
            size = image.size
            input_size = input_size_for(
                size, self.config.patch_factor, self.config.min_pixels, self.config.max_pixels
            )
            box = parse_box(text)
            results.append(
                {
                    "text": text,
                    "box": None if box is None else box_to_original(box, input_size, size),
                    "input_size": input_size,
                }
            )
        return results
