"""Distribution strategies built from a recipe's ``cluster`` section.

``auto`` picks for you: one device as is; several GPUs DDP when the memory planner says a full replica fits on each
GPU, FSDP2 otherwise (the decision is printed); several CPU processes DDP. ``ddp`` replicates the model on every
device; ``fsdp2`` shards it per ``fsdp_units()`` with FSDP2 (HSDP across nodes); ``fsdp1`` is Lightning's
FSDPStrategy with the same units (GPUs only: FSDP1 refuses the CPU).

Every builder takes ``(recipe, task)`` and returns what ``lightning.Trainer(strategy=...)`` accepts.
"""

from __future__ import annotations

from typing import Any

from rszoo.registry import STRATEGIES

__all__ = ["build_strategy"]


@STRATEGIES.register(
    "auto", description="one device as is; on several GPUs DDP if a replica fits, else FSDP2"
)
def _auto(recipe: Any, task: Any) -> Any:
    cluster = recipe.cluster
    if cluster.devices * cluster.num_nodes == 1:
        return "auto"
    if cluster.accelerator not in ("gpu", "cuda"):
        return _ddp(recipe, task)
    import torch
    from omegaconf import OmegaConf

    from rszoo.training.recipe_plan import plan_from_recipe

    as_ddp = OmegaConf.merge(recipe, {"cluster": {"strategy": "ddp"}})
    gpu_memory = torch.cuda.get_device_properties(0).total_memory
    plan = plan_from_recipe(as_ddp, gpu_memory=gpu_memory, advise=False)
    choice = "ddp" if plan.fits else "fsdp2"
    print(
        f"[rszoo] strategy auto -> {choice}: a full replica needs {plan.total / 2**30:.1f} GiB of {gpu_memory / 2**30:.0f} GiB per GPU"
    )
    return STRATEGIES.get(choice)(recipe, task)


@STRATEGIES.register(
    "ddp", description="DistributedDataParallel: a full replica per device (gloo on CPU, nccl on GPU)"
)
def _ddp(recipe: Any, task: Any) -> Any:
    from lightning.pytorch.strategies import DDPStrategy

    return DDPStrategy(find_unused_parameters=False)


@STRATEGIES.register(
    "fsdp2",
    description="FSDP2 fully_shard per sharding unit + root (ModelParallelStrategy); HSDP across nodes; DCP checkpoints",
)
def _fsdp2(recipe: Any, task: Any) -> Any:
    from lightning.pytorch.strategies import ModelParallelStrategy

    from rszoo.training.sharding import ShardingOptions

    cluster = recipe.cluster
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
def _fsdp1(recipe: Any, task: Any) -> Any:
    from lightning.pytorch.strategies import FSDPStrategy

    cluster = recipe.cluster
    units = task.sharding_unit_types()
    return FSDPStrategy(
        auto_wrap_policy=units,
        activation_checkpointing_policy=units if cluster.fsdp.activation_checkpointing else None,
        sharding_strategy="HYBRID_SHARD" if cluster.num_nodes > 1 else "FULL_SHARD",
        state_dict_type="sharded",
        cpu_offload=cluster.fsdp.cpu_offload,
        limit_all_gathers=True,
    )


def build_strategy(recipe: Any, task: Any) -> Any:
    """The Lightning strategy for ``recipe.cluster.strategy`` (a name in ``rszoo.registry.STRATEGIES``)."""
    return STRATEGIES.get(recipe.cluster.strategy)(recipe, task)
