"""GRPO stage vs trl 1.x ``GRPOTrainer``: advantages, loss and parameter gradients on a tiny Qwen2.5-VL with images.

The rszoo side runs the stage's own ``training_step`` (shared-prefix ``completion_logps`` per group, then
``per_token_grpo_loss`` and ``aggregate_loss`` over the padded batch) on a buffer of fixed rollouts; the trl side runs a
real ``GRPOTrainer._compute_loss`` on the same rollouts laid out as trl lays them out (one left-padded prompt + image per
completion, right-padded completions, ``mm_token_type_ids`` extended with zeros). Both models start from identical
weights. Two prompts with different lengths and image sizes, completions that end in EOS early (one is EOS alone) and
completions truncated at ``max_completion_length``, temperature 0.7 (trl divides the logits by it inside its fused LM
head) and asymmetric clipping.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

G = 4  # completions per prompt
C = 8  # max_completion_length
TEMPERATURE = 0.7
EPS_LOW, EPS_HIGH = 0.1, 0.3
BETA = 0.04
IDS = ("p0", "p1")
# Where each completion ends with EOS (None: truncated at C tokens). Prompt 1's longest completion has 6 tokens, so
# the stage pads its per-token loss across groups while trl pads every completion to C.
EOS_AT = ([2, 5, None, None], [0, 3, 4, 5])
REWARDS = torch.tensor([1.0, 0.25, 0.0, 2.0, 0.5, 0.5, 1.5, 0.0])


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    """Tiny models gain nothing from intra-op threads, and spinning threads crawl on a busy 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _image(width: int, height: int, seed: int):
    from PIL import Image

    pixels = (np.random.RandomState(seed).rand(height, width, 3) * 255).astype(np.uint8)
    return Image.fromarray(pixels)


@pytest.fixture(scope="module")
def world(tiny_model, tmp_path_factory):
    """The policy, two encoded prompts, fixed rollouts, rewards/advantages, and old / reference log-probs."""
    from rszoo.training.grpo import group_advantages
    from rszoo.training.rollout import SamplingConfig, completion_logps, sample_group

    net = copy.deepcopy(tiny_model)
    hf = net.backbone.hf_model
    saved = tmp_path_factory.mktemp("tiny_qwen")
    hf.save_pretrained(saved)
    hf.config._name_or_path = str(saved)  # trl builds its reference model from this path when beta > 0
    eos = net.eos_token_id
    pad = net.processor.tokenizer.pad_token_id
    prompts, groups = [], []
    specs = [("the small ship", (56, 56)), ("the large storage tank left of the two harbours", (84, 56))]
    for p, ((expression, size), eos_at) in enumerate(zip(specs, EOS_AT)):
        image = _image(*size, seed=p)
        inputs = dict(net.encode([net.grounding_messages(expression, image)], [[image]]))
        torch.manual_seed(100 + p)
        ids, _, _ = sample_group(net.backbone, inputs, G, SamplingConfig(1.0, 0, 1.0, C), [eos], pad)
        ids = ids.clone()
        ids[ids == eos] = 5  # only the positions chosen below end a completion
        mask = torch.ones_like(ids)
        for row, at in enumerate(eos_at):
            if at is not None:
                ids[row, at] = eos
                ids[row, at + 1 :] = pad
                mask[row, at + 1 :] = 0
        width = int(mask.sum(1).max())
        prompts.append(inputs)
        groups.append((ids[:, :width], mask[:, :width]))
    assert prompts[0]["input_ids"].shape[1] != prompts[1]["input_ids"].shape[1]  # trl must left-pad
    advantages, _ = group_advantages(REWARDS, G, "group")
    gen = torch.Generator().manual_seed(0)
    old, ref = [], []
    with torch.no_grad():
        for inputs, (ids, _) in zip(prompts, groups):
            current = completion_logps(net.backbone, inputs, ids, TEMPERATURE)
            old.append(current + 0.4 * torch.randn(current.shape, generator=gen))
            ref.append(current + 0.3 * torch.randn(current.shape, generator=gen))
    return {"net": net, "prompts": prompts, "groups": groups, "adv": advantages, "old": old, "ref": ref}


