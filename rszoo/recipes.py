"""Training recipes: OmegaConf YAML with ``defaults`` composition, ``${}`` interpolation and ``key=value`` overrides.

A recipe file ``recipes/<model>/<name>.yaml`` may start with ``defaults: [cpu, mlflow]``: each entry names a fragment
``recipes/_defaults/<entry>.yaml`` (sub-folders allowed, e.g. ``cluster/1x8_a800``). Precedence, lowest first:
the schema defaults, the fragments in order, the recipe, the command-line overrides. Every source is validated against
the structured schema *before* anything is built: an unknown key or a wrong type fails naming the key, the file (or
"command line") and the allowed keys. ``stage_args`` are validated against the chosen stage's own options.

Example:
    >>> from rszoo.recipes import load_recipe, RECIPES_DIR
    >>> cfg = load_recipe(RECIPES_DIR / "rsground_r1" / "tiny_cot_sft.yaml", ["trainer.max_steps=2"])
    >>> cfg.trainer.max_steps
    2
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

__all__ = ["RECIPES_DIR", "Recipe", "RecipeError", "load_recipe", "recipe_to_yaml"]

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"
DEFAULTS_DIR = RECIPES_DIR / "_defaults"


class RecipeError(ValueError):
    """A recipe is invalid; the message names the key, the source and what is allowed."""


@dataclass
class FreezeSection:
    """Parts to freeze (``requires_grad=False``)."""

    vision_tower: bool = False
    projector: bool = False
    language_model: bool = False
    embeddings: bool = False


@dataclass
class ModelSection:
    """Which network: a preset, optionally initialised from a folder / Hub id, with config overrides and freezing."""

    name: str = MISSING
    init_from: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    freeze: FreezeSection = field(default_factory=FreezeSection)


@dataclass
class DataSection:
    """Training data. ``format`` picks the loader: ``messages`` (chat SFT JSONL), ``grounding`` (GRPO prompts) or
    ``mixture`` (a data-engine recipe YAML in ``train``, its settings overridable through ``engine``)."""

    format: str = "messages"
    train: str = MISSING  # a file, or several separated by commas
    val: str | None = None
    batch_size: int = 1
    global_batch_size: int | None = None  # when set, trainer.accumulate_grad_batches is derived from it
    num_workers: int = 0
    max_train_samples: int | None = None
    max_val_samples: int | None = None
    fraction: float = 1.0
    shuffle: bool = True
    # format "mixture": data-recipe overrides (e.g. {root: /data/synth}) and length-aware batching (less padding)
    engine: dict[str, Any] = field(default_factory=dict)
    group_by_length: bool = False


@dataclass
class OptimizerSection:
    """AdamW with decoupled weight decay (none on biases and norms)."""

    lr: float = 1e-5
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8


@dataclass
class SchedulerSection:
    """LR schedule: linear warm-up then ``cosine``, ``linear`` or ``constant``."""

    name: str = "constant"
    warmup_ratio: float = 0.0
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0


@dataclass
class TrainerSection:
    """Lightning Trainer settings."""

    max_steps: int = -1
    max_epochs: int | None = None
    accumulate_grad_batches: int = 1
    precision: str = "32-true"
    gradient_clip_val: float | None = 1.0
    val_check_interval: int | None = None
    limit_val_batches: int | None = None
    log_every_n_steps: int = 1
    deterministic: bool = False
    enable_progress_bar: bool = True


@dataclass
class FSDPSection:
    """Sharding options for ``fsdp2`` (and ``fsdp1``): see :mod:`rszoo.training.sharding`."""

    mixed_precision: str = "bf16"
    activation_checkpointing: bool = True
    cpu_offload: bool = False
    reshard_after_forward: bool = True
    hsdp: str = "auto"  # auto (HSDP when num_nodes > 1), true, false


@dataclass
class ClusterSection:
    """Where it runs. ``strategy``: ``auto``, ``ddp``, ``fsdp2`` (ModelParallelStrategy + fully_shard) or ``fsdp1``."""

    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    fsdp: FSDPSection = field(default_factory=FSDPSection)


@dataclass
class CheckpointSection:
    """Step checkpoints (optimizer, scheduler, RNG, data order, step). ``resume``: ``auto``, a path, or ``false``."""

    every_n_steps: int = 50
    keep_last: int = 2
    resume: str = "auto"
    save_final_model: bool = True


@dataclass
class LoggingSection:
    """MLflow (rank 0 only). ``tracking_uri`` defaults to a sqlite store in the run directory."""

    mlflow: bool = True
    tracking_uri: str | None = None
    experiment: str = "rszoo"
    run_name: str | None = None
    log_model: bool = True


@dataclass
class EvalSection:
    """Evaluation after training (task-specific; e.g. grounding accuracy on ``data``)."""

    data: str | None = None
    max_samples: int | None = None
    batch_size: int = 4
    every_n_steps: int | None = (
        None  # also evaluate during training (single-process / DDP runs), logged as eval/*
    )


@dataclass
class Recipe:
    """The whole recipe schema."""

    name: str = MISSING
    task: str = MISSING
    stage: str = MISSING
    seed: int = 0
    output_dir: str = "runs/${name}"
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    stage_args: dict[str, Any] = field(default_factory=dict)
    optimizer: OptimizerSection = field(default_factory=OptimizerSection)
    scheduler: SchedulerSection = field(default_factory=SchedulerSection)
    trainer: TrainerSection = field(default_factory=TrainerSection)
    cluster: ClusterSection = field(default_factory=ClusterSection)
    checkpoint: CheckpointSection = field(default_factory=CheckpointSection)
    logging: LoggingSection = field(default_factory=LoggingSection)
    eval: EvalSection = field(default_factory=EvalSection)


def _allowed(schema: Any, path: list[str]) -> list[str]:
    node: Any = schema
    for part in path:
        fields = {f.name: f for f in dataclasses.fields(node)} if dataclasses.is_dataclass(node) else {}
        if part not in fields:
            return []
        default = (
            fields[part].default_factory()
            if fields[part].default_factory is not dataclasses.MISSING
            else None
        )
        node = default if dataclasses.is_dataclass(default) else None
    return sorted(f.name for f in dataclasses.fields(node)) if dataclasses.is_dataclass(node) else []


def _validate_fragment(fragment: DictConfig, source: str) -> None:
    """Merge one source onto the schema alone, so an error is attributed to the file that caused it."""
    try:
        OmegaConf.merge(OmegaConf.structured(Recipe), fragment)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or ""
        parts = [p for p in str(key).split(".") if p]
        allowed = _allowed(Recipe(name="", task="", stage=""), parts[:-1]) if parts else []
        msg = str(exc).split("\n")[0]
        hint = f"; allowed keys here: {allowed}" if allowed and "Key" in type(exc).__name__ else ""
        raise RecipeError(f"{source}: invalid key '{key}': {msg}{hint}") from None


def _load_yaml(path: Path) -> DictConfig:
    if not path.is_file():
        raise RecipeError(f"recipe file not found: {path}")
    try:
        conf = OmegaConf.load(path)
    except Exception as exc:
        raise RecipeError(f"{path}: cannot parse YAML: {exc}") from None
    if not isinstance(conf, DictConfig):
        raise RecipeError(f"{path}: a recipe must be a mapping of sections")
    return conf


def _fragments(path: Path, seen: tuple[Path, ...] = ()) -> list[tuple[DictConfig, str]]:
    """The recipe's ``defaults`` fragments (recursively), then the recipe itself, as (config, source) pairs."""
    if path in seen:
        raise RecipeError(f"{path}: circular defaults via {[str(p) for p in seen]}")
    conf = _load_yaml(path)
    out: list[tuple[DictConfig, str]] = []
    defaults = conf.pop("defaults", [])
    if not isinstance(defaults, list | type(OmegaConf.create([]))):
        raise RecipeError(f"{path}: 'defaults' must be a list of names from recipes/_defaults/")
    for entry in defaults:
        fragment = DEFAULTS_DIR / f"{entry}.yaml"
        if not fragment.is_file():
            known = sorted(
                str(p.relative_to(DEFAULTS_DIR).with_suffix("")) for p in DEFAULTS_DIR.rglob("*.yaml")
            )
            raise RecipeError(f"{path}: defaults entry {entry!r} not found ({fragment}); known: {known}")
        out += _fragments(fragment, (*seen, path))
    out.append((conf, str(path)))
    return out


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> DictConfig:
    """Compose, validate and resolve a recipe; returns a read-only DictConfig typed by :class:`Recipe`.

    Args:
        path: the recipe YAML.
        overrides: ``key=value`` strings (OmegaConf dotlist), applied last.
    """
    path = Path(path)
    sources = _fragments(path.resolve())
    if overrides:
        bad = [o for o in overrides if "=" not in o]
        if bad:
            raise RecipeError(f"command line: overrides must be key=value, got {bad}")
        try:
            sources.append((OmegaConf.from_dotlist(list(overrides)), "command line"))
        except OmegaConfBaseException as exc:
            raise RecipeError(f"command line: {exc}") from None
    for conf, source in sources:
        _validate_fragment(conf, source)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Recipe), *[c for c, _ in sources])
        OmegaConf.resolve(merged)
    except OmegaConfBaseException as exc:
        raise RecipeError(f"{path}: {exc}") from None
    missing = sorted(OmegaConf.missing_keys(merged))
    if missing:
        raise RecipeError(f"{path}: required key(s) not set: {missing}")
    _validate_stage_args(merged, sources)
    OmegaConf.set_readonly(merged, True)
    return merged


