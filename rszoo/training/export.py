"""Turn a Lightning training checkpoint into a ``save_pretrained`` model folder.

Checkpoints carry the network's config (``rszoo_network_config``) and the task's name, so export needs nothing but the
file (or, for sharded FSDP2 checkpoints, the DCP folder, consolidated here in one process): the network is rebuilt from the config, the weights are loaded strictly, and the run's resolved recipe (when the
checkpoint sits in a run directory) goes into the folder and its model card.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["export_checkpoint", "load_network_from_checkpoint"]


def _resolve(checkpoint: Path) -> Path:
    from rszoo.training.callbacks import latest_checkpoint

    if checkpoint.is_dir():
        folder = checkpoint / "checkpoints" if (checkpoint / "checkpoints").is_dir() else checkpoint
        found = latest_checkpoint(folder)
        if found is None:
            raise FileNotFoundError(f"no step=N.ckpt checkpoint in {folder}")
        return found
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint not found: {checkpoint}")
    return checkpoint


def load_network_from_checkpoint(checkpoint: Path) -> tuple[object, Path]:
    """The trained network of a Lightning checkpoint (loaded with ``weights_only=True``) and the resolved path."""
    import torch

    from rszoo.config import ModelConfig
    from rszoo.models.base import CheckpointError, check_keys

    path = _resolve(Path(checkpoint))
    try:
        if path.is_dir():  # a sharded (DCP) checkpoint: consolidate in this one process
            from lightning.fabric.utilities.load import _load_distributed_checkpoint

            state = _load_distributed_checkpoint(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt zip, truncated file, foreign pickle: all unusable
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from None
    if "rszoo_network_config" not in state:
        raise CheckpointError(f"{path} was not written by rszoo training (no rszoo_network_config)")
    import json

    payload = json.loads(state["rszoo_network_config"])
    config_cls = ModelConfig.family_class(payload["family"], source=str(path))
    config = config_cls.from_dict(payload["config"], source=str(path))
    network = config.network_class()(config)
    prefix = "network."
    weights = {k[len(prefix) :]: v for k, v in state["state_dict"].items() if k.startswith(prefix)}
    result = network.load_state_dict(weights, strict=False)
    check_keys(list(result.missing_keys), list(result.unexpected_keys), (), (), str(path))
    return network, path


def export_checkpoint(checkpoint: Path, out: Path, max_shard_size: str = "5GB") -> Path:
    """Write ``out`` (save_pretrained format) from a checkpoint file or a run directory."""
    network, path = load_network_from_checkpoint(checkpoint)
    run_dir = path.parent.parent
    recipe = (run_dir / "recipe.yaml").read_text() if (run_dir / "recipe.yaml").is_file() else None
    return network.save_pretrained(out, recipe=recipe, max_shard_size=max_shard_size)
