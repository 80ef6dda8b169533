"""The memory planner: model states exactly equal to measured FSDP2 tensors (2 ranks, gloo) and to an unsharded run,
hand-computed sharding of a toy network, the activation inventory against autograd's saved tensors, sanity of the
plan, the published parameter counts, and the ``rszoo plan`` exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

import rszoo
from rszoo.cli.main import main
from rszoo.training.planner import (
    _fsdp_buffers,
    local_shard_numel,
    model_states,
    padded_shard_numel,
    parse_memory,
    plan_memory,
    resolve_dtypes,
    shard_rows,
    summarize_network,
)

REPO = Path(__file__).resolve().parents[2]
MEASURE = REPO / "tests" / "training" / "_fsdp_measure.py"
MEASURED_TEST = "test_fsdp2_states_equal_measured_tensors_on_two_ranks"


@pytest.fixture(scope="module", autouse=True)
def measurement(request):
    """Start the 2-rank FSDP2 measurement at once (it takes ~30 s), so the other tests run meanwhile."""
    wanted = any(item.name == MEASURED_TEST for item in request.session.items)
    proc = None
    if wanted:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(MEASURE)]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    yield proc
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def summary_3b():
    return summarize_network("rsground_r1-3b")


# -- sharding arithmetic ------------------------------------------------------------------------------------------------
def test_shard_rows_follow_torch_chunk():
    for dim0 in range(1, 13):
        for shards in range(1, 6):
            chunks = [c.numel() for c in torch.chunk(torch.arange(dim0), shards)]
            expected = chunks + [0] * (shards - len(chunks))  # FSDP2 pads missing chunks with empty ones
            assert [shard_rows(dim0, shards, r) for r in range(shards)] == expected, (dim0, shards)
            assert padded_shard_numel((dim0, 3), shards) == 3 * chunks[0]  # chunk 0 is always the padded size


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(5, 3)  # weight (3, 5), bias (3,)
        self.fc2 = nn.Linear(3, 7)  # weight (7, 3), bias (7,)


class _Toy(nn.Module):
    """2 unit blocks + root embedding (10, 4) and head (6, 4): 40 + 2 * 46 + 24 = 156 parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.blocks = nn.ModuleList([_Block(), _Block()])
        self.head = nn.Linear(4, 6, bias=False)

    def fsdp_units(self) -> set[type[nn.Module]]:
        return {_Block}

    def sharding_root(self) -> nn.Module:
        return self

    def freeze_groups(self) -> dict[str, list[nn.Module]]:
        return {"blocks": list(self.blocks), "embeddings": [self.embed, self.head]}


def test_toy_network_sharding_by_hand():
    summary = summarize_network(_Toy())
    assert summary.num_parameters == 156
    assert {r.name: r.group for r in summary.records}["blocks.1.fc2.bias"] == "blocks.1"
    assert {r.name: r.group for r in summary.records}["head.weight"] == ""
    # allocated per rank = sum of ceil(dim0 / S) * rest; worked out by hand:
    #   S=2: embed 5*4 + 2 x (fc1 2*5 + 2 + fc2 4*3 + 4) + head 3*4 = 20 + 56 + 12 = 88
    #   S=3: embed 4*4 + 2 x (1*5 + 1 + 3*3 + 3) + head 2*4 = 16 + 36 + 8 = 60
    for shards, allocated in ((1, 156), (2, 88), (3, 60)):
        states = model_states(summary, shard_size=shards)
        assert states.parameter_bytes == 4 * allocated
        assert states.gradient_bytes == 4 * allocated
        assert states.optimizer_bytes == 2 * 4 * allocated  # rank 0 owns full chunks: local == padded
        assert states.optimizer_step_bytes == 4 * 10  # one fp32 step per trainable tensor
    # rank-local (uneven) sizes: S=2 rank 1: embed 5 rows, fc1.w 1, fc1.b 1, fc2.w 3, fc2.b 3, head 3 rows
    assert model_states(summary, shard_size=2, rank=1).parameter_local_numel == 20 + 2 * (5 + 1 + 9 + 3) + 12
    # S=3 rank 2: embed rows 8-9, fc1 1 row, fc2 row 6, head rows 4-5 -> 8 + 2 x (5 + 1 + 3 + 1) + 8 = 36
    rank2 = model_states(summary, shard_size=3, rank=2)
    assert rank2.parameter_local_numel == 36 and rank2.parameter_bytes == 4 * 60  # storage stays padded
    assert sum(model_states(summary, shard_size=3, rank=r).parameter_local_numel for r in range(3)) == 156
    # frozen blocks: gradients / states only for embed + head: S=3 padded 16 + 8; rank 2 local 8 + 8
    frozen = model_states(summary, shard_size=3, freeze={"blocks": True})
    assert (frozen.parameter_bytes, frozen.gradient_bytes, frozen.optimizer_bytes) == (240, 96, 192)
    assert model_states(summary, shard_size=3, rank=2, freeze={"blocks": True}).optimizer_bytes == 2 * 4 * 16
    assert frozen.optimizer_step_bytes == 8
    # FSDP working set (bf16 gather, fp32 reduce), S=3: root unsharded 3 x (16 + 8) = 72 -> 144 B, 3 units of
    # 3 x 18 = 54 -> 324 B, root grads 144 B, one unit's bf16 grads + fp32 reduce-scatter input 54 x 6 = 324 B
    trainable = {r.name: True for r in summary.records}
    dtypes = resolve_dtypes("fsdp2", "bf16")
    assert _fsdp_buffers(summary, trainable, 3, dtypes, reshard_after_forward=True) == 144 + 324 + 144 + 324


