"""Distribution strategies built from a recipe's ``cluster`` section.

``auto`` lets Lightning pick (a single device here); ``ddp`` replicates the model on every device; ``fsdp2`` shards it
per ``fsdp_units()`` with FSDP2 (the default for large models; HSDP across nodes); ``fsdp1`` is Lightning's
FSDPStrategy with the same units (GPUs only: FSDP1 refuses the CPU).
"""

from __future__ import annotations

from typing import Any

from rszoo.registry import STRATEGIES

__all__ = ["build_strategy"]


@STRATEGIES.register("auto", description="Lightning's choice: one device, or DDP when devices > 1")
def _auto(cluster: Any, task: Any) -> Any:
    return "auto"


@STRATEGIES.register(
    "ddp", description="DistributedDataParallel: a full replica per device (gloo on CPU, nccl on GPU)"
)
def _ddp(cluster: Any, task: Any) -> Any:
    from lightning.pytorch.strategies import DDPStrategy

    return DDPStrategy(find_unused_parameters=False)


@STRATEGIES.register(
    "fsdp2",
    description="FSDP2 fully_shard per sharding unit + root (ModelParallelStrategy); HSDP across nodes; DCP checkpoints",
)
def _fsdp2(cluster: Any, task: Any) -> Any:
    from lightning.pytorch.strategies import ModelParallelStrategy

    from rszoo.training.sharding import ShardingOptions

    fsdp = dict(cluster.fsdp)
    hsdp = {"auto": cluster.num_nodes > 1, "true": True, "false": False}[str(fsdp.pop("hsdp")).lower()]
    task.sharding = ShardingOptions(hsdp=hsdp, **fsdp)
    if hsdp:  # mesh (replicate across nodes, shard inside a node); rszoo applies no tensor parallelism
        dp, shard = cluster.num_nodes, cluster.devices
    else:
        dp, shard = cluster.num_nodes * cluster.devices, 1
    return ModelParallelStrategy(
        data_parallel_size=dp, tensor_parallel_size=shard, save_distributed_checkpoint=True
    )


@STRATEGIES.register(
    "fsdp1",
    description="FSDP1 (FSDPStrategy) with wrap and checkpointing policies from fsdp_units(); GPUs only",
)
def _fsdp1(cluster: Any, task: Any) -> Any:
    from lightning.pytorch.strategies import FSDPStrategy

    units = task.sharding_unit_types()
    return FSDPStrategy(
        auto_wrap_policy=units,
        activation_checkpointing_policy=units if cluster.fsdp.activation_checkpointing else None,
        sharding_strategy="HYBRID_SHARD" if cluster.num_nodes > 1 else "FULL_SHARD",
        state_dict_type="sharded",
        cpu_offload=cluster.fsdp.cpu_offload,
        limit_all_gathers=True,
    )


def build_strategy(cluster: Any, task: Any) -> Any:
    """The Lightning strategy for ``cluster.strategy`` (a name in ``rszoo.registry.STRATEGIES``)."""
    return STRATEGIES.get(cluster.strategy)(cluster, task)
