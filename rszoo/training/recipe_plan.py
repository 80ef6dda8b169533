"""Plan a training recipe's memory: translate a recipe into :func:`rszoo.training.planner.plan_memory` arguments,
and, when it does not fit, try the usual remedies and say what each would give.

Used by ``rszoo plan`` and by the ``auto`` strategy (DDP when a full replica fits, FSDP2 otherwise).
"""

from __future__ import annotations

import json
from typing import Any

from rszoo.training.planner import GiB, MemoryPlan, NetworkSummary, plan_memory, summarize_network

__all__ = ["plan_from_recipe", "recipe_plan_kwargs", "suggest_changes"]

_SUMMARIES: dict[
    tuple[str, str], NetworkSummary
] = {}  # meta-device summaries, reused across plans of one run


def _summary_for(model: str, init_from: str | None, overrides: dict[str, Any]) -> NetworkSummary:
    """The (cached) summary of a recipe's network: a saved rszoo folder's config if ``init_from`` is one, else the
    preset, with the recipe's ``model.overrides``."""
    from pathlib import Path

    from rszoo.config import CONFIG_FILE, ModelConfig

    key = (f"{model}|{init_from or ''}", json.dumps(overrides, sort_keys=True, default=str))
    if key not in _SUMMARIES:
        if init_from and (Path(init_from) / CONFIG_FILE).is_file():
            saved = ModelConfig.from_checkpoint(init_from)
            config = type(saved).from_dict({**saved.to_dict(), **overrides}, source=str(init_from))
        else:
            config = ModelConfig.from_name(model, **overrides)
        _SUMMARIES[key] = summarize_network(config)
    return _SUMMARIES[key]


def _stage_kind(recipe: Any) -> tuple[str, Any]:
    from rszoo.training.grpo import GRPOStage
    from rszoo.training.sft import SFTStage
    from rszoo.training.task import stage_config, task_class

    stage_cls = task_class(recipe.task).stages[recipe.stage]
    config = stage_config(stage_cls, _container(recipe.stage_args))
    if issubclass(stage_cls, GRPOStage):
        return "grpo", config
    if issubclass(stage_cls, SFTStage):
        return "sft", config
    raise ValueError(
        f"stage {recipe.stage!r} ({stage_cls.__name__}): the planner models the SFT and GRPO stages only"
    )