def _ours(world, weights: torch.Tensor | None = None, **stage_args) -> tuple[torch.Tensor, dict]:
    """Loss and gradients from ``GRPOStage.training_step`` on the fixed rollouts."""
    import rszoo
    from rszoo.training.grpo import _Group

    net = world["net"]
    net.zero_grad(set_to_none=True)
    args = {"num_generations": G, "max_completion_length": C, "temperature": TEMPERATURE, **stage_args}
    task = rszoo.RSGroundR1(model="rsground_r1-tiny", stage="grpo", stage_args=args)
    task.network = net
    task.stage.setup()
    cfg = task.stage.config
    buffer = []
    for p, (inputs, (ids, mask)) in enumerate(zip(world["prompts"], world["groups"])):
        rows = slice(p * G, (p + 1) * G)
        buffer.append(
            _Group(
                IDS[p],
                inputs,
                ids,
                mask,
                world["adv"][rows],
                None if weights is None else weights[rows],
                world["old"][p] if cfg.num_iterations > 1 else None,
                world["ref"][p] if cfg.beta > 0 else None,
            )
        )
    task.stage._buffer, task.stage._buffer_key, task.stage._buffer_uses = buffer, IDS, 0
    loss = task.training_step([{"id": i} for i in IDS], 0)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in net.backbone.hf_model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


def _trl_inputs(world, pad: int, advantages: torch.Tensor) -> dict:
    """The batch dict trl's ``_compute_loss`` reads, laid out as ``_generate_and_score_completions`` builds it."""
    prompts, groups = world["prompts"], world["groups"]
    rows = [(p, r) for p in range(len(prompts)) for r in range(G)]
    B = len(rows)
    P = max(inputs["input_ids"].shape[1] for inputs in prompts)
    width = max(ids.shape[1] for ids, _ in groups)
    prompt_ids = torch.full((B, P), pad, dtype=torch.long)
    prompt_mask = torch.zeros(B, P, dtype=torch.long)
    mm_types = torch.zeros(B, P + width, dtype=torch.long)
    completion_ids = torch.full((B, width), pad, dtype=torch.long)
    completion_mask = torch.zeros(B, width, dtype=torch.long)
    old = torch.zeros(B, width)
    ref = torch.zeros(B, width)
    for b, (p, r) in enumerate(rows):
        inputs, (ids, mask) = prompts[p], groups[p]
        length, n = inputs["input_ids"].shape[1], ids.shape[1]
        prompt_ids[b, P - length :] = inputs["input_ids"][0]  # trl left-pads prompts
        prompt_mask[b, P - length :] = 1
        mm_types[b, P - length : P] = inputs["mm_token_type_ids"][0]
        completion_ids[b, :n] = ids[r]
        completion_mask[b, :n] = mask[r]
        old[b, :n] = world["old"][p][r]
        ref[b, :n] = world["ref"][p][r]
    return {
        "prompt_ids": prompt_ids,
        "prompt_mask": prompt_mask,
        "completion_ids": completion_ids,
        "completion_mask": completion_mask,
        "pixel_values": torch.cat(
            [prompts[p]["pixel_values"] for p, _ in rows]
        ),  # one image copy per completion
        "image_grid_thw": torch.cat([prompts[p]["image_grid_thw"] for p, _ in rows]),
        "num_images": [1] * B,
        "mm_token_type_ids": mm_types,
        "advantages": advantages,
        "old_per_token_logps": old,
        "ref_per_token_logps": ref,
        "num_items_in_batch": completion_mask.sum(),
    }


