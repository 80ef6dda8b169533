"""``rszoo.RSCoVLM``: multi-task co-training as one LightningModule.

The single stage ``sft`` is the shared chat SFT stage (full fine-tuning; paper: AdamW weight decay 0.1, lr 2e-6 cosine
with 5% warm-up, global batch 32, sequences up to 6,144 tokens). Data come either as messages JSONL (``messages``) or
from the data curation engine (``mixture``: ``data.train`` names a data recipe YAML whose subsets are mixed online
by weight, with prompt randomisation, random resizing and scalable boxes — see :mod:`rszoo.data.engine`).

Example:
    >>> import rszoo
    >>> task = rszoo.RSCoVLM(model="rscovlm-tiny", stage="sft")
    >>> task.configure_model()
    >>> type(task.network).__name__
    'RSCoVLMModel'
"""

from __future__ import annotations

from typing import Any

from rszoo.training.sft import SFTStage
from rszoo.training.task import BaseTask, _paths

__all__ = ["RSCoVLM"]


class RSCoVLM(BaseTask):
    """RSCoVLM training (``stage="sft"``); data formats ``messages`` and ``mixture`` (a data-engine recipe)."""

    family = "rscovlm"
    stages = {"sft": SFTStage}
    data_formats = ("messages", "mixture")

    def build_datamodule(self, data: Any, seed: int = 0) -> Any:
        if data.format != "mixture":
            return super().build_datamodule(data, seed)
        from rszoo.data.engine import build_mixture, mixture_sampler_factory
        from rszoo.training.data import TaskDataModule

        recipes = _paths(data.train)
        if len(recipes) != 1:
            raise ValueError(f"data.train: a mixture is one data recipe YAML, got {recipes}")
        cfg = self.model_config()
        mixture = build_mixture(
            recipes[0],
            seed=seed,
            min_pixels=cfg.min_pixels,
            max_pixels=cfg.max_pixels,
            factor=cfg.patch_factor,
            overrides=dict(
                data.engine or {}
            ),  # e.g. {root: /data/synth}: data-recipe settings from the training recipe
        )
        val = None
        if data.val:
            val = [
                row
                for path in _paths(data.val)
                for row in self.load_rows("messages", path, data.max_val_samples)
            ]
        return TaskDataModule(
            mixture,
            val,
            data.batch_size,
            data.num_workers,
            seed,
            sampler_factory=mixture_sampler_factory(
                mixture, batch_size=data.batch_size, seed=seed, group_by_length=data.group_by_length
            ),
        )

    def evaluate(self, eval_cfg: Any, out_dir: Any, network: Any = None) -> dict[str, Any]:
        """Per-task metrics on ``eval_cfg.data`` (a folder in the synthetic world's layout), flattened for logging."""
        from rszoo.models.rscovlm.evaluate import evaluate_multitask

        report = evaluate_multitask(
            network or self.network, eval_cfg.data, out_dir, max_per_task=eval_cfg.max_samples or 32,
            batch_size=eval_cfg.batch_size,
        )  # fmt: skip
        flat: dict[str, Any] = {}
        for task, metrics in report.items():
            for key, value in metrics.items():
                if isinstance(value, int | float):
                    flat[f"{task}/{key}"] = value
        return flat
