"""FSDP2 (``torch.distributed.fsdp.fully_shard``) for rszoo networks, driven by each network's ``fsdp_units()``.

Every network declares the block classes that form sharding units (vision blocks, decoder layers, DiT blocks ...).
:func:`shard_network` wraps each unit instance with ``fully_shard`` and then the root module, with:

* mixed precision: parameters all-gathered and computed in bf16, gradients reduced in fp32, the sharded fp32
  parameters being the master weights the optimizer updates (``MixedPrecisionPolicy(bf16, reduce fp32)``);
* activation checkpointing on the same units (so the two can never disagree), checked after it is applied;
* optional CPU offload of sharded parameters, gradients and optimizer states;
* ``reshard_after_forward`` (True = ZeRO-3-like, False = ZeRO-2-like: keep gathered parameters for backward);
* HSDP across nodes: given a 2-D mesh ``(replicate, shard)`` the units are sharded inside a node and replicated
  across nodes.

Units must have uniform trainability (all parameters trainable or all frozen); a mixed unit is reported by name,
because it usually means a freezing recipe cuts through a block.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn as nn

__all__ = ["ShardingOptions", "check_uniform_trainability", "full_state_dict", "shard_network"]


@dataclasses.dataclass
class ShardingOptions:
    """How to shard (the recipe's ``cluster.fsdp`` section)."""

    mixed_precision: str = "bf16"  # "bf16" (bf16 compute, fp32 reduce + master weights) or "fp32"
    activation_checkpointing: bool = True
    cpu_offload: bool = False
    reshard_after_forward: bool = True
    hsdp: bool = False  # shard within a node, replicate across nodes (needs a 2-D mesh)

    def mp_policy(self) -> Any:
        from torch.distributed.fsdp import MixedPrecisionPolicy

        if self.mixed_precision == "bf16":
            return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        if self.mixed_precision == "fp32":
            return MixedPrecisionPolicy()
        raise ValueError(
            f"cluster.fsdp.mixed_precision must be 'bf16' or 'fp32', got {self.mixed_precision!r}"
        )


def _units(module: nn.Module, unit_types: set[type[nn.Module]]) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in module.named_modules() if type(m) in unit_types]


def check_uniform_trainability(module: nn.Module, unit_types: set[type[nn.Module]]) -> None:
    """Raise naming every unit whose parameters are partly frozen."""
    mixed = []
    for name, unit in _units(module, unit_types):
        flags = {p.requires_grad for p in unit.parameters()}
        if len(flags) > 1:
            mixed.append(name)
    if mixed:
        raise ValueError(
            f"sharding units with partly frozen parameters: {mixed[:5]}{' ...' if len(mixed) > 5 else ''}; "
            "freeze whole parts (model.freeze.vision_tower / projector / language_model / embeddings)"
        )


def shard_network(
    root: nn.Module, unit_types: set[type[nn.Module]], mesh: Any, options: ShardingOptions
) -> dict[str, int]:
    """Apply activation checkpointing and ``fully_shard`` per unit, then to ``root``. Returns counts for logging."""
    from torch.distributed.fsdp import CPUOffloadPolicy, OffloadPolicy, fully_shard

    check_uniform_trainability(root, unit_types)
    units = _units(root, unit_types)
    if not units:
        raise ValueError(
            f"no sharding units of types {sorted(t.__name__ for t in unit_types)} in {type(root).__name__}"
        )
    if options.activation_checkpointing:
        from torch.distributed._composable import checkpoint

        for _, unit in units:
            checkpoint(unit)
        missing = [name for name, unit in units if not _has_checkpoint(unit)]
        if missing:  # the silent failure mode of wrap-policy mismatches: never let it pass
            raise RuntimeError(f"activation checkpointing was not applied to units {missing[:5]}")
    offload = CPUOffloadPolicy() if options.cpu_offload else OffloadPolicy()
    kwargs = {"mesh": mesh, "mp_policy": options.mp_policy(), "offload_policy": offload}
    for _, unit in units:
        fully_shard(unit, reshard_after_forward=options.reshard_after_forward, **kwargs)
    fully_shard(root, reshard_after_forward=options.reshard_after_forward, **kwargs)
    return {"units": len(units), "checkpointed": len(units) if options.activation_checkpointing else 0}


def _has_checkpoint(module: nn.Module) -> bool:
    from torch.distributed._composable.contract import _get_registry

    registry = _get_registry(module) or {}
    return "checkpoint" in registry


def full_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """The unsharded state dict on CPU (a collective: every rank must call it); plain modules pass through."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    if not any(isinstance(p, _dtensor_type()) for p in module.parameters()):
        return {k: v.detach().cpu() for k, v in module.state_dict().items()}
    return get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def _dtensor_type() -> type:
    from torch.distributed.tensor import DTensor

    return DTensor