def _trl(world, tmp_path, advantages: torch.Tensor | None = None, **loss_args) -> tuple[torch.Tensor, dict]:
    """Loss and gradients from a real ``trl.GRPOTrainer._compute_loss`` around a copy of the same weights."""
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    from rszoo.rewards.grounding import FormatReward

    net = world["net"]
    args = GRPOConfig(
        output_dir=str(tmp_path / "trl"),
        report_to="none",
        use_cpu=True,
        bf16=False,  # trl defaults to bf16 autocast, even on CPU; both sides run in float32
        per_device_train_batch_size=len(IDS) * G,  # the scored batch: both groups
        num_generations=G,
        max_completion_length=C,
        temperature=TEMPERATURE,
        **{"use_bias_correction_kl": False, **loss_args},
    )
    model = copy.deepcopy(net.backbone.hf_model)
    model.zero_grad(set_to_none=True)  # a deep copy carries the .grad of our last backward
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[FormatReward()],
        args=args,
        train_dataset=datasets.Dataset.from_list([{"prompt": [{"role": "user", "content": "unused"}]}]),
        processing_class=net.processor,
    )
    inputs = _trl_inputs(
        world, net.processor.tokenizer.pad_token_id, world["adv"] if advantages is None else advantages
    )
    if args.num_iterations == 1:
        del inputs["old_per_token_logps"]  # trl then uses the current log-probs, detached
    if args.beta == 0:
        del inputs["ref_per_token_logps"]
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = (
        1  # set by Trainer's loop; one micro-batch per optimizer step here
    )
    loss = trainer._compute_loss(trainer.model, inputs)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


def _assert_same(ours, theirs) -> None:
    loss, grads = ours
    trl_loss, trl_grads = theirs
    torch.testing.assert_close(loss, trl_loss, rtol=1e-6, atol=1e-6)
    assert (
        grads.keys() == trl_grads.keys() and len(grads) > 40
    )  # vision tower, merger and language model all learn
    for name, grad in grads.items():
        scale = float(trl_grads[name].abs().max())
        torch.testing.assert_close(
            grad, trl_grads[name], rtol=1e-5, atol=1e-6 * max(1.0, scale), msg=lambda m, n=name: f"{n}: {m}"
        )


def test_fixed_rollouts_exercise_clipping_padding_and_truncation(world) -> None:
    from rszoo.training.grpo import per_token_grpo_loss
    from rszoo.training.rollout import completion_logps

    masks = [mask for _, mask in world["groups"]]
    lengths = torch.cat([m.sum(1) for m in masks]).tolist()
    assert lengths == [3, 6, C, C, 1, 4, 5, 6]
    low = high = band = 0
    with torch.no_grad():
        for p, (inputs, (ids, mask)) in enumerate(zip(world["prompts"], world["groups"])):
            current = completion_logps(world["net"].backbone, inputs, ids, TEMPERATURE)
            adv = world["adv"][p * G : (p + 1) * G]
            _, parts = per_token_grpo_loss(current, world["old"][p], adv, EPS_LOW, EPS_HIGH)
            ratio = torch.exp(current - world["old"][p])
            m = mask.bool()
            low += int((parts["low_clipped"] & m).sum())
            high += int((parts["high_clipped"] & m).sum())
            # tokens clipped with symmetric eps=EPS_LOW but not with EPS_HIGH: asymmetry changes the loss
            band += int(((ratio > 1 + EPS_LOW) & (ratio <= 1 + EPS_HIGH) & (adv[:, None] > 0) & m).sum())
    assert low > 0 and high > 0 and band > 0, (low, high, band)


@pytest.mark.slow
@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo", "dapo"])
@pytest.mark.parametrize("beta", [0.0, BETA])
@pytest.mark.parametrize("num_iterations", [1, 2])
def test_loss_and_gradients_match_trl(world, tmp_path, loss_type, beta, num_iterations) -> None:
    settings = {
        "loss_type": loss_type,
        "beta": beta,
        "epsilon": EPS_LOW,
        "epsilon_high": EPS_HIGH,
        "num_iterations": num_iterations,
    }
    ours = _ours(world, **settings)
    theirs = _trl(world, tmp_path, **settings)
    _assert_same(ours, theirs)
    if (
        num_iterations > 1
    ):  # the stored old log-probs differ from the current ones: clipping and eps_high matter
        symmetric = _ours(world, **{**settings, "epsilon_high": EPS_LOW})
        assert abs(float(symmetric[0] - ours[0])) > 1e-4


