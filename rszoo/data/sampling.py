"""The resumable position shared by rszoo's samplers (plain shuffling and weighted mixtures).

A sampler draws one order per ``(seed, epoch)``; what it must remember to resume mid-epoch is only how many samples of
that epoch were consumed. The count is stored *globally* (per-rank count x world size), so a checkpoint resumes on
another world size when the count splits evenly.

Example:
    >>> class Toy(ResumablePosition):
    ...     def __init__(self):
    ...         self.size, self.seed, self.num_replicas, self.epoch, self._skip = 10, 0, 2, 0, 0
    >>> state = Toy().state_dict(consumed=3)
    >>> state["consumed_global"]
    6
"""

from __future__ import annotations

__all__ = ["ResumablePosition"]


class ResumablePosition:
    """Mixin: ``set_epoch``, ``state_dict(consumed)`` and ``load_state_dict`` over ``size``, ``seed``,
    ``num_replicas``, ``epoch`` and the pending skip ``_skip`` (consumed by the next ``__iter__``)."""

    size: int
    seed: int
    num_replicas: int
    epoch: int
    _skip: int

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self._skip = 0
        self.epoch = epoch

    def state_dict(self, consumed: int) -> dict[str, int]:
        """The position after ``consumed`` samples on this rank, as a global count."""
        return {
            "epoch": self.epoch,
            "consumed_global": consumed * self.num_replicas,
            "seed": self.seed,
            "size": self.size,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state.get("size") != self.size or state.get("seed") != self.seed:
            raise ValueError(
                f"cannot resume the data order: the checkpoint was made with {state.get('size')} samples per epoch and "
                f"seed {state.get('seed')}, this run has {self.size} samples per epoch and seed {self.seed}"
            )
        consumed = int(state["consumed_global"])
        if consumed % self.num_replicas:
            raise ValueError(
                f"cannot resume on {self.num_replicas} processes: {consumed} samples of the epoch were consumed, which "
                f"does not split evenly; resume on a world size that divides {consumed}"
            )
        self.epoch = state["epoch"]
        self._skip = consumed // self.num_replicas
