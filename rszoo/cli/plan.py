"""``rszoo plan RECIPE --gpus 8 --gpu-mem 80GiB [--nodes N] [key=value ...]``: will the recipe fit, per GPU?

The recipe is loaded exactly as ``rszoo train`` loads it (``defaults``, overrides); its ``cluster`` section gives the
strategy and FSDP options, ``--gpus`` / ``--nodes`` override ``cluster.devices`` / ``cluster.num_nodes``. The network is
built on the meta device and planned by :func:`rszoo.training.planner.plan_memory`: a per-GPU table (parameters,
gradients, optimizer states, FSDP buffers, activations with and without checkpointing, logits, total), the verdict, the
global batch arithmetic and, when it does not fit, the dominating term and what to change (each remedy with the total
it gives). ``--all-presets`` plans every real preset (``rszoo.list_models()`` minus ``*-tiny``) under the recipe's
settings, side by side.

Exit codes: 0 fits (also "tight": within 10 % of the GPU), 1 does not fit (with ``--all-presets``: any preset does
not), 2 bad input.

Example:
    >>> from rszoo.cli.main import main
    >>> main(["plan", "recipes/rsground_r1/tiny_cot_sft.yaml", "--gpus", "1", "--gpu-mem", "24GiB"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rszoo.training.planner import LABELS, GiB, MemoryPlan, NetworkSummary, plan_memory, summarize_network

NAME = "plan"
HELP = "per-GPU memory plan of a recipe: does it fit on these GPUs? (exit 0 fits, 1 does not)"
DESCRIPTION = (
    "Plan per-GPU memory for a training recipe before queueing it: sharded parameters, gradients and optimizer "
    "states (exact for FSDP2), FSDP buffers, activations with and without checkpointing, logits (estimates). "
    "Example: `rszoo plan recipes/rsground_r1/tiny_cot_sft.yaml --gpus 8 --gpu-mem 80GiB model.name=rsground_r1-3b "
    "cluster.strategy=fsdp2`."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="path to a recipe YAML")
    parser.add_argument(
        "overrides", nargs="*", help="key=value overrides (OmegaConf dotlist), as for rszoo train"
    )
    parser.add_argument("--gpus", type=_positive_int, help="GPUs per node (overrides cluster.devices)")
    parser.add_argument("--nodes", type=_positive_int, help="nodes (overrides cluster.num_nodes)")
    parser.add_argument(
        "--gpu-mem",
        default="80GiB",
        help="memory per GPU, e.g. 80GiB, 80GB, 24GiB (default 80GiB: A800 80GB)",
    )
    parser.add_argument(
        "--image-size",
        help="WIDTHxHEIGHT of the training images, e.g. 800x800 (default: the largest image max_pixels allows)",
    )
    parser.add_argument(
        "--images-per-sample", type=int, default=1, help="images per sample / prompt (default 1)"
    )
    parser.add_argument(
        "--prompt-tokens",
        type=int,
        default=128,
        help="GRPO: text tokens of a prompt besides the image (default 128)",
    )
    parser.add_argument(
        "--all-presets", action="store_true", help="plan every real preset under the recipe's settings"
    )
    parser.add_argument("--json", action="store_true", help="print the plan(s) as JSON")


def run(args: argparse.Namespace) -> int:
    from rszoo.recipes import load_recipe
    from rszoo.training.planner import parse_memory

    gpu_memory = parse_memory(args.gpu_mem)
    image_size = _parse_size(args.image_size) if args.image_size else None
    if args.images_per_sample < 0 or args.prompt_tokens < 0:
        raise ValueError("--images-per-sample and --prompt-tokens must be >= 0")
    overrides = list(args.overrides or [])
    if args.gpus is not None:
        overrides.append(f"cluster.devices={args.gpus}")
    if args.nodes is not None:
        overrides.append(f"cluster.num_nodes={args.nodes}")
    recipe = load_recipe(args.recipe, overrides)
    options = {
        "gpu_memory": gpu_memory,
        "image_size": image_size,
        "images_per_sample": args.images_per_sample,
        "prompt_text_tokens": args.prompt_tokens,
    }
    if args.all_presets:
        import rszoo

        names = [name for name in rszoo.list_models() if not name.endswith("-tiny")]
        plans = [plan_from_recipe(recipe, model=name, advise=False, **options) for name in names]
        print(json.dumps([p.to_dict() for p in plans], indent=2) if args.json else format_plan_matrix(plans))
        return 0 if all(p.fits for p in plans) else 1
    plan = plan_from_recipe(recipe, **options)
    print(json.dumps(plan.to_dict(), indent=2) if args.json else format_plan(plan))
    return 0 if plan.fits else 1


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _parse_size(text: str) -> tuple[int, int]:
    parts = str(text).lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"--image-size {text!r}: expected WIDTHxHEIGHT in pixels, e.g. 800x800")
    return int(parts[0]), int(parts[1])


# -- recipes ----------------------------------------------------------------------------------------------------------
_SUMMARIES: dict[tuple[str, str], NetworkSummary] = {}


def _summary_for(model: str, init_from: str | None, overrides: dict[str, Any]) -> NetworkSummary:
    """The (cached) summary of a recipe's network: a saved rszoo folder's config if ``init_from`` is one, else the
    preset, with the recipe's ``model.overrides``."""
    import json
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
def _gib(n: int) -> str:
    return f"{n / GiB:.2f}"


