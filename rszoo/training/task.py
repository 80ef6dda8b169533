"""The base LightningModule of every rszoo paper, and the stage protocol its training stages implement.

A paper is a :class:`BaseTask` subclass naming its network family and its stages, e.g.
``RSGroundR1.stages = {"cot_sft": SFTStage, "grpo": GRPOStage}``. Stages are the shared, paper-agnostic training
algorithms (chat SFT, GRPO, flow matching ...); the task owns what every stage needs:

* the network, built in an idempotent :meth:`BaseTask.configure_model` (so sharding strategies can wrap it) from a
  preset name or a saved folder (``init_from``);
* per-part freezing from the recipe (``vision_tower``, ``projector``, ``language_model``, ``embeddings``);
* AdamW with decoupled weight decay (none on biases and norms) and a warm-up + cosine/linear/constant schedule
  stepped every optimizer step.

Hyperparameters are primitives only (names, paths, numbers, dicts of those), so checkpoints load with
``torch.load(weights_only=True)`` and never pickle objects.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import lightning as L
import torch

from rszoo.config import check_known_keys

__all__ = ["BaseTask", "Stage", "build_network", "freeze_parts", "stage_config", "task_class"]

FREEZABLE = ("vision_tower", "projector", "language_model", "embeddings")


class Stage:
    """A training algorithm plugged into a task. Subclasses set ``Config`` (a dataclass of their options)."""

    Config: ClassVar[type] = type(None)

    def __init__(self, task: BaseTask, config: Any) -> None:
        self.task = task
        self.config = config

    def setup(self) -> None:
        """Called once the network exists (e.g. GRPO builds its frozen reference model here)."""

    def collate(self, samples: list[dict[str, Any]]) -> Any:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Stage state to keep in checkpoints beyond the weights (tensors and primitives only)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""

    def extra_modules(self) -> list[Any]:
        """Modules the stage owns besides the network (e.g. GRPO's frozen reference) that must be sharded too."""
        return []

    @property
    def repeat_batches(self) -> int:
        """How many consecutive optimizer steps reuse each batch (GRPO's ``num_iterations``)."""
        return 1

    def collate_eval(self, samples: list[dict[str, Any]]) -> Any:
        return self.collate(samples)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        raise NotImplementedError

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        """Optional; by default the stage has no validation."""

    def on_validation_epoch_end(self) -> None:
        """Optional: compute and log epoch-level validation metrics."""


def stage_config(stage_cls: type[Stage], values: dict[str, Any] | None, where: str = "stage_args") -> Any:
    """Build ``stage_cls.Config`` from a dict, type-checked; unknown keys fail naming the allowed ones."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    values = dict(values or {})
    fields = (f.name for f in dataclasses.fields(stage_cls.Config))
    check_known_keys(values, fields, where, f"{stage_cls.__name__} option(s)")
    try:
        typed = OmegaConf.merge(OmegaConf.structured(stage_cls.Config), values)
        config = OmegaConf.to_object(typed)
    except OmegaConfBaseException as exc:
        raise ValueError(
            f"{where}: {str(exc).splitlines()[0]} (key '{getattr(exc, 'full_key', '')}')"
        ) from None
    if hasattr(config, "validate"):
        config.validate()
    return config


def task_class(name: str) -> type[BaseTask]:
    """The paper LightningModule called ``name`` (``RSGroundR1`` ...): the public classes of :mod:`rszoo`."""
    import rszoo

    if name not in rszoo._LAZY:
        raise KeyError(f"unknown task {name!r}; rszoo's tasks are {sorted(rszoo._LAZY)}")
    return getattr(rszoo, name)


def build_network(model: str, init_from: str | None = None, overrides: dict[str, Any] | None = None) -> Any:
    """A network from a preset name (random init) or from a saved folder / Hub id / plain transformers folder."""
    import rszoo
    from rszoo.config import ModelConfig

    overrides = dict(overrides or {})
    if init_from is None:
        return rszoo.create_model(model, **overrides)
    family = model.split("-", 1)[0]
    return (
        ModelConfig.family_class(family, source="model")
        .network_class()
        .from_pretrained(init_from, **overrides)
    )


def freeze_parts(network: Any, freeze: dict[str, bool]) -> dict[str, int]:
    """Set ``requires_grad=False`` on the named parts; returns the parameter count of each part."""
    groups = network.freeze_groups()
    unknown = sorted(set(freeze) - set(groups))
    if unknown:
        raise ValueError(f"freeze: unknown part(s) {unknown}; this network has {sorted(groups)}")
    counts = {}
    for part, modules in groups.items():
        params = list({id(p): p for m in modules for p in m.parameters()}.values())  # tied weights count once
        counts[part] = sum(p.numel() for p in params)
        if freeze.get(part, False):
            for p in params:
                p.requires_grad_(False)
    return counts


class BaseTask(L.LightningModule):
    """Base LightningModule: network building, freezing, optimizers; training delegated to the chosen stage.

    Args:
        model: a preset name (``rsground_r1-tiny``); with ``init_from`` only its family matters (a bare family name
            such as ``rsground_r1`` is accepted then).
        init_from: a saved model folder, Hub id, or plain transformers folder to start from (None: random init).
        model_overrides: config field overrides (e.g. ``{"max_pixels": 200704}``).
        stage: which of the task's ``stages`` trains.
        stage_args: options of that stage (validated against its ``Config`` dataclass).
        freeze: ``{part: True}`` for parts to freeze (``vision_tower``, ``projector``, ``language_model``, ``embeddings``).
        optimizer: ``{"lr", "weight_decay", "betas", "eps"}`` for AdamW.
        scheduler: ``{"name": "cosine"|"linear"|"constant", "warmup_ratio" or "warmup_steps", "min_lr_ratio"}``.
    """

    family: ClassVar[str] = ""
    stages: ClassVar[dict[str, type[Stage]]] = {}

    def __init__(
        self,
        model: str,
        init_from: str | None = None,
        model_overrides: dict[str, Any] | None = None,
        stage: str = "",
        stage_args: dict[str, Any] | None = None,
        freeze: dict[str, bool] | None = None,
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if stage not in self.stages:
            raise ValueError(
                f"{type(self).__name__}: unknown stage {stage!r}; choose one of {sorted(self.stages)}"
            )
        if self.family and model.split("-", 1)[0] != self.family:
            raise ValueError(f"{type(self).__name__} trains {self.family!r} models; got model={model!r}")
        self.save_hyperparameters()
        self.network: Any = None
        stage_cls = self.stages[stage]
        self.stage = stage_cls(
            self, stage_config(stage_cls, stage_args, where=f"{type(self).__name__}.stage_args")
        )

    # -- network ------------------------------------------------------------------------------------------------------
    def configure_model(self) -> None:
        """Build the network once (Lightning may call this more than once, e.g. under sharding strategies)."""
        if self.network is not None:
            return
        hp = self.hparams
        self.network = build_network(hp.model, hp.init_from, hp.model_overrides)
        self.part_sizes = freeze_parts(self.network, dict(hp.freeze or {}))
        self.stage.setup()
        mesh = getattr(self, "_device_mesh", None)
        if mesh is not None and getattr(self, "sharding", None) is not None:
            from rszoo.training.sharding import shard_network

            mesh = mesh if self.sharding.hsdp else mesh["data_parallel"]
            units = self.network.fsdp_units()
            for root in [self.network.sharding_root(), *self.stage.extra_modules()]:
                shard_network(root, units, mesh, self.sharding)

    def model_config(self) -> Any:
        """The network's config without building the network (from ``init_from`` or the preset)."""
        from rszoo.config import ModelConfig

        hp = self.hparams
        overrides = dict(hp.model_overrides or {})
        if not hp.init_from:
            return ModelConfig.from_name(hp.model, **overrides)
        from rszoo.models.base import resolve_pretrained

        directory = resolve_pretrained(hp.init_from)
        try:
            saved = ModelConfig.from_checkpoint(directory)
        except FileNotFoundError:  # a plain transformers folder
            family_cls = ModelConfig.family_class(hp.model.split("-", 1)[0])
            saved = family_cls.network_class()._foreign_config(directory)
        return (
            type(saved).from_dict({**saved.to_dict(), **overrides}, source=str(directory))
            if overrides
            else saved
        )

    def sharding_unit_types(self) -> set[type]:
        """The network's sharding unit classes, found on a meta-device build (nothing is allocated)."""
        with torch.device("meta"):
            hp = self.hparams
            name = hp.model if "-" in hp.model else f"{hp.model}-tiny"
            return build_network(name, None, hp.model_overrides).fsdp_units()

    @property
    def is_sharded(self) -> bool:
        return getattr(self, "sharding", None) is not None

    @classmethod
    def from_pretrained(cls, pretrained: str, stage: str | None = None, **kwargs: Any) -> BaseTask:
        """A task starting from a saved model folder / Hub id (``stage`` defaults to the task's first stage)."""
        from rszoo.config import ModelConfig
        from rszoo.models.base import resolve_pretrained

        directory = resolve_pretrained(pretrained, kwargs.pop("revision", None))
        try:
            model = ModelConfig.from_checkpoint(directory).name
        except FileNotFoundError:  # a plain transformers folder: the family is all that is needed
            model = cls.family
        task = cls(model=model, init_from=str(directory), stage=stage or next(iter(cls.stages)), **kwargs)
        task.configure_model()
        return task

    # -- data -----------------------------------------------------------------------------------------------------------
    data_formats: ClassVar[tuple[str, ...]] = ("messages",)

    def load_rows(self, fmt: str, path: str, max_samples: int | None = None) -> list[dict[str, Any]]:
        """Samples of ``path`` in data format ``fmt`` (``messages``: chat JSONL); paper tasks add formats."""
        if fmt == "messages":
            from rszoo.training.data import load_messages_jsonl

            return load_messages_jsonl(path, max_samples)
        raise ValueError(
            f"data.format {fmt!r} is not supported by {type(self).__name__}; use one of {self.data_formats}"
        )

    def build_datamodule(self, data: Any, seed: int = 0) -> Any:
        """The data module for a recipe's ``data`` section (``fraction`` keeps a seeded subset, as the paper's 40%)."""
        from rszoo.training.data import TaskDataModule

        train = [
            row
            for path in _paths(data.train)
            for row in self.load_rows(data.format, path, data.max_train_samples)
        ]
        if not 0 < data.fraction <= 1:
            raise ValueError(f"data.fraction must be in (0, 1], got {data.fraction}")
        if data.fraction < 1:
            keep = max(1, int(len(train) * data.fraction))
            order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed)).tolist()
            train = [train[i] for i in sorted(order[:keep])]
        val = [
            row
            for path in _paths(data.val)
            for row in self.load_rows(data.format, path, data.max_val_samples)
        ] or None
        return TaskDataModule(
            train,
            val,
            data.batch_size,
            data.num_workers,
            seed,
            data.shuffle,
            repeat_batches=self.stage.repeat_batches,
        )

    def evaluate(self, eval_cfg: Any, out_dir: Any, network: Any = None) -> dict[str, Any]:
        """Task-specific evaluation after training (of ``network``, default the task's); paper tasks implement it."""
        raise NotImplementedError(f"{type(self).__name__} has no evaluation; remove the recipe's eval.data")

    def on_fit_start(self) -> None:
        # from_pretrained returns networks in eval mode; Lightning 2.6 no longer switches them to train mode itself
        self.network.train()

    # -- Lightning hooks delegated to the stage ------------------------------------------------------------------------
    def collate(self, samples: list[dict[str, Any]]) -> Any:
        return self.stage.collate(samples)

    def collate_eval(self, samples: list[dict[str, Any]]) -> Any:
        return self.stage.collate_eval(samples)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.stage.training_step(batch, batch_idx)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.stage.validation_step(batch, batch_idx)

    def on_validation_epoch_end(self) -> None:
        self.stage.on_validation_epoch_end()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rszoo_stage"] = self.stage.state_dict()
        checkpoint["rszoo_task"] = type(self).__name__
        checkpoint["rszoo_network_config"] = self.network.config.to_json()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.stage.load_state_dict(checkpoint.get("rszoo_stage", {}))

    # -- optimisation -------------------------------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        opt = {
            "lr": 1e-5,
            "weight_decay": 0.0,
            "betas": (0.9, 0.999),
            "eps": 1e-8,
            **(self.hparams.optimizer or {}),
        }
        decay, no_decay = [], []
        for name, param in self.network.named_parameters():
            if not param.requires_grad:
                continue
            (no_decay if param.ndim < 2 or name.endswith(".bias") else decay).append(param)
        if not decay and not no_decay:
            raise ValueError(
                "every parameter is frozen: unfreeze at least one part in the recipe's model.freeze"
            )
        groups = [
            {"params": decay, "weight_decay": opt["weight_decay"]},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=opt["lr"], betas=tuple(opt["betas"]), eps=opt["eps"])
        sched = {"name": "constant", "warmup_ratio": 0.0, "warmup_steps": 0, "min_lr_ratio": 0.0}
        sched.update(self.hparams.scheduler or {})
        total = max(1, int(self.trainer.estimated_stepping_batches)) if self._trainer is not None else 1
        warmup = int(sched["warmup_steps"]) or math.ceil(float(sched["warmup_ratio"]) * total)
        lr_lambda = _Schedule(sched["name"], warmup, total, float(sched["min_lr_ratio"]))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def _paths(value: str | None) -> list[str]:
    """``data.train`` / ``data.val``: one path, or several separated by commas."""
    return [p.strip() for p in str(value).split(",") if p.strip()] if value else []


class _Schedule:
    """A picklable LR multiplier: linear warm-up, then cosine / linear decay to ``min_ratio``, or constant."""

    def __init__(self, name: str, warmup: int, total: int, min_ratio: float) -> None:
        if name not in ("cosine", "linear", "constant"):
            raise ValueError(f"scheduler.name must be cosine, linear or constant, got {name!r}")
        self.name, self.warmup, self.total, self.min_ratio = name, warmup, total, min_ratio

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        if self.name == "constant":
            return 1.0
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        shape = 0.5 * (1 + math.cos(math.pi * progress)) if self.name == "cosine" else 1 - progress
        return self.min_ratio + (1 - self.min_ratio) * shape
