"""RSGround-R1 data preparation from a grounding JSONL (e.g. the synthetic world's ``grounding.jsonl``).

Splits records into train/val **by image** (no image appears in both), and writes the CoT-SFT messages for Stage 1
with the position-aware reasoning writer, boxes expressed in the model's resized-input pixels.

Example:
    >>> import tempfile
    >>> from rszoo.data.synth import write_dataset
    >>> root = tempfile.mkdtemp()
    >>> _ = write_dataset(root, num_scenes=4, seed=0, size=224)  # the manifest
    >>> paths = prepare_grounding_data(root)
    >>> sorted(paths)
    ['cot_sft', 'grounding_train', 'grounding_val', 'root']
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

__all__ = ["prepare_grounding_data"]


def prepare_grounding_data(
    root: str | Path,
    source: str = "grounding.jsonl",
    val_fraction: float = 0.2,
    min_pixels: int = 56 * 56,
    max_pixels: int = 448 * 448,
    factor: int = 28,
    seed: int = 0,
) -> dict[str, Path]:
    """Write ``grounding_train.jsonl``, ``grounding_val.jsonl`` and ``cot_sft.jsonl`` next to ``source``.

    Args:
        root: the data folder holding ``source`` (image paths in it are relative to this folder).
        val_fraction: share of *images* held out for validation.
        min_pixels / max_pixels / factor: the model's smart_resize settings; CoT answers are written in its input
            pixels, so they must match the model that trains on them.
        seed: the split and phrasing seed.

    Returns:
        Paths by name: ``root``, ``grounding_train``, ``grounding_val``, ``cot_sft``.
    """
    from rszoo.data.cot import build_cot_sft
    from rszoo.data.grounding import load_grounding_jsonl
    from rszoo.data.records import write_jsonl

    root = Path(root)
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    records, report = load_grounding_jsonl(root / source, resolve_images=False)
    images = sorted({r.image for r in records})
    if len(images) < 2:
        raise ValueError(
            f"{root / source}: need records on at least 2 images to split train/val ({report.summary()})"
        )
    rng = random.Random(seed)
    shuffled = images[:]
    rng.shuffle(shuffled)
    n_val = max(1, round(len(images) * val_fraction))
    val_images = set(shuffled[:n_val])
    train = [r for r in records if r.image not in val_images]
    val = [r for r in records if r.image in val_images]
    paths = {
        "root": root,
        "grounding_train": root / "grounding_train.jsonl",
        "grounding_val": root / "grounding_val.jsonl",
        "cot_sft": root / "cot_sft.jsonl",
    }
    write_jsonl(paths["grounding_train"], (r.to_dict() for r in train))
    write_jsonl(paths["grounding_val"], (r.to_dict() for r in val))
    resize: dict[str, Any] = {"factor": factor, "min_pixels": min_pixels, "max_pixels": max_pixels}
    write_jsonl(paths["cot_sft"], build_cot_sft(train, seed=seed, **resize))
    return paths
