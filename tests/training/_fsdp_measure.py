"""Measure FSDP2 model-state memory per rank on CPU, for the planner's exact check (tests/training/test_planner.py).

Run with ``python -m torch.distributed.run --nproc_per_node 2 tests/training/_fsdp_measure.py`` (gloo), or plainly
with ``python tests/training/_fsdp_measure.py`` for a one-process group. For each configuration (mixed precision,
frozen parts) it builds ``rsground_r1-tiny``, shards it exactly as rszoo does (``shard_network`` per unit, then the
root), runs one AdamW step on a tiny image + text batch, and reports per rank:

* ``*_local_bytes``: the sum over tensors of ``to_local().numel() * element_size`` (parameters, gradients, AdamW
  moments, AdamW step counters);
* ``*_storage_bytes``: the bytes of the distinct storages behind them (what is actually allocated: FSDP2 pads the
  sharded parameter and the reduce-scatter output that gradients view).

Rank 0 prints one JSON line: ``{"world_size": W, "results": [{"config": ..., "ranks": [...]}, ...]}``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Any

import torch
import torch.distributed as dist

# Odd sizes make dim 0 of the embeddings, MLP projections and their biases indivisible by 2 (and 3), so the padded
# allocation and the uneven rank-local shards both show up.
ODD_SIZES = {
    "text_config": {"vocab_size": 1031, "intermediate_size": 131},
    "vision_config": {"intermediate_size": 67},
}
CONFIGS = [
    {"mixed_precision": "fp32", "freeze": {}, "backbone_overrides": ODD_SIZES},
    {"mixed_precision": "bf16", "freeze": {"vision_tower": True}, "backbone_overrides": ODD_SIZES},
    {
        "mixed_precision": "bf16",
        "freeze": {"language_model": True, "projector": True},
        "backbone_overrides": {},
    },
]


def _local(t: torch.Tensor) -> torch.Tensor:
    return t.to_local() if hasattr(t, "to_local") else t


def _sizes(tensors: list[torch.Tensor]) -> tuple[int, int]:
    """(sum of rank-local bytes, bytes of the distinct storages)."""
    local = storage = 0
    seen: set[int] = set()
    for t in tensors:
        t = _local(t)
        local += t.numel() * t.element_size()
        st = t.untyped_storage()
        if st.data_ptr() not in seen:
            seen.add(st.data_ptr())
            storage += st.nbytes()
    return local, storage


def _batch(network: Any) -> dict[str, torch.Tensor]:
    import numpy as np
    from PIL import Image

    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (56, 84, 3), dtype=np.uint8))
    conversation = [
        {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "where?"}]},
        {"role": "assistant", "content": "[1, 2, 3, 4]"},
    ]
    return dict(network.encode([conversation], [[image]], add_generation_prompt=False, padding_side="right"))


def measure(config: dict[str, Any], mesh: Any) -> dict[str, int]:
    """One configuration on this rank: shard, step once, measure."""
    import rszoo
    from rszoo.training.sharding import ShardingOptions, shard_network
    from rszoo.training.task import freeze_parts

    torch.manual_seed(0)
    network = rszoo.create_model("rsground_r1-tiny", backbone_overrides=config["backbone_overrides"])
    freeze_parts(network, config["freeze"])
    options = ShardingOptions(mixed_precision=config["mixed_precision"], activation_checkpointing=False)
    shard_network(network.sharding_root(), network.fsdp_units(), mesh, options)
    trainable = [p for p in network.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-3, weight_decay=0.01)
    batch = _batch(network)
    logits = network(**batch, use_cache=False).logits
    loss = torch.nn.functional.cross_entropy(logits[0, :-1].float(), batch["input_ids"][0, 1:])
    loss.backward()
    optimizer.step()
    params = list(network.parameters())
    grads = [p.grad for p in params if p.grad is not None]
    moments = [v for s in optimizer.state.values() for k, v in s.items() if k != "step"]
    steps = [v for s in optimizer.state.values() for k, v in s.items() if k == "step"]
    out: dict[str, int] = {}
    for name, tensors in (("param", params), ("grad", grads), ("moment", moments), ("step", steps)):
        out[f"{name}_local_bytes"], out[f"{name}_storage_bytes"] = _sizes(tensors)
    out["params_with_grad"] = len(grads)
    out["trainable_tensors"] = len(trainable)
    return out


def main() -> int:
    launched = "RANK" in os.environ
    if not launched:  # a one-process group, so the same code path runs without a launcher
        store = dist.FileStore(os.path.join(tempfile.mkdtemp(), "store"), 1)
        dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    else:
        dist.init_process_group("gloo")
    from torch.distributed.device_mesh import init_device_mesh

    world = dist.get_world_size()
    mesh = init_device_mesh("cpu", (world,))
    results = []
    for config in CONFIGS:
        mine = measure(config, mesh)
        ranks: list[Any] = [None] * world
        dist.all_gather_object(ranks, mine)
        results.append({"config": config, "ranks": ranks})
    if dist.get_rank() == 0:
        print(json.dumps({"world_size": world, "results": results}), flush=True)
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
