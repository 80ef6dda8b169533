"""Data sets, a resumable sampler and the LightningDataModule every training stage uses.

Samples stay plain dicts until the task's ``collate`` (which owns the processor) turns a list of them into tensors, so
the same data module serves chat SFT and GRPO prompts.

Resumption: :class:`ResumableSampler` draws one permutation per epoch from ``(seed, epoch)`` and can skip the samples
already consumed, so a run killed mid-epoch and resumed sees exactly the batches it would have seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from rszoo.data.records import check_messages, iter_jsonl
from rszoo.data.sampling import ResumablePosition

__all__ = ["JsonlDataset", "ResumableSampler", "TaskDataModule", "load_messages_jsonl"]


def load_messages_jsonl(path: str | Path, max_samples: int | None = None) -> list[dict[str, Any]]:
    """Read an OpenAI-messages JSONL file; image paths become absolute; errors name the file and line."""
    path = Path(path)
    rows = []
    for lineno, obj in iter_jsonl(path):
        where = f"{path}:{lineno}"
        if "messages" not in obj:
            raise ValueError(f"{where}: missing 'messages' (the format is documented in rszoo.data.records)")
        rows.append(
            {
                "id": str(obj.get("id", f"{path.stem}-{lineno}")),
                "task": obj.get("task", ""),
                "messages": check_messages(obj["messages"], path.parent, where),
            }
        )
        if max_samples is not None and len(rows) >= max_samples:
            break
    if not rows:
        raise ValueError(f"{path}: no samples")
    return rows


class JsonlDataset(Dataset):
    """A list of plain-dict samples (already validated by a loader)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.rows[index]


class ResumableSampler(ResumablePosition, Sampler[int]):
    """Shuffles with ``(seed, epoch)``; ``state_dict`` records how many samples of the epoch were consumed.

    Lightning calls ``set_epoch`` at each epoch start. On resume, ``load_state_dict`` makes the next epoch iteration
    skip the consumed samples. In distributed runs each rank takes every ``num_replicas``-th index of the permutation.
    """

    def __init__(
        self,
        size: int,
        seed: int = 0,
        shuffle: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
        batch_size: int = 1,
        repeat_batches: int = 1,
    ) -> None:
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.num_replicas, self.rank = num_replicas, rank
        self.batch_size, self.repeat_batches = batch_size, repeat_batches
        self.epoch = 0
        self._skip = 0

    def _order(self) -> list[int]:
        if not self.shuffle:
            order = list(range(self.size))
        else:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.size, generator=generator).tolist()
        # pad so every rank gets the same number of samples (as DistributedSampler does)
        per_rank = -(-self.size // self.num_replicas)
        order += order[: per_rank * self.num_replicas - len(order)]
        mine = order[self.rank :: self.num_replicas]
        if self.repeat_batches > 1:  # each batch is seen repeat_batches times in a row (GRPO num_iterations)
            batches = [mine[i : i + self.batch_size] for i in range(0, len(mine), self.batch_size)]
            mine = [i for b in batches for _ in range(self.repeat_batches) for i in b]
        return mine

    def __iter__(self) -> Iterator[int]:
        order = self._order()
        skip, self._skip = self._skip, 0
        return iter(order[skip:])

    def __len__(self) -> int:
        return -(-self.size // self.num_replicas) * self.repeat_batches


class TaskDataModule(L.LightningDataModule):
    """Train/val data sets of plain dicts, batched by the task's ``collate`` (which owns the processor).

    Args:
        train_rows / val_rows: samples (a list of dicts, or any map-style ``Dataset`` of dicts, e.g. a data-engine
            mixture that builds samples online).
        batch_size: per-device micro-batch size.
        num_workers: data loader workers (0 keeps everything in-process; images are decoded in ``collate``).
        seed: the shuffling seed.
        sampler_factory: ``(world_size, rank) -> sampler`` replacing the default :class:`ResumableSampler` (e.g. a
            weighted mixture sampler). It must offer the same ``set_epoch`` / ``state_dict(consumed)`` /
            ``load_state_dict`` interface so resumption keeps working.
    """

    def __init__(
        self,
        train_rows: list[dict[str, Any]] | Dataset,
        val_rows: list[dict[str, Any]] | Dataset | None = None,
        batch_size: int = 1,
        num_workers: int = 0,
        seed: int = 0,
        shuffle: bool = True,
        repeat_batches: int = 1,
        sampler_factory: Callable[[int, int], Any] | None = None,
    ) -> None:
        super().__init__()
        self.train_set = train_rows if isinstance(train_rows, Dataset) else JsonlDataset(train_rows)
        self.val_set = (
            (val_rows if isinstance(val_rows, Dataset) else JsonlDataset(val_rows)) if val_rows else None
        )
        self.sampler_factory = sampler_factory
        self.batch_size, self.num_workers, self.seed, self.shuffle = batch_size, num_workers, seed, shuffle
        self.repeat_batches = repeat_batches
        self.sampler: ResumableSampler | None = None
        self.resume_state: dict[str, int] | None = None  # set by ResumeState when a checkpoint is restored

    def _collate(self) -> Callable[[list[dict[str, Any]]], Any]:
        return self.trainer.lightning_module.collate

    def train_dataloader(self) -> DataLoader:
        world, rank = (self.trainer.world_size, self.trainer.global_rank) if self.trainer else (1, 0)
        if self.sampler is None and self.sampler_factory is not None:
            self.sampler = self.sampler_factory(world, rank)
        if self.sampler is None:
            self.sampler = ResumableSampler(
                len(self.train_set),
                self.seed,
                self.shuffle,
                world,
                rank,
                self.batch_size,
                self.repeat_batches,
            )
        if self.resume_state is not None:
            self.sampler.load_state_dict(self.resume_state)
            self.resume_state = None
        return DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            sampler=self.sampler,
            collate_fn=self._collate(),
            num_workers=self.num_workers,
            drop_last=False,
        )

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is None:
            return []
        return DataLoader(
            self.val_set,
            batch_size=self.batch_size,
            shuffle=False,
            collate_fn=self.trainer.lightning_module.collate_eval,
            num_workers=self.num_workers,
        )