def _validate_stage_args(merged: DictConfig, sources: list[tuple[DictConfig, str]]) -> None:
    from rszoo.training.task import stage_config, task_class

    try:
        task_cls = task_class(merged.task)
    except KeyError as exc:
        raise RecipeError(f"task: {exc}") from None
    if merged.stage not in task_cls.stages:
        raise RecipeError(
            f"stage: {task_cls.__name__} has no stage {merged.stage!r}; choose from {sorted(task_cls.stages)}"
        )
    stage_cls = task_cls.stages[merged.stage]
    for conf, source in sources:
        values = conf.get("stage_args")
        if values:
            try:
                stage_config(
                    stage_cls, OmegaConf.to_container(values, resolve=False), where=f"{source}: stage_args"
                )
            except (TypeError, ValueError) as exc:
                raise RecipeError(str(exc)) from None
    try:
        stage_config(stage_cls, OmegaConf.to_container(merged.stage_args), where="stage_args")
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"{exc}") from None


def recipe_to_yaml(recipe: DictConfig) -> str:
    """The fully resolved recipe as YAML (printed at start, saved beside checkpoints, logged to MLflow)."""
    return OmegaConf.to_yaml(recipe, resolve=True)


def shipped_recipes() -> list[Path]:
    """Every training recipe shipped in ``recipes/`` (``_defaults`` fragments, ``slurm`` and data recipes excluded)."""
    skip = {"_defaults", "slurm", "data"}
    return sorted(p for p in RECIPES_DIR.rglob("*.yaml") if not skip & set(p.relative_to(RECIPES_DIR).parts))
