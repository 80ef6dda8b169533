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
    >>> from rszoo.recipes import RECIPES_DIR
    >>> recipe = str(RECIPES_DIR / "rsground_r1" / "tiny_cot_sft.yaml")
    >>> main(["plan", recipe, "--gpus", "1", "--gpu-mem", "24GiB"])  # doctest: +ELLIPSIS
    rszoo plan: rsground_r1-tiny -- SFT; 1 GPU, unsharded; fp32 compute, fp32 master weights
    ...
      verdict: FITS (5% of the GPU)
    ...
    0
"""

from __future__ import annotations

import argparse
import json

from rszoo.training.planner import LABELS, GiB, MemoryPlan
from rszoo.training.recipe_plan import plan_from_recipe

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
