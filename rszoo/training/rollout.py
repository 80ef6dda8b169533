"""Shared-prefix rollouts and log-probabilities for group-based RL (GRPO and friends).

A GRPO group is G completions of *one* prompt. Generic trainers (trl's GRPOTrainer, VLM-R1) repeat the prompt G times,
so the vision encoder and the prompt prefill run G times per prompt, in generation and again in every scoring forward.
Here each prompt is encoded once:

* :func:`sample_group` prefills the prompt (image included) once, repeats its KV cache G times and samples the G
  continuations token by token with the recipe's temperature / top-k / top-p (never the checkpoint's
  ``generation_config``; Qwen2.5-VL ships ``top_k=1``, which would make every rollout identical);
* :func:`completion_logps` runs the prompt forward once, repeats its (differentiable) KV cache G times and scores the
  G completions against it. This is the same function of the parameters as G full-sequence forwards, so values and
  gradients match per-rollout recomputation (a test checks this), at a fraction of the cost when images dominate.

Log-probabilities are those of the tempered sampling distribution (``log_softmax(logits / temperature)``), as in trl.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

__all__ = ["SamplingConfig", "completion_logps", "full_sequence_logps", "sample_group"]


@dataclasses.dataclass
class SamplingConfig:
    """Rollout sampling settings (they override anything in the checkpoint's generation_config).

    Attributes:
        temperature: softmax temperature (trl and VLM-R1 use 1.0).
        top_k: keep the k most likely tokens; 0 disables.
        top_p: nucleus sampling mass; 1.0 disables.
        max_completion_length: the longest completion (tokens); longer ones are truncated.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    max_completion_length: int = 256

    def validate(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0 or self.max_completion_length < 1:
            raise ValueError("top_k must be >= 0 and max_completion_length >= 1")


def _filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    if top_k > 0 and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        remove = cumulative - sorted_logits.softmax(-1) >= top_p  # keep the token that crosses top_p
        sorted_logits = sorted_logits.masked_fill(remove, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


def _prompt_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    keys = ("input_ids", "attention_mask", "pixel_values", "image_grid_thw", "mm_token_type_ids")
    return {k: inputs[k] for k in keys if inputs.get(k) is not None}


@torch.no_grad()
def sample_group(
    backbone: Any,
    inputs: dict[str, Any],
    num_generations: int,
    sampling: SamplingConfig,
    eos_token_ids: list[int],
    pad_token_id: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sample ``num_generations`` completions of one prompt (batch of 1) with a shared prefix cache.

    Returns ``(completion_ids (G, T), completion_mask (G, T), truncated (G,))``. The mask covers every token up to and
    including the first end-of-sequence token (trl's convention); tokens after it are padding. The image placeholder
    token is never sampled (as in trl): a completion containing it could not be re-scored with the image, whose
    features must match the placeholders one to one.
    """
    hf = backbone.hf_model
    image_token_id = getattr(hf.config, "image_token_id", None)
    prompt = _prompt_inputs(inputs)
    if prompt["input_ids"].shape[0] != 1:
        raise ValueError("sample_group takes one prompt at a time (batch of 1)")
    positions, delta = backbone.rope_positions(prompt)
    out = hf(**prompt, position_ids=positions, use_cache=True)
    cache = out.past_key_values
    cache.batch_repeat_interleave(num_generations)
    logits = out.logits[:, -1].float().expand(num_generations, -1)
    prompt_len = prompt["input_ids"].shape[1]
    device = logits.device
    eos = torch.tensor(eos_token_ids, device=device)
    finished = torch.zeros(num_generations, dtype=torch.bool, device=device)
    tokens = []
    for step in range(sampling.max_completion_length):
        scaled = logits / sampling.temperature
        if image_token_id is not None:
            scaled[:, image_token_id] = float("-inf")
        probs = _filter_logits(scaled, sampling.top_k, sampling.top_p).softmax(-1)
        next_tokens = torch.multinomial(probs, 1).squeeze(1)
        next_tokens = torch.where(finished, torch.full_like(next_tokens, pad_token_id), next_tokens)
        tokens.append(next_tokens)
        finished |= torch.isin(next_tokens, eos)
        if bool(finished.all()) or step == sampling.max_completion_length - 1:
            break
        pos = (prompt_len + step + delta).view(1, 1, 1).expand(3, num_generations, 1).to(device)
        out = hf(input_ids=next_tokens[:, None], past_key_values=cache, position_ids=pos, use_cache=True)
        logits = out.logits[:, -1].float()
    completion_ids = torch.stack(tokens, dim=1)
    is_eos = torch.isin(completion_ids, eos)
    first_eos = torch.where(
        is_eos.any(1),
        is_eos.int().argmax(1),
        torch.full_like(is_eos[:, 0], completion_ids.shape[1], dtype=torch.long),
    )
    mask = torch.arange(completion_ids.shape[1], device=device)[None] <= first_eos[:, None]
    return completion_ids, mask.long(), ~is_eos.any(1)


def _token_logps(logits: torch.Tensor, tokens: torch.Tensor, temperature: float) -> torch.Tensor:
    logps = torch.log_softmax(logits.float() / temperature, dim=-1)
    return logps.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def _prompt_cache() -> Any:
    """A cache that *records* each layer's prompt keys/values (overwriting, never appending).

    Activation checkpointing re-runs every layer in backward; with an appending cache the recompute would add the prompt
    a second time. Overwriting makes the layer's cache call idempotent, so the recomputed forward equals the first.
    """
    from transformers.cache_utils import DynamicCache, DynamicLayer

    class PromptCache(DynamicCache):
        def update(
            self,
            key_states: torch.Tensor,
            value_states: torch.Tensor,
            layer_idx: int,
            *args: Any,
            **kwargs: Any,
        ):
            while len(self.layers) <= layer_idx:
                self.layers.append(DynamicLayer())
            layer = self.layers[layer_idx]
            if not layer.is_initialized:
                layer.lazy_initialization(key_states, value_states)
            layer.keys, layer.values = key_states, value_states
            return key_states, value_states

    return PromptCache()


def _prefix_cache(prompt_cache: Any, group: int) -> Any:
    """A read-only view of the prompt's keys/values, repeated for ``group`` completions.

    ``update`` returns prefix + new tokens without storing anything, so the completion forward is a pure function of
    its inputs (checkpoint-safe) and gradients flow into the prompt's keys/values, i.e. into the shared prefix.
    """
    from transformers.cache_utils import DynamicCache, DynamicLayer

    class PrefixCache(DynamicCache):
        def __init__(self, prefix: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
            super().__init__()
            self.prefix = prefix
            for k, v in prefix:  # layers expose the prefix length for masks and positions
                layer = DynamicLayer()
                layer.lazy_initialization(k, v)
                layer.keys, layer.values = k, v
                self.layers.append(layer)

        def update(
            self,
            key_states: torch.Tensor,
            value_states: torch.Tensor,
            layer_idx: int,
            *args: Any,
            **kwargs: Any,
        ):
            k, v = self.prefix[layer_idx]
            return torch.cat([k, key_states], dim=-2), torch.cat([v, value_states], dim=-2)

    expanded = [
        (layer.keys.expand(group, *layer.keys.shape[1:]), layer.values.expand(group, *layer.values.shape[1:]))
        for layer in prompt_cache.layers
    ]
    return PrefixCache(expanded)


def completion_logps(
    backbone: Any, inputs: dict[str, Any], completion_ids: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Per-token log-probs ``(G, T)`` of G completions of one prompt, the prompt encoded once (differentiable).

    Safe under activation checkpointing: neither forward mutates a cache that a recompute would see again.
    """
    hf = backbone.hf_model
    prompt = _prompt_inputs(inputs)
    group = completion_ids.shape[0]
    positions, delta = backbone.rope_positions(prompt)
    out = hf(**prompt, position_ids=positions, past_key_values=_prompt_cache(), use_cache=True)
    first = out.logits[:, -1:].expand(group, 1, -1)  # predicts each completion's first token
    if completion_ids.shape[1] == 1:
        return _token_logps(first, completion_ids, temperature)
    prompt_len = prompt["input_ids"].shape[1]
    steps = torch.arange(completion_ids.shape[1] - 1, device=completion_ids.device)
    pos = (prompt_len + steps[None] + delta).unsqueeze(0).expand(3, group, -1)
    rest = hf(
        input_ids=completion_ids[:, :-1],
        past_key_values=_prefix_cache(out.past_key_values, group),
        position_ids=pos,
        use_cache=True,
    ).logits
    return _token_logps(torch.cat([first, rest], dim=1), completion_ids, temperature)


def full_sequence_logps(
    backbone: Any, inputs: dict[str, Any], completion_ids: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """The reference computation: each rollout as its own full prompt+completion forward (as trl does)."""
    prompt = _prompt_inputs(inputs)
    rows = []
    for completion in completion_ids:
        ids = torch.cat([prompt["input_ids"][0], completion])[None]
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        if "pixel_values" in prompt:
            batch["pixel_values"] = prompt["pixel_values"]
            batch["image_grid_thw"] = prompt["image_grid_thw"]
        if "mm_token_type_ids" in prompt:
            pad = torch.zeros(1, completion.numel(), dtype=prompt["mm_token_type_ids"].dtype)
            batch["mm_token_type_ids"] = torch.cat([prompt["mm_token_type_ids"], pad], dim=1)
        logits = backbone.hf_model(**batch).logits[:, prompt["input_ids"].shape[1] - 1 : -1]
        rows.append(_token_logps(logits, completion[None], temperature)[0])
    return torch.stack(rows)
