"""Shared-prefix rollouts and log-probs (``rszoo.training.rollout``) on a tiny Qwen2.5-VL with an image.

References: per-rollout full forwards (``full_sequence_logps``), an independent batched forward written here (the
prompt and image repeated per rollout, right-padded completions with an attention mask, as trl scores them), and
transformers' own greedy ``generate``.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

G = 8
L = 12  # max completion length
EOS_BIAS = 4.0  # added to the EOS logit so that some rollouts end early and some are truncated


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    """Tiny models gain nothing from intra-op threads, and spinning threads crawl on a busy 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _image(width: int, height: int, seed: int = 0):
    from PIL import Image

    return Image.fromarray((np.random.RandomState(seed).rand(height, width, 3) * 255).astype(np.uint8))


def _add_logit_bias(hf, token: int, bias: float):
    """Shift one token's logit (a forward hook on the LM head), on a copy of the test model."""

    def hook(module, args, output):
        output = output.clone()
        output[..., token] += bias
        return output

    return hf.lm_head.register_forward_hook(hook)


@pytest.fixture(scope="module")
def net(tiny_model):
    return copy.deepcopy(tiny_model)


@pytest.fixture(scope="module")
def prompt(net):
    image = _image(112, 84)
    return dict(net.encode([net.grounding_messages("the plane next to the hangar", image)], [[image]]))


@pytest.fixture(scope="module")
def rollouts(net, prompt):
    """G rollouts from a model biased towards EOS: ``(ids, mask, truncated)``."""
    from rszoo.training.rollout import SamplingConfig, sample_group

    eos, pad = net.eos_token_id, net.processor.tokenizer.pad_token_id
    handle = _add_logit_bias(net.backbone.hf_model, eos, EOS_BIAS)
    try:
        torch.manual_seed(3)
        return sample_group(net.backbone, prompt, G, SamplingConfig(1.0, 0, 1.0, L), [eos], pad)
    finally:
        handle.remove()


def _batched_logps(hf, prompt, ids, mask, temperature):
    """Independent reference: one batched forward over G copies of prompt + image + right-padded completion."""
    group = ids.shape[0]
    length = prompt["input_ids"].shape[1]
    out = hf(
        input_ids=torch.cat([prompt["input_ids"].expand(group, -1), ids], 1),
        attention_mask=torch.cat([torch.ones(group, length, dtype=torch.long), mask], 1),
        mm_token_type_ids=torch.cat(
            [prompt["mm_token_type_ids"].expand(group, -1), torch.zeros_like(ids)], 1
        ),
        pixel_values=prompt["pixel_values"].repeat(group, 1),
        image_grid_thw=prompt["image_grid_thw"].repeat(group, 1),
    )
    logits = out.logits[:, length - 1 : -1].float() / temperature
    return torch.log_softmax(logits, -1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)


def test_mask_covers_tokens_up_to_and_including_first_eos(net, rollouts) -> None:
    ids, mask, truncated = rollouts
    eos, pad = net.eos_token_id, net.processor.tokenizer.pad_token_id
    ended = 0
    for row, mask_row, trunc in zip(ids.tolist(), mask.tolist(), truncated.tolist()):
        first = row.index(eos) if eos in row else None
        expected = [1] * len(row) if first is None else [1] * (first + 1) + [0] * (len(row) - first - 1)
        assert mask_row == expected
        assert trunc == (first is None)
        if first is not None:
            ended += 1
            assert all(t == pad for t in row[first + 1 :])  # padding after EOS, nothing sampled
    assert ids.shape[1] == L and 0 < ended < G  # some rollouts end early, some are truncated
    assert min(mask.sum(1).tolist()) == 1  # a completion that is EOS alone


def test_shared_prefix_logps_and_gradients_equal_full_recomputation(net, prompt, rollouts) -> None:
    from rszoo.training.rollout import completion_logps, full_sequence_logps

    ids, mask, _ = rollouts
    temperature = 0.7  # log-probs of the tempered distribution, as sampled
    hf = net.backbone.hf_model
    params = [p for p in hf.parameters() if p.requires_grad]
    weights = torch.randn(ids.shape, generator=torch.Generator().manual_seed(0)) * mask
    results = {}
    for name, compute in {
        "shared_prefix": lambda: completion_logps(net.backbone, prompt, ids, temperature),
        "per_rollout": lambda: full_sequence_logps(net.backbone, prompt, ids, temperature),
        "batched": lambda: _batched_logps(hf, prompt, ids, mask, temperature),
    }.items():
        logps = compute()
        grads = torch.autograd.grad((logps * weights).sum(), params)
        results[name] = (logps.detach(), grads)
    m = mask.bool()
    ours, our_grads = results["shared_prefix"]
    assert ours.shape == ids.shape and torch.isfinite(ours).all()
    for name in ("per_rollout", "batched"):
        logps, grads = results[name]
        torch.testing.assert_close(ours[m], logps[m], rtol=0, atol=1e-5)
        for ours_g, ref_g in zip(our_grads, grads):
            torch.testing.assert_close(
                ours_g, ref_g, rtol=1e-5, atol=1e-5 * max(1.0, float(ref_g.abs().max()))
            )
    assert all(
        g.abs().sum() > 0 for g in our_grads[:3]
    )  # the vision tower receives gradient through the cache