def test_local_numel_of_zero_rows_and_scalars():
    assert local_shard_numel((2, 5), 4, 3) == 0  # ranks beyond the data hold empty shards
    assert padded_shard_numel((), 8) == 1


# -- exactness against real tensors ------------------------------------------------------------------------------------
def _tiny_batch(network, batch: int = 1):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (84, 112, 3), dtype=np.uint8))
    texts = ["where is the ship?", "where is the big ship in the harbour, next to the crane?"][:batch]
    conversations = [
        [
            {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": t}]},
            {"role": "assistant", "content": "[1, 2, 3, 4]"},
        ]
        for t in texts
    ]
    return dict(
        network.encode(conversations, [[image]] * batch, add_generation_prompt=False, padding_side="right")
    )


ODD = {
    "text_config": {"vocab_size": 1031, "intermediate_size": 131},
    "vision_config": {"intermediate_size": 67},
}


@pytest.mark.parametrize("freeze", [{}, {"vision_tower": True}])
def test_world_size_one_equals_unsharded_training(freeze):
    torch.manual_seed(0)
    network = rszoo.create_model("rsground_r1-tiny", backbone_overrides=ODD)
    from rszoo.training.task import freeze_parts

    freeze_parts(network, freeze)
    optimizer = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=1e-3)
    batch = _tiny_batch(network)
    logits = network(**batch, use_cache=False).logits
    torch.nn.functional.cross_entropy(logits[0, :-1], batch["input_ids"][0, 1:]).backward()
    optimizer.step()
    params = list(network.parameters())
    states = [v for s in optimizer.state.values() for v in s.values()]
    planned = model_states(summarize_network(network), shard_size=1, freeze=freeze)
    assert planned.parameter_bytes == sum(p.numel() * p.element_size() for p in params)
    assert planned.gradient_bytes == sum(p.grad.numel() * 4 for p in params if p.grad is not None)
    assert planned.optimizer_bytes + planned.optimizer_step_bytes == sum(
        t.numel() * t.element_size() for t in states
    )


