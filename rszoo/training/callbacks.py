"""Callbacks for exact resumption and tidy checkpoint folders.

Lightning checkpoints hold the weights, optimizer, LR scheduler and loop progress. :class:`ResumeState` adds what a run
needs to continue *as if never stopped*: the RNG states (torch, Python, NumPy) at the moment of the checkpoint, applied
again right before the next batch, and the position in the epoch's data order, so the resumed run sees exactly the
batches it would have seen.
"""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

__all__ = ["ResumeState", "latest_checkpoint"]

_STEP = re.compile(r"step=(\d+)")


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The checkpoint with the highest step in ``directory`` (``step=N.ckpt`` names), or None."""
    directory = Path(directory)
    best: tuple[int, Path] | None = None
    for path in directory.glob("*.ckpt"):
        match = _STEP.search(path.name)
        if match and (best is None or int(match.group(1)) > best[0]):
            best = (int(match.group(1)), path)
    return best[1] if best else None


def _numpy_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "kind": kind,
        "keys": keys.tolist(),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached": float(cached),
    }


class ResumeState(L.Callback):
    """Saves and restores RNG states and the data position; prunes old step checkpoints to ``keep_last``.

    Everything it stores is a tensor or a primitive, so checkpoints load with ``weights_only=True``.
    """

    def __init__(self, checkpoint_dir: str | Path | None = None, keep_last: int = 2) -> None:
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.keep_last = keep_last
        self._batches_this_epoch = 0
        self._pending_rng: dict[str, Any] | None = None
        self._resumed_mid_epoch = False

    @property
    def state_key(self) -> str:
        return "rszoo.ResumeState"

    # -- bookkeeping --------------------------------------------------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._resumed_mid_epoch:  # the counter was restored with the checkpoint
            self._resumed_mid_epoch = False
        else:
            self._batches_this_epoch = 0

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        # the batch being trained counts as consumed: a checkpoint saved at its end resumes after it
        self._batches_this_epoch += 1
        self._prune()
        if self._pending_rng is not None:
            rng, self._pending_rng = self._pending_rng, None
            torch.set_rng_state(rng["torch"])
            random.setstate((rng["python"][0], tuple(rng["python"][1]), rng["python"][2]))
            np_state = rng["numpy"]
            np.random.set_state(
                (
                    np_state["kind"],
                    np.array(np_state["keys"], dtype=np.uint32),
                    np_state["pos"],
                    np_state["has_gauss"],
                    np_state["cached"],
                )
            )

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # always finish with a checkpoint of the final step, so `resume: auto` and `rszoo export` see the end state
        if self.checkpoint_dir is not None:
            final = self.checkpoint_dir / f"step={trainer.global_step}.ckpt"
            if not final.exists():
                trainer.save_checkpoint(final, weights_only=False)  # full state: resumable
        self._prune()

    def _prune(self) -> None:
        if self.checkpoint_dir is None or self.keep_last <= 0 or not self.checkpoint_dir.is_dir():
            return
        steps = sorted(
            (int(m.group(1)), p) for p in self.checkpoint_dir.glob("*.ckpt") if (m := _STEP.search(p.name))
        )
        for _, path in steps[: -self.keep_last]:
            if path.is_dir():  # a sharded (DCP) checkpoint is a folder
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    # -- checkpoint state ---------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        trainer = getattr(self, "_trainer", None)
        data = None
        if (
            trainer is not None
            and trainer.datamodule is not None
            and getattr(trainer.datamodule, "sampler", None)
        ):
            consumed = self._batches_this_epoch * trainer.datamodule.batch_size
            data = trainer.datamodule.sampler.state_dict(consumed)
        py = random.getstate()
        rng = {"torch": torch.get_rng_state(), "python": [py[0], list(py[1]), py[2]], "numpy": _numpy_state()}
        if (
            trainer is not None and trainer.world_size > 1
        ):  # every rank calls state_dict when a checkpoint is saved
            import torch.distributed as dist

            gathered: list[Any] = [None] * trainer.world_size
            dist.all_gather_object(gathered, rng)
            return {"rng_per_rank": gathered, "data": data}
        return {"rng_per_rank": [rng], "data": data}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Called while Lightning restores the checkpoint, before the train dataloader exists: hand the data position
        # to the data module, which applies it to the sampler it is about to build (before any batch is fetched).
        trainer = getattr(self, "_trainer", None)
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        states = state.get("rng_per_rank") or []
        # exact continuation needs each rank's own RNG; on another world size the ranks keep their fresh seeds
        self._pending_rng = states[rank] if len(states) == world else None
        data = state.get("data")
        if data is not None and trainer is not None and trainer.datamodule is not None:
            trainer.datamodule.resume_state = data
            per_rank = int(data["consumed_global"]) // world
            self._batches_this_epoch = per_rank // max(1, trainer.datamodule.batch_size)
            self._resumed_mid_epoch = True


class Throughput(L.Callback):
    """Logs ``perf/step_time_s``, ``perf/tokens_per_s`` (all ranks) and ``perf/param_bytes_per_rank``.

    Tokens are the non-padding tokens of the batch (``attention_mask``), summed over ranks; the step time is the wall
    time between consecutive batch ends on rank 0 (data loading included).
    """

    def __init__(self) -> None:
        self._last: float | None = None
        self._param_bytes: float | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last = None
        local = 0
        for p in pl_module.parameters():
            data = p.to_local() if hasattr(p, "to_local") else p
            local += data.numel() * data.element_size()
        self._param_bytes = float(local)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        import time

        now = time.perf_counter()
        tokens = _count_tokens(batch)
        if trainer.world_size > 1:
            import torch.distributed as dist

            total = torch.tensor(float(tokens))
            dist.all_reduce(total)
            tokens = int(total)
        if self._param_bytes is not None:  # Lightning does not take logs in on_train_start
            pl_module.log("perf/param_bytes_per_rank", self._param_bytes, rank_zero_only=True)
            self._param_bytes = None
        if self._last is not None:
            step = now - self._last
            pl_module.log("perf/step_time_s", step, rank_zero_only=True)
            pl_module.log("perf/tokens_per_s", tokens / step, rank_zero_only=True)
        self._last = now


def _count_tokens(batch: Any) -> int:
    if isinstance(batch, dict) and "attention_mask" in batch:
        return int(batch["attention_mask"].sum())
    if isinstance(batch, dict) and "input_ids" in batch:  # packed rows have no mask
        return int(batch["input_ids"].numel())
    if isinstance(batch, list):  # GRPO: prompts (completions are counted by the stage's own metrics)
        return sum(_count_tokens(item.get("inputs", {})) for item in batch if isinstance(item, dict))
    return 0


class PeriodicEval(L.Callback):
    """Runs the task's evaluation every ``every_n_steps`` optimizer steps on rank 0 and logs ``eval/*`` metrics.

    The network is evaluated as it is (greedy decoding, no gradients) and put back in training mode afterwards.
    Sharded (FSDP2) runs evaluate at the end only: gathering the weights mid-training is a job for `rszoo export`.
    """

    def __init__(self, eval_cfg: Any, every_n_steps: int, out_dir: Any) -> None:
        self.eval_cfg, self.every_n_steps, self.out_dir = eval_cfg, every_n_steps, Path(out_dir)
        self.history: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if step == 0 or step % self.every_n_steps or getattr(pl_module, "is_sharded", False):
            return
        if trainer.is_global_zero:
            metrics = pl_module.evaluate(self.eval_cfg, out_dir=self.out_dir / f"step{step}")
            pl_module.network.train()
            numeric = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
            self.history.append({"step": step, **numeric})
            for logger in trainer.loggers:
                logger.log_metrics(
                    {"eval/" + k.replace("@", "_at_"): v for k, v in numeric.items()}, step=step
                )