def test_recipe_sampling_overrides_the_checkpoint_generation_config(net, prompt) -> None:
    """Qwen2.5-VL ships top_k=1, top_p=0.001: transformers' sampling with it repeats one rollout; ours does not."""
    from rszoo.training.grpo import GRPOConfig
    from rszoo.training.rollout import SamplingConfig, sample_group

    eos, pad = net.eos_token_id, net.processor.tokenizer.pad_token_id
    hf = copy.deepcopy(net.backbone.hf_model)
    hf.generation_config.update(do_sample=True, top_k=1, top_p=0.001, temperature=0.01)
    backbone = copy.copy(net.backbone)
    backbone.hf_model = hf
    recipe = GRPOConfig().sampling
    assert (recipe.temperature, recipe.top_k, recipe.top_p) == (1.0, 0, 1.0)
    torch.manual_seed(0)
    ids, _, _ = sample_group(backbone, prompt, G, SamplingConfig(1.0, 0, 1.0, 6), [eos], pad)
    assert len({tuple(r) for r in ids.tolist()}) >= G // 2
    torch.manual_seed(0)
    checkpoint = hf.generate(
        **prompt, max_new_tokens=6, num_return_sequences=G, eos_token_id=eos, pad_token_id=pad
    )
    assert len({tuple(r) for r in checkpoint[:, prompt["input_ids"].shape[1] :].tolist()}) == 1


@pytest.mark.parametrize("filtering", [{"top_k": 1}, {"top_p": 1e-3}])
def test_top_k_1_or_tiny_top_p_gives_identical_greedy_rollouts(net, prompt, filtering) -> None:
    from rszoo.training.rollout import SamplingConfig, sample_group

    eos, pad = net.eos_token_id, net.processor.tokenizer.pad_token_id
    torch.manual_seed(0)
    sampling = SamplingConfig(**{"temperature": 1.0, "max_completion_length": 6, **filtering})
    ids, _, _ = sample_group(net.backbone, prompt, G, sampling, [eos], pad)
    assert len({tuple(r) for r in ids.tolist()}) == 1
    greedy = net.backbone.hf_model.generate(
        **prompt, do_sample=False, max_new_tokens=6, eos_token_id=eos, pad_token_id=pad
    )[0, prompt["input_ids"].shape[1] :]
    assert (
        net.backbone.hf_model.config.image_token_id not in greedy.tolist()
    )  # greedy == our (suppressed) sampler
    assert ids[0, : greedy.numel()].tolist() == greedy.tolist()


def test_same_seed_same_rollouts(net, prompt) -> None:
    from rszoo.training.rollout import SamplingConfig, sample_group

    eos, pad = net.eos_token_id, net.processor.tokenizer.pad_token_id
    runs = []
    for seed in (7, 7, 8):
        torch.manual_seed(seed)
        runs.append(sample_group(net.backbone, prompt, G, SamplingConfig(1.0, 0, 1.0, 6), [eos], pad)[0])
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_image_placeholder_token_is_never_sampled(net, prompt) -> None:
    """A sampled image token could not be re-scored with the image (features must match placeholders), as trl
    notes; the sampler suppresses it even when the model strongly prefers it."""
    from rszoo.training.rollout import SamplingConfig, full_sequence_logps, sample_group

    eos, pad = net.eos_token_id, net.processor.tokenizer.pad_token_id
    hf = net.backbone.hf_model
    image_token = hf.config.image_token_id
    handle = _add_logit_bias(hf, image_token, 30.0)
    try:
        torch.manual_seed(0)
        ids, _, _ = sample_group(net.backbone, prompt, 4, SamplingConfig(1.0, 0, 1.0, 5), [eos], pad)
    finally:
        handle.remove()
    assert image_token not in ids.tolist()[0] and (ids != image_token).all()
    with torch.no_grad():
        assert torch.isfinite(full_sequence_logps(net.backbone, prompt, ids)).all()
        with pytest.raises(ValueError, match="Image features and image tokens do not match"):
            full_sequence_logps(net.backbone, prompt, torch.tensor([[5, image_token, 7]]))
