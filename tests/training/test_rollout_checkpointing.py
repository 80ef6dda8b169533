"""Shared-prefix log-probs stay exact under activation checkpointing (recompute must not see a mutated cache)."""

from __future__ import annotations

import copy

import numpy as np
import torch
from PIL import Image

import rszoo
from rszoo.training.rollout import completion_logps, full_sequence_logps


def test_completion_logps_with_activation_checkpointing_matches_plain_and_full_sequence():
    from torch.distributed._composable import checkpoint

    torch.manual_seed(0)
    net = rszoo.create_model("rsground_r1-tiny")
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (112, 112, 3), dtype=np.uint8))
    inputs = dict(net.encode([net.grounding_messages("the ship", image)], [[image]]))
    completions = torch.randint(0, 800, (4, 9))

    plain = net.backbone
    checkpointed = copy.deepcopy(net.backbone)
    for unit_type in checkpointed.fsdp_units():  # the FSDP2 path checkpoints exactly these units
        for module in checkpointed.modules():
            if type(module) is unit_type:
                checkpoint(module)

    def logps_and_grads(backbone):
        backbone.zero_grad()
        logps = completion_logps(backbone, inputs, completions)
        (logps * torch.linspace(-1, 1, logps.numel()).view_as(logps)).sum().backward()
        return logps.detach(), {
            n: p.grad.clone() for n, p in backbone.named_parameters() if p.grad is not None
        }

    ref_logps, ref_grads = logps_and_grads(plain)
    ckpt_logps, ckpt_grads = logps_and_grads(checkpointed)
    torch.testing.assert_close(ckpt_logps, ref_logps, rtol=1e-5, atol=1e-6)
    assert ref_grads.keys() == ckpt_grads.keys() and len(ref_grads) > 20
    for name, grad in ref_grads.items():
        torch.testing.assert_close(ckpt_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    with torch.no_grad():
        torch.testing.assert_close(
            full_sequence_logps(plain, inputs, completions), ref_logps, rtol=1e-5, atol=1e-5
        )
