"""rszoo's registered grounding rewards plugged into a real ``trl.GRPOTrainer`` (tiny Qwen2.5-VL, CPU, two steps)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

REWARD_SPECS = [{"name": "format"}, {"name": "iou"}, {"name": "positional", "weight": 0.1}]


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    """Tiny models gain nothing from intra-op threads, and spinning threads crawl on a busy 2-core machine."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _image(width: int, height: int, seed: int):
    from PIL import Image

    return Image.fromarray((np.random.RandomState(seed).rand(height, width, 3) * 255).astype(np.uint8))


def _rewards():
    from rszoo.registry import REWARDS

    return [
        REWARDS.build(spec["name"], **{k: v for k, v in spec.items() if k != "name"}) for spec in REWARD_SPECS
    ]


def _dataset():
    import datasets

    rows = []
    for i, (size, box) in enumerate([((84, 56), [10, 8, 40, 30]), ((56, 84), [5, 20, 50, 70])]):
        rows.append(
            {
                "prompt": [
                    {
                        "role": "user",
                        "content": [{"type": "image"}, {"type": "text", "text": f"Where is object {i}?"}],
                    }
                ],
                "image": _image(*size, seed=i),
                "box": box,
                "image_size": list(size),
            }
        )
    return datasets.Dataset.from_list(rows)


@pytest.fixture(scope="module")
def trained(tiny_model, tmp_path_factory):
    """A two-step trl GRPO run with rszoo rewards; returns (trainer, rewards)."""
    from trl import GRPOConfig, GRPOTrainer

    rewards = _rewards()
    args = GRPOConfig(
        output_dir=str(tmp_path_factory.mktemp("trl_grpo")),
        report_to="none",
        use_cpu=True,
        bf16=False,
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=6,
        logging_steps=1,
        save_strategy="no",
        reward_weights=[r.weight for r in rewards],
        gradient_checkpointing=False,
        seed=0,
    )
    trainer = GRPOTrainer(
        model=copy.deepcopy(tiny_model.backbone.hf_model),
        reward_funcs=rewards,
        args=args,
        train_dataset=_dataset(),
        processing_class=tiny_model.processor,
    )
    trainer.train()
    return trainer, rewards


@pytest.mark.slow
def test_rewards_are_called_and_logged_by_trl(trained) -> None:
    trainer, rewards = trained
    assert trainer.state.global_step == 2
    for reward in rewards:
        stats = reward.stats()
        # one call per generation batch (4 rollouts of one prompt)
        assert stats["calls"] == 2 and stats["completions"] == 8
        # an untrained tiny model never answers in the expected format: every completion is a counted failure
        assert stats["parse_failures"] == 8 and sum(stats["reasons"].values()) == 8
    logged = [entry for entry in trainer.state.log_history if "rewards/iou/mean" in entry]
    assert len(logged) == 2
    for entry in logged:
        for name in ("format", "iou", "positional"):
            assert entry[f"rewards/{name}/mean"] == 0.0
            assert entry[f"{name}/parse_failure_rate"] == 1.0  # reported through trl's log_metric hook
        assert entry["frac_reward_zero_std"] == 1.0


@pytest.mark.slow
def test_trl_reward_call_passes_dataset_columns_per_completion(trained) -> None:
    """trl's own ``_calculate_rewards`` on hand-written conversational completions: the columns (box, image_size,
    image) reach each reward aligned with its completion, and the weights give R = format + IoU + 0.1 R_pos."""
    import torch

    from rszoo.rewards.functional import iou, positional

    trainer, rewards = trained
    rows = list(_dataset())
    inputs = [rows[0], rows[0], rows[1], rows[1]]
    answers = [
        '<think>near the top</think><answer>{"bbox_2d": [10, 8, 40, 30]}</answer>',  # exact GT, input == original
        "<think>no idea</think>",
        '<think>left</think><answer>{"bbox_2d": [5, 20, 50, 60]}</answer>',
        '<answer>{"bbox_2d": [5, 20, 50, 70]}</answer>',  # right box, no <think>: format 0
    ]
    completions = [[{"role": "assistant", "content": text}] for text in answers]
    prompts = [row["prompt"] for row in inputs]
    table = trainer._calculate_rewards(inputs, prompts, completions, [[0]] * len(inputs))
    expected_iou = [1.0, 0.0, iou([5, 20, 50, 60], [5, 20, 50, 70]), 1.0]
    pos = [
        positional([10, 8, 40, 30], [10, 8, 40, 30], alpha=2.5, image_size=(84, 56)),
        0.0,
        positional([5, 20, 50, 60], [5, 20, 50, 70], alpha=2.5, image_size=(56, 84)),
        positional([5, 20, 50, 70], [5, 20, 50, 70], alpha=2.5, image_size=(56, 84)),
    ]
    expected = torch.tensor([[1.0, 0.0, 1.0, 0.0], expected_iou, pos], dtype=torch.float32).T
    torch.testing.assert_close(table, expected, rtol=1e-6, atol=1e-6)
    assert 0.7 < expected_iou[2] < 1.0 and 0.9 < pos[0] < 1.0
    total = (table * torch.tensor([r.weight for r in rewards])).nansum(1)
    torch.testing.assert_close(total[0], torch.tensor(2.0 + 0.1 * pos[0]))