@pytest.mark.slow
def test_trl_default_bias_corrected_kl_is_the_one_difference(world, tmp_path) -> None:
    """trl 1.16 defaults to ``use_bias_correction_kl=True`` (KL multiplied by the differentiable ratio, DeepSeek-V3.2),
    which changes the gradient whenever beta > 0. The stage defaults to the classic k3 penalty (VLM-R1, trl with
    ``use_bias_correction_kl=False``); its ``use_bias_correction_kl`` option gives trl's default exactly."""
    from rszoo.training.grpo import _pad_right, aggregate_loss, per_token_grpo_loss
    from rszoo.training.rollout import completion_logps

    settings = {
        "loss_type": "grpo",
        "beta": BETA,
        "epsilon": EPS_LOW,
        "epsilon_high": EPS_HIGH,
        "num_iterations": 1,
    }
    trl_default = _trl(world, tmp_path, use_bias_correction_kl=True, **settings)
    net = world["net"]
    net.zero_grad(set_to_none=True)
    losses, masks = [], []
    for p, (inputs, (ids, mask)) in enumerate(zip(world["prompts"], world["groups"])):
        logps = completion_logps(net.backbone, inputs, ids, TEMPERATURE)
        old = logps.detach()
        adv = world["adv"][p * G : (p + 1) * G]
        loss, _ = per_token_grpo_loss(
            logps, old, adv, EPS_LOW, EPS_HIGH, BETA, world["ref"][p], bias_correction_kl=True
        )
        losses.append(loss)
        masks.append(mask)
    total = aggregate_loss(_pad_right(losses), _pad_right(masks), "grpo", C)
    total.backward()
    grads = {n: p.grad.clone() for n, p in net.backbone.hf_model.named_parameters() if p.grad is not None}
    _assert_same((total.detach(), grads), trl_default)
    classic = _ours(world, **settings)
    assert max(float((classic[1][n] - grads[n]).abs().max()) for n in grads) > 1e-5


@pytest.mark.slow
def test_spatial_weight_equals_trl_with_scaled_advantages(world, tmp_path) -> None:
    """RSGround-R1's group weight on the policy term == trl with advantages multiplied by w (notes section 2.5)."""
    from rszoo.rewards.functional import spatial_consistency_weight

    ious = np.array([[0.9, 0.1, 0.5, 0.0], [0.2, 0.2, 0.3, 0.1]])
    w = torch.as_tensor(spatial_consistency_weight(ious, ddof=0), dtype=torch.float32).reshape(-1)
    assert float(w.min()) > 1.0 and float(w.max()) < 3.0 and not torch.isclose(w[0], w[1])
    weights = w.repeat_interleave(G)
    settings = {
        "loss_type": "grpo",
        "beta": BETA,
        "epsilon": EPS_LOW,
        "epsilon_high": EPS_HIGH,
        "num_iterations": 2,
    }
    group_weight = {"name": "spatial_consistency", "reward": "iou", "scope": "policy"}
    ours = _ours(world, weights=weights, rewards=[{"name": "iou"}], group_weight=group_weight, **settings)
    theirs = _trl(world, tmp_path, advantages=world["adv"] * weights, **settings)
    _assert_same(ours, theirs)


