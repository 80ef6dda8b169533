"""Multimodal chat SFT: the stage behind RSGround-R1's CoT-SFT, RSCoVLM, RS-WorldModel's SIT and Uni-RS's
understanding stage.

Data are OpenAI-messages JSONL rows (system/user/assistant; images by path; several images per sample). Each batch is
rendered with the network's own chat template through its processor, and the loss covers only assistant tokens — every
assistant turn, each up to and including its end-of-turn token (``<|im_end|>``), never the ``<|im_start|>assistant\\n``
header, the system or user turns, image tokens, or padding.

Batching: right padding by default; ``pack=True`` concatenates samples into one row up to ``max_length`` with per-sample
position ids (transformers then masks attention across sample boundaries), which removes padding.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from rszoo.models.vlm.model import assistant_token_mask
from rszoo.training.task import Stage

__all__ = ["SFTStage"]

IGNORE_INDEX = -100


@dataclasses.dataclass
class SFTConfig:
    """Options of the SFT stage.

    Attributes:
        max_length: longest tokenised sample (truncation would cut image tokens and corrupt the sample, so it is
            never done).
        overlong: what to do with a longer sample: ``error`` (raise naming it) or ``skip`` (drop it from its batch;
            counted in ``train/skipped_overlong``) — the practical choice for mixtures with dense detection scenes.
        pack: concatenate samples of a batch into one row (no padding) with per-sample positions.
        pad_to_multiple_of: pad lengths to a multiple (e.g. 8 on GPUs).
    """

    max_length: int = 4096
    overlong: str = "error"
    pack: bool = False
    pad_to_multiple_of: int | None = None

    def validate(self) -> None:
        if self.overlong not in ("error", "skip"):
            raise ValueError(f"stage_args.overlong must be 'error' or 'skip', got {self.overlong!r}")
        if self.max_length < 1:
            raise ValueError(f"stage_args.max_length must be >= 1, got {self.max_length}")


class SFTStage(Stage):
    """Next-token cross-entropy on assistant tokens of multimodal chats."""

    Config = SFTConfig

    def setup(self) -> None:
        tok = self.task.network.processor.tokenizer
        self.im_start_id = tok.convert_tokens_to_ids("<|im_start|>")
        self.im_end_id = tok.convert_tokens_to_ids("<|im_end|>")
        self.header_ids = tok.encode("assistant\n", add_special_tokens=False)

    # -- batching -----------------------------------------------------------------------------------------------------
    def _encode(self, samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        from rszoo.models.vlm.model import load_message_images

        network = self.task.network
        proc = network.processor
        conversations = [s["messages"] for s in samples]
        images = [load_message_images(conv) for conv in conversations]
        texts = [
            proc.apply_chat_template(conv, tokenize=False, add_generation_prompt=False)
            for conv in conversations
        ]
        flat = [img for imgs in images for img in imgs] or None
        proc.tokenizer.padding_side = "right"
        batch = proc(
            text=texts,
            images=flat,
            padding=True,
            return_tensors="pt",
            pad_to_multiple_of=self.config.pad_to_multiple_of,
        )
        lengths = batch["attention_mask"].sum(1)
        too_long = [(s["id"], int(n)) for s, n in zip(samples, lengths) if n > self.config.max_length]
        if too_long and self.config.overlong == "skip" and len(too_long) < len(samples):
            kept = [s for s, n in zip(samples, lengths) if n <= self.config.max_length]
            batch = self._encode(kept)
            batch["num_skipped"] = batch.get("num_skipped", torch.tensor(0)) + len(too_long)
            return batch
        if too_long:
            raise ValueError(
                f"sample(s) longer than stage_args.max_length={self.config.max_length} tokens: {too_long}; raise "
                "max_length, or lower the model's max_pixels so images take fewer tokens"
            )
        mask = assistant_token_mask(batch["input_ids"], self.im_start_id, self.im_end_id, self.header_ids)
        mask &= batch["attention_mask"].bool()
        if not mask.any():
            raise ValueError(f"no assistant tokens to train on in samples {[s['id'] for s in samples]}")
        batch["labels"] = torch.where(
            mask, batch["input_ids"], torch.full_like(batch["input_ids"], IGNORE_INDEX)
        )
        return dict(batch)

    def collate(self, samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = self._encode(samples)
        if not self.config.pack or len(samples) < 2:
            return batch
        skipped = batch.pop("num_skipped", None)
        packed = self._pack(batch)
        if skipped is not None:
            packed["num_skipped"] = skipped
        return packed

    def _pack(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One row holding every sample back to back, with each sample's own 3-D rope positions."""
        network = self.task.network.backbone.hf_model
        keep = batch["attention_mask"].bool()
        position_ids, _ = network.model.get_rope_index(
            batch["input_ids"],
            mm_token_type_ids=batch.get("mm_token_type_ids"),
            image_grid_thw=batch.get("image_grid_thw"),
            attention_mask=batch["attention_mask"],
        )
        packed = {
            key: batch[key][keep].unsqueeze(0)
            for key in ("input_ids", "labels", "mm_token_type_ids")
            if key in batch
        }
        # position_ids: (3, B, L) -> (3, 1, total); text positions restart per sample so attention is block-diagonal
        packed["position_ids"] = position_ids[:, keep].unsqueeze(1)
        text_positions = torch.cat([torch.arange(int(n)) for n in keep.sum(1)]).unsqueeze(0)
        packed["position_ids"] = torch.cat([text_positions.unsqueeze(0), packed["position_ids"]], dim=0)
        for key in ("pixel_values", "image_grid_thw"):
            if key in batch:
                packed[key] = batch[key]
        return packed

    # -- steps --------------------------------------------------------------------------------------------------------
    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        """Mean cross-entropy over assistant tokens (shifted by one) and the number of such tokens."""
        labels = batch["labels"]
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        logits = self.task.network(
            **inputs, use_cache=False
        ).logits  # no KV cache in training (and packing needs none)
        shift_logits = logits[:, :-1].float()
        shift_labels = labels[:, 1:]
        n_tokens = int((shift_labels != IGNORE_INDEX).sum())
        loss = torch.nn.functional.cross_entropy(
            shift_logits.reshape(-1, shift_logits.shape[-1]),
            shift_labels.reshape(-1),
            ignore_index=IGNORE_INDEX,
        )
        return loss, n_tokens

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        skipped = batch.pop("num_skipped", None)
        if skipped is not None:
            self.task.log("train/skipped_overlong", float(skipped), reduce_fx="sum", batch_size=1)
        loss, n_tokens = self.loss(batch)
        bs = int(batch["input_ids"].shape[0])
        self.task.log("train/loss", loss, prog_bar=True, batch_size=bs)
        self.task.log("train/assistant_tokens", float(n_tokens), batch_size=bs)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        batch.pop("num_skipped", None)
        loss, _ = self.loss(batch)
        self.task.log(
            "val/loss", loss, prog_bar=True, batch_size=int(batch["input_ids"].shape[0]), sync_dist=True
        )