def _human(n: int) -> str:
    for unit, size in (("GiB", GiB), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


_DTYPE = {2: "bf16", 4: "fp32"}


def _describe(plan: MemoryPlan) -> str:
    s = plan.settings
    if s["strategy"] in ("fsdp2", "fsdp1"):
        how = (
            f"{s['strategy']} HSDP (shard over {s['shard_size']} GPUs/node, replicate over {s['nodes']} nodes)"
            if s["hsdp"]
            else f"{s['strategy']} full sharding over {s['shard_size']} GPUs"
        )
    elif s["world_size"] > 1:
        how = f"{s['strategy']}: DDP replicas on {s['world_size']} GPUs"
    else:
        how = "1 GPU, unsharded"
    precision = (
        f"{_DTYPE[s['dtype_bytes']['compute']]} compute, {_DTYPE[s['dtype_bytes']['master']]} master weights"
    )
    stage = "GRPO" if s["stage"] == "grpo" else "SFT"
    return f"{stage}; {how}; {precision}"


def format_plan(plan: MemoryPlan) -> str:
    """The per-GPU table, the verdict, the global batch arithmetic and (if needed) what to change."""
    s, g = plan.settings, plan.gpu
    master, compute = _DTYPE[s["dtype_bytes"]["master"]], _DTYPE[s["dtype_bytes"]["compute"]]
    ckpt = s["activation_checkpointing"]
    width = 46
    lines = [
        f"rszoo plan: {plan.model} -- {_describe(plan)}",
        f"  {s['num_parameters']:,} parameters, {s['trainable_parameters']:,} trainable"
        + (f" (frozen: {', '.join(sorted(s['freeze']))})" if s["freeze"] else ""),
    ]
    if s["stage"] == "sft":
        lines.append(
            f"  micro-batch {s['micro_batch']} x {s['seq_len']} tokens; {s['visual_tokens_per_image']} visual tokens "
            f"({s['vision_patches_per_image']} patches) per image, {s['images_per_sample']} image(s) per sample"
        )
    else:
        lines.append(
            f"  {s['micro_batch']} prompt(s) x G={s['num_generations']} rollouts x {s['completion_len']} completion "
            f"tokens; prompt {s['prompt_tokens']} tokens ({s['visual_tokens_per_image']} visual per image)"
            + ("; frozen reference model" if s["reference_model"] else "")
        )
    offload = " (offloaded)" if s["cpu_offload"] else ""
    rows: list[tuple[str, int, str]] = [
        (f"parameters ({master} sharded master){offload}", g["parameters"], "exact"),
        (f"gradients ({_DTYPE[s['dtype_bytes']['grad']]}){offload}", g["gradients"], "exact"),
        (f"optimizer states ({s['optimizer']}, {master}){offload}", g["optimizer_states"], "exact"),
    ]
    if "reference_model" in g:
        rows.append(("GRPO reference model (frozen)", g["reference_model"], "exact"))
    buffers = (
        "FSDP all-gather/reduce-scatter buffers"
        if s["strategy"] in ("fsdp2", "fsdp1")
        else "DDP/autocast buffers"
    )
    rows += [
        (buffers, g["comm_buffers"], "estimate"),
        (
            f"activations, checkpointing ON ({compute})" + (" <-" if ckpt else ""),
            plan.activations_checkpointed,
            "estimate" + ("" if ckpt else ", not used"),
        ),
        (
            f"activations, checkpointing OFF ({compute})" + ("" if ckpt else " <-"),
            plan.activations_full,
            "estimate" + (", not used" if ckpt else ""),
        ),
        ("logits + loss buffers (fp32 x vocab)", g["logits"], "estimate"),
    ]
    if "rollout" in g:
        rows.append(("rollout phase (KV cache, logits, buffers)", g["rollout"], "estimate"))
    rows += [
        ("optimizer step temporaries", g["optimizer_step"], "estimate"),
        ("reserve (CUDA context, NCCL, workspaces)", g["reserve"], "fixed"),
    ]
    lines.append(f"  {'per GPU':<{width}}{'GiB':>9}")
    for label, value, kind in rows:
        lines.append(f"  {label:<{width}}{_gib(value):>9}   {kind}")
    lines.append("  " + "-" * (width + 9))
    phase = {
        "forward/backward": "states + buffers + activations + logits",
        "optimizer step": "states + optimizer step temporaries",
        "rollout": "states + rollout phase",
    }[plan.peak_phase]
    lines.append(
        f"  {'total at peak (' + plan.peak_phase + ')':<{width}}{_gib(plan.total):>9}   = {phase} + reserve"
    )
    lines.append(f"  {'GPU memory':<{width}}{_gib(plan.gpu_memory):>9}")
    share = 100 * plan.total / plan.gpu_memory
    lines.append(f"  verdict: {plan.verdict.upper()} ({share:.0f}% of the GPU)")
    if plan.host:
        lines.append(
            "  host memory per GPU rank: "
            + ", ".join(f"{k.replace('_', ' ')} {_human(v)}" for k, v in plan.host.items())
        )
    lines.append(f"  global batch: {s['batch_arithmetic']}")
    if plan.verdict != "fits":
        name, value = plan.dominant
        label = LABELS.get(name, name)
        lines.append(
            f"  dominating term: {label} ({_gib(value)} GiB, {100 * value / plan.total:.0f}% of the total)"
        )
        if plan.advice:
            lines.append("  what to change (each alone; the total it gives):")
            lines += [f"    - {line}" for line in plan.advice]
    for note in plan.notes:
        lines.append(f"  note: {note}")
    lines.append(
        "  Parameters, gradients and optimizer states are exact for FSDP2; buffers, activations and logits are "
        "estimates (model: rszoo.training.planner)."
    )
    return "\n".join(lines)


def format_plan_matrix(plans: list[MemoryPlan]) -> str:
    """Several plans side by side (one column per model), e.g. every preset under one recipe's settings."""
    keys = [
        ("parameters", lambda p: p.gpu["parameters"]),
        ("gradients", lambda p: p.gpu["gradients"]),
        ("optimizer states", lambda p: p.gpu["optimizer_states"]),
        ("reference model", lambda p: p.gpu.get("reference_model", 0)),
        ("comm buffers", lambda p: p.gpu["comm_buffers"]),
        ("activations ckpt ON", lambda p: p.activations_checkpointed),
        ("activations ckpt OFF", lambda p: p.activations_full),
        ("logits + loss", lambda p: p.gpu["logits"]),
        ("rollout phase", lambda p: p.gpu.get("rollout", 0)),
        ("reserve", lambda p: p.gpu["reserve"]),
        ("total (GiB)", lambda p: p.total),
    ]
    col = max(16, *(len(p.model) + 2 for p in plans))
    lines = [
        _describe(plans[0])
        + (" (activation checkpointing on)" if plans[0].settings["activation_checkpointing"] else "")
    ]
    lines.append(f"{'per GPU, GiB':<24}" + "".join(f"{p.model:>{col}}" for p in plans))
    for label, get in keys:
        if not any(get(p) for p in plans):  # e.g. no reference model or rollout phase in SFT
            continue
        lines.append(f"{label:<24}" + "".join(f"{_gib(get(p)):>{col}}" for p in plans))
    lines.append(f"{'GPU memory':<24}" + "".join(f"{_gib(p.gpu_memory):>{col}}" for p in plans))
    lines.append(f"{'verdict':<24}" + "".join(f"{p.verdict:>{col}}" for p in plans))
    lines.append(
        "Parameters, gradients and optimizer states are exact for FSDP2; the rest are estimates "
        "(rszoo.training.planner)."
    )
    return "\n".join(lines)
