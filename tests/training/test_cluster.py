"""Cluster arithmetic and pre-launch checks: global batch, device counts, resuming another model's checkpoint."""

from __future__ import annotations

import os
import time

import pytest

import rszoo
from rszoo.models.base import CheckpointError
from rszoo.training.cluster import batch_arithmetic, check_checkpoint_matches, check_devices
from rszoo.training.run import resolve_resume


def test_batch_arithmetic_derives_accumulation():
    assert batch_arithmetic(2, 1, 8, 64) == (
        4,
        "global batch 64 = 2 per device x 4 accumulation steps x 8 devices",
    )
    assert batch_arithmetic(1, 2, 8, None) == (
        2,
        "global batch 16 = 1 per device x 2 accumulation steps x 8 devices",
    )
    assert (
        batch_arithmetic(1, 1, 1, None)[1] == "global batch 1 = 1 per device x 1 accumulation step x 1 device"
    )
    # the same paper global batch on 1, 2 and 4 nodes of 8 GPUs
    assert [batch_arithmetic(1, 1, 8 * n, 32)[0] for n in (1, 2, 4)] == [4, 2, 1]


def test_world_size_that_does_not_divide_the_global_batch():
    with pytest.raises(ValueError) as err:
        batch_arithmetic(3, 1, 8, 64)
    message = str(err.value)
    assert "data.global_batch_size=64" in message and "3 x 8 = 24" in message
    assert "[48, 72]" in message and "[1, 2, 4, 8]" in message
    with pytest.raises(ValueError, match="no per-device batch divides it on 48 devices"):
        batch_arithmetic(1, 1, 48, 32)


def test_more_devices_than_exist():
    with pytest.raises(ValueError, match=r"cluster.devices=8 GPUs requested but this node has 0"):
        check_devices("gpu", 8, 1)
    cores = os.cpu_count()
    with pytest.raises(ValueError, match=f"this machine has {cores} cores"):
        check_devices("cpu", cores + 1, 1)
    check_devices("cpu", 1, 1)


def test_resuming_a_checkpoint_of_another_model_lists_the_keys():
    ours = rszoo.create_model("rsground_r1-tiny").config
    other = rszoo.create_model(
        "rsground_r1-tiny", backbone_overrides={"text_config": {"hidden_size": 128, "intermediate_size": 256}}
    ).config
    with pytest.raises(CheckpointError) as err:
        check_checkpoint_matches(other.to_json(), ours, "runs/x/step=5.ckpt")
    assert "text_config.hidden_size: checkpoint 128, recipe 64" in str(err.value)
    assert "text_config.intermediate_size" in str(err.value)
    with pytest.raises(CheckpointError, match="is a 'rscovlm' checkpoint; this recipe trains 'rsground_r1'"):
        check_checkpoint_matches(rszoo.create_model("rscovlm-tiny").config.to_json(), ours, "x")
    check_checkpoint_matches(ours.to_json(), ours, "x")  # the same model: fine


def test_resume_auto_prefers_a_newer_preemption_checkpoint(tmp_path):
    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    assert resolve_resume("auto", ckpts) is None
    (ckpts / "step=10.ckpt").write_bytes(b"x")
    (ckpts / "step=200.ckpt").mkdir()  # a sharded checkpoint is a folder
    assert resolve_resume("auto", ckpts) == ckpts / "step=200.ckpt"
    time.sleep(0.01)
    hpc = tmp_path / "hpc_ckpt_1.ckpt"  # Lightning's SIGUSR1 checkpoint, written in the run directory
    hpc.write_bytes(b"x")
    assert resolve_resume("auto", ckpts) == hpc
    assert resolve_resume("false", ckpts) is None
    assert resolve_resume(str(ckpts), ckpts) == ckpts / "step=200.ckpt"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_resume(str(tmp_path / "nope.ckpt"), ckpts)


def test_auto_strategy_picks_ddp_when_a_replica_fits_else_fsdp2(monkeypatch, capsys):
    import types

    import torch
    from lightning.pytorch.strategies import DDPStrategy, ModelParallelStrategy

    from rszoo.recipes import RECIPES_DIR, load_recipe
    from rszoo.training.strategies import build_strategy

    gib = 2**30
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda i: types.SimpleNamespace(total_memory=80 * gib)
    )
    task = types.SimpleNamespace()
    tiny = load_recipe(
        RECIPES_DIR / "rsground_r1" / "tiny_cot_sft.yaml", ["cluster.accelerator=gpu", "cluster.devices=2"]
    )
    assert isinstance(build_strategy(tiny, task), DDPStrategy)
    assert "strategy auto -> ddp" in capsys.readouterr().out
    big = load_recipe(RECIPES_DIR / "rsground_r1" / "cot_sft_3b_8xa800.yaml", ["cluster.strategy=auto"])
    assert isinstance(
        build_strategy(big, task), ModelParallelStrategy
    )  # 16 B/param x 3.75B = 56 GiB before activations
    assert "strategy auto -> fsdp2" in capsys.readouterr().out and task.sharding.activation_checkpointing
    single = load_recipe(RECIPES_DIR / "rsground_r1" / "tiny_cot_sft.yaml")
    assert build_strategy(single, task) == "auto"