def _container(node: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def recipe_plan_kwargs(
    recipe: Any,
    *,
    gpu_memory: int = 80 * GiB,
    image_size: tuple[int, int] | None = None,
    images_per_sample: int = 1,
    prompt_text_tokens: int = 128,
) -> dict[str, Any]:
    """:func:`plan_memory` keyword arguments for a loaded recipe (``rszoo.recipes.load_recipe``)."""
    cluster, fsdp = recipe.cluster, recipe.cluster.fsdp
    hsdp = {"auto": cluster.num_nodes > 1, "true": True, "false": False}.get(str(fsdp.hsdp).lower())
    if hsdp is None:
        raise ValueError(f"cluster.fsdp.hsdp must be auto, true or false, got {fsdp.hsdp!r}")
    if cluster.strategy == "fsdp1":
        hsdp = cluster.num_nodes > 1  # rszoo's fsdp1 uses HYBRID_SHARD across nodes
    stage, stage_cfg = _stage_kind(recipe)
    from rszoo.training.cluster import batch_arithmetic

    world = int(cluster.devices) * int(cluster.num_nodes)
    accumulate, _ = batch_arithmetic(  # as `rszoo train` derives it (data.global_batch_size wins when set)
        int(recipe.data.batch_size),
        int(recipe.trainer.accumulate_grad_batches),
        world,
        recipe.data.get("global_batch_size"),
    )
    kwargs: dict[str, Any] = {
        "world_size": world,
        "devices_per_node": int(cluster.devices),
        "strategy": str(cluster.strategy),
        "mixed_precision": str(fsdp.mixed_precision),
        "trainer_precision": str(recipe.trainer.precision),
        "activation_checkpointing": bool(fsdp.activation_checkpointing),
        "cpu_offload": bool(fsdp.cpu_offload),
        "reshard_after_forward": bool(fsdp.reshard_after_forward),
        "hsdp": hsdp,
        "freeze": {k: bool(v) for k, v in _container(recipe.model.freeze).items()},
        "micro_batch": int(recipe.data.batch_size),
        "accumulate_grad_batches": accumulate,
        "stage": stage,
        "image_size": image_size,
        "images_per_sample": images_per_sample,
        "gpu_memory": gpu_memory,
    }
    if stage == "sft":
        kwargs["seq_len"] = int(stage_cfg.max_length)
    else:
        kwargs.update(
            num_generations=int(stage_cfg.num_generations),
            completion_len=int(stage_cfg.max_completion_length),
            reference_model=float(stage_cfg.beta) > 0,
            prompt_text_tokens=prompt_text_tokens,
        )
    return kwargs


def plan_from_recipe(
    recipe: Any,
    *,
    model: str | None = None,
    gpu_memory: int = 80 * GiB,
    image_size: tuple[int, int] | None = None,
    images_per_sample: int = 1,
    prompt_text_tokens: int = 128,
    advise: bool = True,
) -> MemoryPlan:
    """Plan a loaded recipe (its ``cluster`` gives devices, nodes, strategy and FSDP options).

    Args:
        recipe: from :func:`rszoo.recipes.load_recipe` (``--gpus/--nodes`` are applied there as
            ``cluster.devices`` / ``cluster.num_nodes`` overrides).
        model: another preset to plan under the recipe's settings (``--all-presets``); the recipe's
            ``model.overrides`` still apply.
        advise: when the plan does not fit (or is tight), try the usual remedies and list their totals.
    """
    overrides = dict(_container(recipe.model.overrides) or {})
    summary = _summary_for(model or recipe.model.name, None if model else recipe.model.init_from, overrides)
    kwargs = recipe_plan_kwargs(
        recipe,
        gpu_memory=gpu_memory,
        image_size=image_size,
        images_per_sample=images_per_sample,
        prompt_text_tokens=prompt_text_tokens,
    )
    plan = plan_memory(summary, **kwargs)
    if advise and plan.verdict != "fits":
        fixed_global = recipe.data.get("global_batch_size") is not None
        plan.advice = suggest_changes(summary, kwargs, plan, fixed_global_batch=fixed_global)
    return plan


def _remedies(
    kwargs: dict[str, Any], plan: MemoryPlan, fixed_global_batch: bool = False
) -> list[tuple[str, str, dict[str, Any]]]:
    """Candidate changes, least disruptive first: (series, recipe overrides / flags, plan_memory keyword changes).

    Remedies of one series (smaller micro-batches, more GPUs ...) are steps of the same knob.
    """
    out: list[tuple[str, str, dict[str, Any]]] = []
    strategy, world = kwargs.get("strategy", "fsdp2"), kwargs.get("world_size", 1)
    sharded = strategy in ("fsdp2", "fsdp1")
    if not sharded:  # sharding, and rszoo's activation checkpointing (applied under fsdp2/fsdp1 only)
        out.append(("strategy", "cluster.strategy=fsdp2", {"strategy": "fsdp2"}))
    if sharded and not kwargs.get("activation_checkpointing", True):
        out.append(
            (
                "checkpointing",
                "cluster.fsdp.activation_checkpointing=true",
                {"activation_checkpointing": True},
            )
        )
    micro, accum = kwargs.get("micro_batch", 1), kwargs.get("accumulate_grad_batches", 1)
    smaller = micro // 2
    while smaller >= 1:  # halve the micro-batch, raise accumulation: same global batch when it divides
        factor = micro // smaller
        label = f"data.batch_size={smaller}" + (
            "" if fixed_global_batch else f" trainer.accumulate_grad_batches={accum * factor}"
        )  # with data.global_batch_size set, rszoo derives the accumulation itself
        out.append(
            ("micro_batch", label, {"micro_batch": smaller, "accumulate_grad_batches": accum * factor})
        )
        smaller //= 2
    if strategy != "fsdp1" and not (strategy == "fsdp2" and kwargs.get("cpu_offload", False)):
        to_fsdp2 = "" if strategy == "fsdp2" else "cluster.strategy=fsdp2 "
        changes = {"cpu_offload": True, **({} if strategy == "fsdp2" else {"strategy": "fsdp2"})}
        out.append(("offload", to_fsdp2 + "cluster.fsdp.cpu_offload=true", changes))
    devices = kwargs.get("devices_per_node") or world
    if sharded and kwargs.get("hsdp") and world > devices:
        out.append(("hsdp", "cluster.fsdp.hsdp=false", {"hsdp": False}))
    for scale in (2, 4, 8):
        if world == 1:
            more: dict[str, Any] = {"world_size": scale, "devices_per_node": scale}
            label = f"--gpus {scale}"
            if not sharded:
                more["strategy"], label = "fsdp2", label + " cluster.strategy=fsdp2"
        elif sharded:
            nodes = world // devices * scale
            more, label = {"world_size": devices * nodes}, f"--nodes {nodes}"
        else:
            break
        out.append(("scale", label, more))
    freeze = dict(kwargs.get("freeze") or {})
    if not freeze.get("vision_tower") and plan.settings["visual_tokens_per_image"]:
        out.append(("freeze", "model.freeze.vision_tower=true", {"freeze": {**freeze, "vision_tower": True}}))
    budget = plan.settings["max_pixels"]
    for divisor in (2, 4) if plan.settings["visual_tokens_per_image"] else ():
        if budget // divisor >= 4 * 28 * 28:
            label = f"model.overrides.max_pixels={budget // divisor}"
            out.append(("max_pixels", label, {"max_pixels": budget // divisor}))
    if kwargs.get("stage") == "sft" and kwargs.get("seq_len", 4096) >= 1024:
        half = kwargs["seq_len"] // 2
        out.append(("seq", f"stage_args.max_length={half}", {"seq_len": half}))
    if kwargs.get("stage") == "grpo" and kwargs.get("completion_len", 256) >= 128:
        half = kwargs["completion_len"] // 2
        out.append(("completion", f"stage_args.max_completion_length={half}", {"completion_len": half}))
    return out


def _merge_labels(labels: list[tuple[str, str]]) -> str:
    """One override line from several remedies: each key once (the last value wins); flags keep their value."""
    merged: dict[str, str] = {}
    words = [w for _, label in labels for w in label.split()]
    i = 0
    while i < len(words):
        if words[i].startswith("--"):
            merged[words[i]] = f"{words[i]} {words[i + 1]}"
            i += 2
        else:
            merged[words[i].split("=")[0]] = words[i]
            i += 1
    return " ".join(merged.values())


def suggest_changes(
    summary: NetworkSummary, kwargs: dict[str, Any], plan: MemoryPlan, fixed_global_batch: bool = False
) -> list[str]:
    """What to change when a plan does not fit (or is tight): each remedy alone with the total it gives, then the
    first greedy combination (remedies applied in order, least disruptive first) that fits.

    Series (smaller micro-batches, more GPUs) show only their first fitting step, or their last one.
    """
    lines: list[str] = []
    combined: dict[str, Any] = {}
    combined_labels: list[tuple[str, str]] = []  # (series key, label)
    best: MemoryPlan | None = None
    shown: dict[
        str, tuple[str, bool]
    ] = {}  # series -> (line, fits): a series stops at its first fitting step
    for series, label, changes in _remedies(kwargs, plan, fixed_global_batch):
        try:
            alone = plan_memory(summary, **{**kwargs, **changes})
            together = plan_memory(summary, **{**kwargs, **combined, **changes})
        except ValueError:
            continue
        if alone.total < plan.total and not shown.get(series, ("", False))[1]:
            shown[series] = (f"{label}: {alone.total / GiB:.2f} GiB -> {alone.verdict}", alone.fits)
        current = best.total if best is not None else plan.total
        if together.total < current and not (best is not None and best.fits):
            combined.update(changes)
            combined_labels = [(k, v) for k, v in combined_labels if k != series] + [(series, label)]
            best = together
    lines += [line for line, _ in shown.values()]
    if best is not None and best.fits and len(combined_labels) > 1:
        merged = _merge_labels(combined_labels)
        lines.append(f"together: {merged}: {best.total / GiB:.2f} GiB -> {best.verdict}")
    elif best is not None and not best.fits:
        lines.append(
            "even together (" + _merge_labels(combined_labels) + f") they give "
            f"{best.total / GiB:.2f} GiB: more GPUs or GPUs with more memory are needed"
        )
    return lines


# -- output -----------------------------------------------------------------------------------------------------------