def test_group_weight_is_advantage_scaling_and_total_scope_adds_weighted_kl(world) -> None:
    """Gradients w.r.t. the parameters: policy-scope weight == scaled advantages (any beta); total scope differs from
    it by exactly ``beta * (w - 1) * KL``."""
    from rszoo.training.grpo import aggregate_loss, per_token_grpo_loss
    from rszoo.training.rollout import completion_logps

    net = world["net"]
    params = [p for p in net.backbone.hf_model.parameters() if p.requires_grad]
    inputs, (ids, mask) = world["prompts"][0], world["groups"][0]
    adv, old, ref = world["adv"][:G], world["old"][0], world["ref"][0]
    w = torch.full((G,), 1.7)

    def grads(beta: float, advantages: torch.Tensor, weight=None, scope="policy", extra=None):
        logps = completion_logps(net.backbone, inputs, ids, TEMPERATURE)
        loss, parts = per_token_grpo_loss(logps, old, advantages, EPS_LOW, EPS_HIGH, beta, ref, weight, scope)
        if extra is not None:
            loss = loss + extra(parts)
        total = aggregate_loss(loss, mask, "grpo", C)
        return torch.autograd.grad(total, params)

    for beta in (0.0, BETA):
        scaled = grads(beta, adv * w)
        weighted = grads(beta, adv, w, "policy")
        for a, b in zip(scaled, weighted):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    total = grads(BETA, adv, w, "total")
    scaled_plus_kl = grads(BETA, adv * w, extra=lambda parts: BETA * (w[:, None] - 1) * parts["kl"])
    scaled = grads(BETA, adv * w)
    for a, b in zip(total, scaled_plus_kl):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    assert max(float((a - c).abs().max()) for a, c in zip(total, scaled)) > 1e-6  # the KL term does differ


@pytest.mark.slow
@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_group_advantages_match_trl_generate_and_score(tiny_model, tmp_path, scale) -> None:
    """trl's own advantage code (``_generate_and_score_completions``, real generation) on a fixed reward table with
    two weighted reward functions, a None (NaN) entry and an all-equal group."""
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    from rszoo.training.grpo import group_advantages

    weights = [1.0, 0.5]
    table = torch.tensor(
        [
            [1.0, 0.0],
            [0.0, 1.0],
            [1.0, float("nan")],  # the second function returned None
            [0.5, 0.5],
            [0.3, 0.2],  # an all-equal group: reward 0.4 everywhere -> advantage 0
            [0.2, 0.4],
            [0.4, 0.0],
            [0.0, 0.8],
            [2.0, 1.0],
            [0.0, 0.0],
            [1.0, 0.5],
            [0.25, 0.75],
        ]
    )

    def fixed(column: int):
        def reward(prompts, completions, **kwargs):
            assert len(completions) == len(table)
            return [None if torch.isnan(v) else float(v) for v in table[:, column]]

        reward.__name__ = f"fixed{column}"
        return reward

    image = _image(56, 56, seed=3)
    rows = [{"prompt": [{"role": "user", "content": f"find object {i}"}], "image": image} for i in range(3)]
    args = GRPOConfig(
        output_dir=str(tmp_path / "trl"),
        report_to="none",
        use_cpu=True,
        bf16=False,  # trl defaults to bf16 autocast, even on CPU; both sides run in float32
        per_device_train_batch_size=len(table),
        num_generations=G,
        max_completion_length=2,
        scale_rewards=scale,
        reward_weights=weights,
    )
    trainer = GRPOTrainer(
        model=copy.deepcopy(tiny_model.backbone.hf_model),
        reward_funcs=[fixed(0), fixed(1)],
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tiny_model.processor,
    )
    trainer.model.train()
    trainer._generate_and_score_completions([row for row in rows for _ in range(G)])
    trl_advantages = torch.tensor(list(trainer._logs["advantages"]))
    rewards = (table * torch.tensor(weights)).nansum(1)  # the stage's weighted sum (GRPOStage._make_groups)
    ours, _ = group_advantages(rewards, G, scale)
    torch.testing.assert_close(ours, trl_advantages, rtol=1e-6, atol=1e-6)
    assert torch.all(ours[4:8] == 0)
    grouped = rewards.view(-1, G)
    reference = {  # the formulas written out: unbiased std, +1e-4
        "group": (grouped - grouped.mean(1, keepdim=True)) / (grouped.std(1, keepdim=True) + 1e-4),
        "batch": (grouped - grouped.mean(1, keepdim=True)) / (rewards.std() + 1e-4),
        "none": grouped - grouped.mean(1, keepdim=True),
    }[scale]
    torch.testing.assert_close(ours, reference.reshape(-1), rtol=1e-6, atol=1e-6)