# -- activation inventory against autograd's saved tensors -------------------------------------------------------------
def _saved_bytes(hf: nn.Module, run) -> int:
    """Bytes of the distinct non-parameter storages autograd saves while ``run()`` builds the graph."""
    params = {p.untyped_storage().data_ptr() for p in hf.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run()
    return sum(seen.values())


def _vlm(backbone: str):
    from rszoo.models.vlm.config import VLMConfig
    from rszoo.models.vlm.model import VLMModel

    torch.manual_seed(0)
    network = VLMModel(VLMConfig(name=f"{backbone}-probe", backbone=backbone))
    summary = summarize_network(network)
    network.backbone.hf_model.to(torch.bfloat16).train()
    return network, summary


@pytest.mark.parametrize(
    ("backbone", "batch", "tolerance"),
    [("qwen2_5_vl-tiny", 1, 0.005), ("qwen3_vl-tiny", 1, 0.01), ("qwen2_5_vl-tiny", 2, 0.03)],
)
def test_sft_activation_inventory_matches_saved_tensors(backbone, batch, tolerance):
    network, summary = _vlm(backbone)
    hf = network.backbone.hf_model
    inputs = _tiny_batch(network, batch)
    inputs["pixel_values"] = inputs["pixel_values"].to(torch.bfloat16)

    def sft_loss() -> None:
        logits = hf(**inputs, use_cache=False).logits[:, :-1].float()
        torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), inputs["input_ids"][:, 1:].reshape(-1)
        )

    measured = _saved_bytes(hf, sft_loss)
    _, grid_h, grid_w = inputs["image_grid_thw"][0].tolist()
    plan = plan_memory(
        summary, micro_batch=batch, seq_len=inputs["input_ids"].shape[1], vision_tokens=grid_h * grid_w // 4
    )
    planned = plan.settings["activations_saved_bytes"] + plan.settings["logits_saved_bytes"]
    assert abs(planned / measured - 1) < tolerance, (planned, measured)


@pytest.mark.parametrize("backbone", ["qwen2_5_vl-tiny", "qwen3_vl-tiny"])
def test_grpo_activation_inventory_matches_saved_tensors(backbone):
    from rszoo.training.rollout import completion_logps

    network, summary = _vlm(backbone)
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (84, 112, 3), dtype=np.uint8))
    prompt = [
        {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "ship?"}]}
    ]
    inputs = dict(network.encode([prompt], [[image]], add_generation_prompt=True))
    inputs["pixel_values"] = inputs["pixel_values"].to(torch.bfloat16)
    completions = torch.randint(0, 800, (4, 10), generator=torch.Generator().manual_seed(0))
    measured = _saved_bytes(
        network.backbone.hf_model, lambda: completion_logps(network.backbone, inputs, completions)
    )
    _, grid_h, grid_w = inputs["image_grid_thw"][0].tolist()
    visual = grid_h * grid_w // 4
    plan = plan_memory(
        summary, stage="grpo", num_generations=4, completion_len=10, vision_tokens=visual,
        prompt_text_tokens=inputs["input_ids"].shape[1] - visual,
    )  # fmt: skip
    planned = plan.settings["activations_saved_bytes"] + plan.settings["logits_saved_bytes"]
    assert abs(planned / measured - 1) < 0.015, (planned, measured)


# -- the plan ----------------------------------------------------------------------------------------------------------
def test_parameter_totals_equal_published_counts(summary_3b):
    from rszoo.backbones.qwen_vl import backbone_preset
    from rszoo.config import ModelConfig

    assert summary_3b.num_parameters == 3_754_622_976
    assert summarize_network("rsground_r1-7b").num_parameters == 8_292_166_656
    for name in [n for n in rszoo.list_models() if not n.endswith("-tiny")]:
        published = backbone_preset(ModelConfig.from_name(name).backbone)["published_params"]
        assert summarize_network(name).num_parameters == published, name


