"""GRPO stage details beyond trl parity: unscorable completions and the stored rollouts of num_iterations > 1."""

from __future__ import annotations

import math

import torch

from rszoo.training.grpo import group_advantages


def test_unscorable_completions_leave_the_baseline_and_get_zero_advantage():
    nan = math.nan
    rewards = torch.tensor([1.0, nan, 3.0, 2.0, 5.0, 5.0, 5.0, 5.0])
    adv, std = group_advantages(rewards, 4, "group")
    kept = torch.tensor([1.0, 3.0, 2.0])
    expected = (kept - kept.mean()) / (
        kept.std() + 1e-4
    )  # mean and unbiased std of the three scored rollouts
    torch.testing.assert_close(adv[[0, 2, 3]], expected)
    assert adv[1] == 0.0
    assert torch.all(adv[4:] == 0) and torch.all(std[4:] == 0)  # a group with equal rewards teaches nothing
    none, _ = group_advantages(rewards, 4, "none")
    torch.testing.assert_close(none[[0, 2, 3]], kept - kept.mean())
    batch, batch_std = group_advantages(rewards, 4, "batch")
    scored = rewards[~rewards.isnan()]
    torch.testing.assert_close(batch_std[0], scored.std())
    torch.testing.assert_close(batch[0], (rewards[0] - kept.mean()) / (scored.std() + 1e-4))
