"""Cluster arithmetic and checks done before anything is launched: global batch, device counts, resume compatibility."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["batch_arithmetic", "check_checkpoint_matches", "check_devices"]


def batch_arithmetic(
    batch_size: int, accumulate: int, world_size: int, global_batch_size: int | None
) -> tuple[int, str]:
    """The accumulation steps giving ``global_batch_size`` and the arithmetic as text.

    ``global = per-device batch x accumulation x world size``. With ``global_batch_size`` set, accumulation is derived
    from it; a world size / batch that cannot reach it exactly is an error listing the nearest valid settings.

    Example:
        >>> batch_arithmetic(2, 1, 8, 64)
        (4, 'global batch 64 = 2 per device x 4 accumulation steps x 8 devices')
    """
    if batch_size < 1 or world_size < 1 or accumulate < 1:
        raise ValueError("data.batch_size, trainer.accumulate_grad_batches and the world size must be >= 1")
    if global_batch_size is not None:
        per_step = batch_size * world_size
        if global_batch_size % per_step:
            lower = (global_batch_size // per_step) * per_step
            options = sorted(
                {b for b in range(1, global_batch_size + 1) if global_batch_size % (b * world_size) == 0}
            )
            hint = (
                f"per-device batch sizes that work on {world_size} devices: {options}"
                if options
                else (f"no per-device batch divides it on {world_size} devices")
            )
            raise ValueError(
                f"data.global_batch_size={global_batch_size} is not a multiple of data.batch_size x world size = "
                f"{batch_size} x {world_size} = {per_step}; nearest reachable global batches: "
                f"{[g for g in (lower, lower + per_step) if g > 0]}; {hint}"
            )
        accumulate = global_batch_size // per_step
    total = batch_size * accumulate * world_size
    text = (
        f"global batch {total} = {batch_size} per device x {accumulate} accumulation step"
        f"{'s' if accumulate != 1 else ''} x {world_size} device{'s' if world_size != 1 else ''}"
    )
    return accumulate, text


def check_devices(accelerator: str, devices: int, num_nodes: int) -> None:
    """Fail early, naming the setting, when a recipe asks for more devices than this node has."""
    if devices < 1 or num_nodes < 1:
        raise ValueError(f"cluster.devices and cluster.num_nodes must be >= 1, got {devices} and {num_nodes}")
    if accelerator in ("gpu", "cuda"):
        import torch

        available = torch.cuda.device_count()
        if devices > available:
            raise ValueError(
                f"cluster.devices={devices} GPUs requested but this node has {available}; set cluster.devices<={available} "
                "(per node), or run on a GPU node (cluster.accelerator=cpu for a CPU smoke run)"
            )
    elif accelerator == "cpu":
        cores = os.cpu_count() or 1
        if devices > cores:
            raise ValueError(
                f"cluster.devices={devices} CPU processes requested but this machine has {cores} cores; "
                f"set cluster.devices<={cores}"
            )


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if key in ("transformers_version", "_name_or_path", "architectures", "dtype", "torch_dtype"):
                continue
            out += _diff(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [f"{prefix[:-1]}: checkpoint {a!r}, recipe {b!r}"]


def check_checkpoint_matches(checkpoint_network_config: str | None, network_config: Any, path: Any) -> None:
    """Raise naming the differing config keys when resuming from a checkpoint of another model."""
    import json

    from rszoo.models.base import CheckpointError

    if checkpoint_network_config is None:
        return
    saved = json.loads(checkpoint_network_config)
    if saved.get("family") != network_config.family:
        raise CheckpointError(
            f"{path} is a {saved.get('family')!r} checkpoint; this recipe trains {network_config.family!r} models"
        )
    differences = _diff(saved["config"].get("hf_config", {}), network_config.to_dict().get("hf_config", {}))
    if differences:
        raise CheckpointError(
            f"{path} was trained with a different architecture: {'; '.join(differences[:8])}"
            f"{' ...' if len(differences) > 8 else ''}. Resume with the recipe that made it, or set checkpoint.resume=false."
        )