def test_sixteen_bytes_per_parameter_unsharded_and_sharding_divides(summary_3b):
    n = summary_3b.num_parameters
    fp32 = resolve_dtypes("fsdp2", "bf16", "32-true")
    single = model_states(summary_3b, shard_size=1, dtypes=fp32)
    assert single.parameter_bytes + single.gradient_bytes + single.optimizer_bytes == 16 * n
    previous = single
    for shards in (2, 4, 8, 16):
        states = model_states(summary_3b, shard_size=shards, dtypes=fp32)
        assert states.parameter_bytes < previous.parameter_bytes
        # padding adds at most one row per tensor: 4 n / S <= bytes < 4 (n / S + sum of row sizes)
        rows = sum(r.numel // (r.shape[0] if r.shape else 1) for r in summary_3b.records)
        assert 4 * n / shards <= states.parameter_bytes < 4 * (n / shards + rows)
        previous = states
    half = model_states(summary_3b, shard_size=8, dtypes=resolve_dtypes("fsdp2", "bf16", "bf16-true"))
    assert half.parameter_bytes * 2 == model_states(summary_3b, shard_size=8, dtypes=fp32).parameter_bytes


def test_frozen_vision_tower_removes_its_gradients_and_states(summary_3b):
    from rszoo.training.task import freeze_parts

    with torch.device("meta"):
        counts = freeze_parts(rszoo.create_model("rsground_r1-3b"), {})  # independent count via the modules
    n = summary_3b.num_parameters
    frozen = model_states(summary_3b, shard_size=1, freeze={"vision_tower": True})
    assert frozen.parameter_bytes == 4 * n
    assert frozen.gradient_bytes == 4 * (n - counts["vision_tower"])
    assert frozen.optimizer_bytes == 8 * (n - counts["vision_tower"])
    full = plan_memory(summary_3b, world_size=8, image_size=(800, 800))
    part = plan_memory(summary_3b, world_size=8, image_size=(800, 800), freeze={"vision_tower": True})
    assert (
        part.gpu["gradients"] < full.gpu["gradients"]
        and part.gpu["optimizer_states"] < full.gpu["optimizer_states"]
    )
    assert part.gpu["parameters"] == full.gpu["parameters"]


def test_plan_sanity(summary_3b):
    base = dict(world_size=8, micro_batch=2, seq_len=4096, image_size=(800, 800))
    on = plan_memory(summary_3b, **base, activation_checkpointing=True)
    off = plan_memory(summary_3b, **base, activation_checkpointing=False)
    assert on.activations_checkpointed < on.activations_full == off.activations_full
    assert on.total < off.total
    # more GPUs shrink every sharded term and the FSDP buffers never grow
    small = plan_memory(summary_3b, **{**base, "world_size": 4})
    for key in ("parameters", "gradients", "optimizer_states"):
        assert on.gpu[key] < small.gpu[key]
    assert on.gpu["comm_buffers"] <= small.gpu["comm_buffers"]
    # logits: fp32 log-softmax of B x (L - 1) x vocab is kept for backward
    assert on.settings["logits_saved_bytes"] == 4 * 151936 * 2 * 4095
    assert on.settings["visual_tokens_per_image"] == 29 * 29  # 800 px -> 812 = 29 x 28
    # HSDP over 2 nodes of 8 holds what full sharding over 8 holds; full sharding over 16 holds less
    hsdp = plan_memory(summary_3b, **{**base, "world_size": 16}, devices_per_node=8, hsdp=True)
    full16 = plan_memory(summary_3b, **{**base, "world_size": 16}, devices_per_node=8, hsdp=False)
    assert hsdp.gpu["parameters"] == on.gpu["parameters"] and full16.gpu["parameters"] < on.gpu["parameters"]
    # CPU offload moves the sharded states to the host
    offload = plan_memory(summary_3b, **base, cpu_offload=True)
    assert (
        offload.gpu["optimizer_states"] == 0
        and offload.host["optimizer_states"] == on.gpu["optimizer_states"]
    )
    # GRPO with beta > 0 adds a frozen reference copy of the parameters
    grpo = plan_memory(summary_3b, world_size=8, stage="grpo", reference_model=True, image_size=(800, 800))
    assert grpo.gpu["reference_model"] == on.gpu["parameters"]
    assert "2 per GPU x 1 accumulation x 8 GPUs = 16 samples" in on.settings["batch_arithmetic"]


def test_bad_arguments_name_the_problem(summary_3b):
    with pytest.raises(ValueError, match="freeze: unknown part"):
        plan_memory(summary_3b, freeze={"vision": True})
    with pytest.raises(ValueError, match="cluster.strategy"):
        plan_memory(summary_3b, strategy="zero3")
    with pytest.raises(ValueError, match="multiple of devices_per_node"):
        plan_memory(summary_3b, world_size=12, devices_per_node=8)
    with pytest.raises(ValueError, match="micro_batch"):
        plan_memory(summary_3b, micro_batch=0)


def test_parse_memory():
    assert parse_memory("80GiB") == 80 * 2**30 == parse_memory("81920MiB") == parse_memory("80 gib")
    assert parse_memory("80GB") == 80 * 10**9
    assert parse_memory("1.5TiB") == int(1.5 * 2**40)
    for bad in ("80", "80XB", "GiB", "0GiB"):
        with pytest.raises(ValueError, match="memory size"):
            parse_memory(bad)


# -- the command line --------------------------------------------------------------------------------------------------
SFT = "recipes/rsground_r1/tiny_cot_sft.yaml"


def test_cli_fits_and_prints_the_table(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["plan", SFT, "--gpus", "1", "--gpu-mem", "24GiB"]) == 0
    out = capsys.readouterr().out
    for row in (
        "parameters",
        "gradients",
        "optimizer states",
        "checkpointing ON",
        "checkpointing OFF",
        "logits",
    ):
        assert row in out
    assert "verdict: FITS" in out and "4 per GPU x 1 accumulation x 1 GPUs = 4 samples" in out


def test_cli_follows_the_recipe_global_batch(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    recipe = (
        "recipes/rsground_r1/cot_sft_3b_8xa800.yaml"  # 1 x 8 A800, batch 2, global batch 64, vision frozen
    )
    assert main(["plan", recipe, "--image-size", "800x800"]) == 0
    out = capsys.readouterr().out
    assert "2 per GPU x 4 accumulation x 8 GPUs = 64 samples" in out and "(frozen: vision_tower)" in out
    assert main(["plan", recipe, "--gpus", "3"]) == 2  # 64 is not reachable on 3 GPUs, as `rszoo train` says
    assert "data.global_batch_size=64" in capsys.readouterr().err


def test_cli_does_not_fit_names_the_dominating_term(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    args = [
        "plan",
        SFT,
        "--gpus",
        "1",
        "--gpu-mem",
        "24GiB",
        "model.name=rsground_r1-7b",
        "data.batch_size=64",
    ]
    assert main([*args, "stage_args.max_length=4096"]) == 1
    out = capsys.readouterr().out
    assert "DOES NOT FIT" in out and "dominating term: activations" in out
    assert "data.batch_size=1 trainer.accumulate_grad_batches=64" in out  # a remedy keeping the global batch
    assert main([*args, "--json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["fits"] is False and payload["dominant"] == "activations"


def test_cli_all_presets_and_bad_input(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    code = main(
        ["plan", SFT, "--gpus", "8", "cluster.strategy=fsdp2", "--image-size", "800x800", "--all-presets"]
    )
    out = capsys.readouterr().out
    assert code == 0 and "rsground_r1-3b" in out and "rsground_r1-7b" in out and "tiny" not in out
    assert main(["plan", SFT, "--gpu-mem", "24"]) == 2
    assert main(["plan", SFT, "model.freeze.vision=true"]) == 2
    assert main(["plan", SFT, "--image-size", "800"]) == 2
    assert "WIDTHxHEIGHT" in capsys.readouterr().err


# -- last: collect the 2-rank measurement started by the fixture --------------------------------------------------------
def test_fsdp2_states_equal_measured_tensors_on_two_ranks(measurement):
    out, err = measurement.communicate(timeout=900)
    assert measurement.returncode == 0, err[-3000:]
    report = json.loads(out.strip().splitlines()[-1])
    assert report["world_size"] == 2
    uneven_seen = False
    for result in report["results"]:
        config = result["config"]
        with torch.device("meta"):
            network = rszoo.create_model("rsground_r1-tiny", backbone_overrides=config["backbone_overrides"])
        summary = summarize_network(network)
        dtypes = resolve_dtypes("fsdp2", config["mixed_precision"], "32-true")
        for rank, measured in enumerate(result["ranks"]):
            planned = model_states(summary, shard_size=2, rank=rank, dtypes=dtypes, freeze=config["freeze"])
            assert measured["param_local_bytes"] == 4 * planned.parameter_local_numel
            assert measured["param_storage_bytes"] == planned.parameter_bytes
            assert measured["grad_local_bytes"] == 4 * planned.gradient_local_numel
            assert measured["grad_storage_bytes"] == planned.gradient_bytes
            assert (
                measured["moment_local_bytes"] == measured["moment_storage_bytes"] == planned.optimizer_bytes
            )
            assert measured["step_local_bytes"] == planned.optimizer_step_bytes
            uneven_seen |= measured["param_local_bytes"] < measured["param_storage_bytes"]
        # the per-GPU figure the planner reports is rank 0's, the largest
        assert (
            max(r["param_storage_bytes"] for r in result["ranks"])
            == model_states(summary, shard_size=2, dtypes=dtypes).parameter_bytes
        )
    assert uneven_seen  # the odd sizes exercised padding: a rank's local shard smaller than its allocation
