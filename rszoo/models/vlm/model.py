"""A Qwen-VL chat network: backbone + processor + chat/generation helpers, saved in transformers' format.

RSGround-R1 and RSCoVLM are this network with paper-specific prompts and parsers on top. A saved folder is a valid
transformers checkpoint (``config.json``, ``model*.safetensors``, processor files) plus ``rszoo.json``, so
``AutoModelForImageTextToText.from_pretrained(folder)`` gives identical logits, and a plain transformers Qwen-VL folder
loads here as a starting point.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Self

import torch

from rszoo.backbones.qwen_vl import (
    QwenVLBackbone,
    build_processor,
    family_of,
    hf_config_class,
    hf_model_class,
)
from rszoo.models.base import CheckpointError, RSZooModel, check_keys
from rszoo.models.vlm.config import VLMConfig

__all__ = ["VLMModel", "assistant_token_mask", "load_message_images"]


def assistant_token_mask(
    input_ids: torch.Tensor, im_start_id: int, im_end_id: int, header_ids: list[int]
) -> torch.Tensor:
    """A bool mask of the assistant tokens to train on, for a (B, L) batch of Qwen-chat token ids.

    A span starts after ``<|im_start|>`` + ``header_ids`` (the tokens of ``"assistant\\n"``) and ends at the next
    ``<|im_end|>``, which is included: the model must learn to stop.
    """
    mask = torch.zeros_like(input_ids, dtype=torch.bool)
    header = torch.tensor(header_ids, dtype=input_ids.dtype)
    n = len(header_ids)
    for row in range(input_ids.shape[0]):
        ids = input_ids[row]
        starts = (ids == im_start_id).nonzero().flatten().tolist()
        for s in starts:
            body = s + 1 + n
            if body > ids.numel() or not torch.equal(ids[s + 1 : body], header):
                continue
            ends = (ids[body:] == im_end_id).nonzero().flatten()
            stop = (
                body + int(ends[0]) + 1 if ends.numel() else ids.numel()
            )  # a truncated turn trains to the end
            mask[row, body:stop] = True
    return mask


def load_message_images(messages: list[dict[str, Any]], root: str | Path | None = None) -> list[Any]:
    """PIL images referenced by ``{"type": "image", "image": path | PIL}`` parts, in order (paths relative to root).

    An image part may also carry (as in ``qwen_vl_utils``):

    * ``"crop": [x1, y1, x2, y2]`` — read only that window of the source, in native resolution (GeoTIFF/COG are read
      by windows, never decoded whole), e.g. the Zoom-in Chain's second view;
    * ``"resized_width"`` / ``"resized_height"`` — resize to exactly that size (the data engine's random resizing; boxes
      in the answer were rescaled to it).
    """
    from rszoo.data.images import load_image, read_view

    images = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str) or content is None:
            continue
        for part in content:
            if part.get("type") != "image":
                continue
            source = part.get("image")
            if hasattr(source, "convert"):  # already a PIL image
                images.append(source.convert("RGB"))
                continue
            if not isinstance(source, str):
                raise ValueError(
                    f"an image part needs 'image': a path or a PIL image, got {type(source).__name__}"
                )
            path = Path(source) if root is None or Path(source).is_absolute() else Path(root) / source
            crop = part.get("crop")
            window = None
            if crop is not None:
                x1, y1, x2, y2 = (round(float(v)) for v in crop)
                window = (x1, y1, max(1, x2 - x1), max(1, y2 - y1))
            if part.get("resized_width") and part.get("resized_height"):
                # bounded memory: a UHR raster is read decimated, never decoded whole
                size = (int(part["resized_width"]), int(part["resized_height"]))
                images.append(read_view(path, window, size))
            else:
                images.append(load_image(path, window=window).pixels)
    return images


@contextlib.contextmanager
def _quiet_transformers() -> Any:
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _describe_mismatch(item: Any) -> str:
    if isinstance(item, tuple | list) and len(item) == 3:
        key, ckpt_shape, model_shape = item
        return f"{key}: checkpoint {tuple(ckpt_shape)}, model expects {tuple(model_shape)}"
    return str(item)


class VLMModel(RSZooModel):
    """A Qwen2.5-VL / Qwen3-VL chat network built from a :class:`VLMConfig`.

    Example:
        >>> import rszoo
        >>> model = rszoo.create_model("rsground_r1-tiny")
        >>> model.backbone.family
        'qwen2_5_vl'
    """

    config_class = VLMConfig

    def __init__(self, config: VLMConfig, backbone: QwenVLBackbone | None = None) -> None:
        super().__init__(config)
        self.backbone = (
            backbone if backbone is not None else QwenVLBackbone(config.hf_config, config.attn_implementation)
        )
        self._processor: Any = None

    # -- processor and inputs -----------------------------------------------------------------------------------------
    @property
    def processor(self) -> Any:
        """The tokenizer + image processor + chat template (built on first use)."""
        if self._processor is None:
            cfg = self.config
            self._processor = build_processor(cfg.processor, cfg.model_family, cfg.min_pixels, cfg.max_pixels)
        return self._processor

    @processor.setter
    def processor(self, value: Any) -> None:
        self._processor = value

    @property
    def eos_token_id(self) -> int:
        return self.processor.tokenizer.convert_tokens_to_ids("<|im_end|>")

    def encode(
        self,
        conversations: list[list[dict[str, Any]]],
        images: list[list[Any]] | None = None,
        add_generation_prompt: bool = True,
        padding_side: str = "left",
    ) -> Any:
        """Tokenise chat ``conversations`` (with their PIL ``images``) into model inputs (a ``BatchFeature``).

        Left padding by default, which is what batched generation needs.
        """
        proc = self.processor
        texts = [
            proc.apply_chat_template(conv, tokenize=False, add_generation_prompt=add_generation_prompt)
            for conv in conversations
        ]
        flat_images = [img for imgs in (images or []) for img in imgs] or None
        proc.tokenizer.padding_side = padding_side
        return proc(text=texts, images=flat_images, padding=True, return_tensors="pt")

    # -- forward and generation ---------------------------------------------------------------------------------------
    def forward(self, **batch: Any) -> Any:
        """transformers forward (``input_ids``, ``attention_mask``, ``pixel_values``, ``image_grid_thw``,
        ``mm_token_type_ids``, optional ``labels``) -> output with ``logits``."""
        return self.backbone(**batch)

    @torch.no_grad()
    def generate(self, **kwargs: Any) -> Any:
        """transformers generate with this config's defaults; explicit kwargs win over the checkpoint's
        ``generation_config`` (Qwen2.5-VL ships top_k=1, which would make sampled rollouts identical)."""
        return self.backbone.generate(**{**self.config.generation, **kwargs})

    def chat(
        self,
        conversations: list[list[dict[str, Any]]],
        images: list[list[Any]] | None = None,
        **generate_kwargs: Any,
    ) -> list[str]:
        """Answer each conversation; returns the decoded assistant texts (special tokens removed)."""
        inputs = self.encode(conversations, images, add_generation_prompt=True)
        device = next(self.parameters()).device
        inputs = inputs.to(device)
        kwargs = {"eos_token_id": self.eos_token_id, "pad_token_id": self.processor.tokenizer.pad_token_id}
        out = self.generate(**inputs, **kwargs, **generate_kwargs)
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True)

    @torch.no_grad()
    def answer_scores(
        self, conversations: list[list[dict[str, Any]]], images: list[list[Any]] | None = None
    ) -> list[dict[str, float]]:
        """Teacher-forced scores of each conversation's assistant turns (the reference answers).

        Returns, per conversation, ``nll`` (summed negative log-likelihood of its assistant tokens, end-of-turn
        included, exactly the tokens SFT trains on), ``tokens`` (their number) and ``correct`` (how many the model's
        greedy next-token prediction gets right). Unlike generated-answer metrics these move smoothly from the first
        training steps, so they compare runs that are still too short to answer correctly.

        Example:
            >>> import rszoo
            >>> model = rszoo.create_model("rscovlm-tiny")
            >>> chat = [{"role": "user", "content": "Is there a ship?"}, {"role": "assistant", "content": "no"}]
            >>> [score] = model.answer_scores([chat])
            >>> sorted(score)
            ['correct', 'nll', 'tokens']
            >>> score["correct"] <= score["tokens"]
            True
        """
        tok = self.processor.tokenizer
        batch = self.encode(conversations, images, add_generation_prompt=False, padding_side="right")
        mask = assistant_token_mask(
            batch["input_ids"],
            tok.convert_tokens_to_ids("<|im_start|>"),
            tok.convert_tokens_to_ids("<|im_end|>"),
            tok.encode("assistant\n", add_special_tokens=False),
        )
        mask &= batch["attention_mask"].bool()
        batch = batch.to(next(self.parameters()).device)
        logits = self(**batch, use_cache=False).logits[:, :-1].float()
        targets = batch["input_ids"][:, 1:]
        scored = mask[:, 1:].to(logits.device)
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        correct = logits.argmax(-1) == targets
        return [
            {
                "nll": float(nll[i][scored[i]].sum()),
                "tokens": float(scored[i].sum()),
                "correct": float(correct[i][scored[i]].sum()),
            }
            for i in range(len(conversations))
        ]

    # -- backbone contract passthrough --------------------------------------------------------------------------------
    def freeze_groups(self) -> dict[str, list[torch.nn.Module]]:
        return self.backbone.freeze_groups()

    def fsdp_units(self) -> set[type[torch.nn.Module]]:
        return self.backbone.fsdp_units()

    def sharding_root(self) -> torch.nn.Module:
        """The module whose forward every caller goes through (rollouts call the transformers model directly)."""
        return self.backbone.hf_model

    # -- hub I/O hooks ------------------------------------------------------------------------------------------------
    def _save_weights(self, directory: Path, max_shard_size: str) -> None:
        self.backbone.hf_model.save_pretrained(
            directory, max_shard_size=max_shard_size, safe_serialization=True
        )
        self.processor.save_pretrained(directory)

    @classmethod
    def _load_pretrained(
        cls,
        directory: Path,
        config: VLMConfig,
        allow_missing: tuple[str, ...],
        allow_unexpected: tuple[str, ...],
    ) -> Self:
        family = config.model_family
        hf_cfg = hf_config_class(family)(**{k: v for k, v in config.hf_config.items() if k != "model_type"})
        hf_cfg._attn_implementation = config.attn_implementation
        weight_files = sorted(p.name for p in directory.glob("*.safetensors"))
        if not weight_files:
            raise CheckpointError(
                f"{directory} has no *.safetensors weights (pickled .bin files are not loaded)"
            )
        try:
            with _quiet_transformers():  # we report missing/unexpected/mismatched keys ourselves, precisely
                hf_model, info = hf_model_class(family).from_pretrained(
                    directory,
                    config=hf_cfg,
                    output_loading_info=True,
                    use_safetensors=True,
                    dtype="auto",
                    ignore_mismatched_sizes=True,
                )
        except Exception as exc:  # transformers raises many types for bad files; name the files
            raise CheckpointError(
                f"cannot load the weights in {directory} ({', '.join(weight_files)}): {exc}"
            ) from exc
        if info.get("mismatched_keys"):
            shapes = "; ".join(_describe_mismatch(m) for m in info["mismatched_keys"])
            raise CheckpointError(f"{directory}: weights with the wrong shape for this config: {shapes}")
        if info.get("error_msgs"):
            raise CheckpointError(f"{directory}: {info['error_msgs']}")
        check_keys(
            list(info["missing_keys"]),
            list(info["unexpected_keys"]),
            allow_missing,
            allow_unexpected,
            str(directory),
        )
        model = cls(config, backbone=QwenVLBackbone.wrap(hf_model))
        if any(
            (directory / name).is_file() for name in ("preprocessor_config.json", "processor_config.json")
        ):
            model.processor = build_processor(str(directory), family, config.min_pixels, config.max_pixels)
        return model

    @classmethod
    def _foreign_config(cls, directory: Path) -> VLMConfig:
        """An rszoo config for a plain transformers Qwen-VL folder (its config.json and processor)."""
        path = directory / "config.json"
        if not path.is_file():
            raise CheckpointError(f"{directory} has neither rszoo.json nor a transformers config.json")
        hf_config = json.loads(path.read_text())
        try:
            family = family_of(hf_config)
        except ValueError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        has_processor = any(
            (directory / n).is_file() for n in ("preprocessor_config.json", "processor_config.json")
        )
        factor = 28 if family == "qwen2_5_vl" else 32
        defaults = {"min_pixels": 4 * factor * factor, "max_pixels": 16384 * factor * factor}
        name = cls.config_class.family + "-" + directory.name if cls.config_class.family else directory.name
        return cls.config_class.from_dict(
            {
                "name": name,
                "backbone": family,
                "hf_config": hf_config,
                "processor": str(directory) if has_processor else "rszoo:qwen-tiny",
                "base_model": str(directory),
                **defaults,
            },
            source=str(path),
        )
