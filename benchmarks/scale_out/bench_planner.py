"""Memory plan of every real preset on 1 x 8 A800 80GB (FSDP2 full sharding, bf16 mixed precision) at the papers'
settings, with activation checkpointing on and off -- against the usual back-of-the-envelope alternatives.

Settings (per GPU micro-batch x tokens):

* RSGround-R1 CoT-SFT (Qwen2.5-VL-3B): micro-batch 1-2, max_length 4096-6144, DIOR-RSVG 800 x 800 images
  (smart_resize -> 812 x 812 = 841 visual tokens);
* RSCoVLM SFT (Qwen2.5-VL-3B / 7B): max_length 6144, micro-batch 1-2, images at the 1008 x 1008 pixel budget
  (1296 visual tokens);
* RSGround-R1 GRPO (3B): 1 prompt per GPU x G = 8 rollouts, max_completion_length 2048 (VLM-R1), beta 0.04.

Each preset is planned under its own paper's settings (other families under RSGround-R1's SFT grid). The alternatives, restated here from their sources:

* the rule of thumb "16 bytes per parameter / world size" for mixed-precision AdamW model states
  (fp32 master 4 + fp32 gradient 4 + two fp32 moments 8; ZeRO paper, Rajbhandari et al. 2020, section 3.1 counts 16
  bytes with fp16 parameters + gradients and fp32 master + moments);
* DeepSpeed's ``estimate_zero3_model_states_mem_needs`` without offload (deepspeedai/DeepSpeed,
  ``deepspeed/runtime/zero/stage3.py``): ``4 * largest_layer_params + 18 * total_params / total_gpus`` bytes per GPU,
  where ``largest_layer_params`` is the largest parameter count owned directly by one module.

Ratios are ours / alternative for the model-state part only (parameters + gradients + optimizer states; for DeepSpeed
also our FSDP buffers, since its formula includes a gathered-layer buffer). The alternatives have no activation or
logits term, which is where the fit is decided for VLM fine-tuning.

Run: ``python benchmarks/scale_out/bench_planner.py`` (writes ``benchmarks/results/memory_plan.{json,png}``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/_common.py

from _common import save_result

GPUS, GPU_MEMORY_GIB = 8, 80

RSGROUND_SFT = [
    {"setting": "RSGround-R1 SFT", "image_size": (800, 800), "micro_batch": mb, "seq_len": seq}
    for mb in (1, 2)
    for seq in (4096, 6144)
]
RSCOVLM_SFT = [
    {"setting": "RSCoVLM SFT", "image_size": (1008, 1008), "micro_batch": mb, "seq_len": 6144}
    for mb in (1, 2)
]
GRPO_SETTING = {
    "setting": "RSGround-R1 GRPO",
    "image_size": (800, 800),
    "micro_batch": 1,
    "stage": "grpo",
    "num_generations": 8,
    "completion_len": 2048,
    "reference_model": True,
}


def settings_for(preset: str) -> list[dict]:
    """The paper settings a preset is planned under: its own paper's; other families get RSGround-R1's SFT grid."""
    if preset.startswith("rscovlm-"):
        return RSCOVLM_SFT
    return RSGROUND_SFT + ([GRPO_SETTING] if preset == "rsground_r1-3b" else [])


def rule_of_thumb_bytes(total_params: int, world: int) -> float:
    """Mixed-precision AdamW model states: 16 bytes per parameter, divided over the world."""
    return 16 * total_params / world


def deepspeed_zero3_bytes(
    total_params: int, largest_layer_params: int, gpus_per_node: int, nodes: int
) -> int:
    """DeepSpeed's ZeRO-3 model-state estimate per GPU without offload, restated."""
    return 4 * largest_layer_params + int(18 * total_params / (gpus_per_node * nodes))


def largest_layer_params(preset: str) -> int:
    """The largest parameter count owned directly by one module (DeepSpeed's ``model_to_params``), on meta."""
    import torch

    import rszoo

    with torch.device("meta"):
        network = rszoo.create_model(preset)
    return max(sum(p.numel() for p in m.parameters(recurse=False)) for m in network.modules())


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import rszoo
    from rszoo.training.planner import GiB, plan_memory, summarize_network

    presets = [name for name in rszoo.list_models() if not name.endswith("-tiny")]
    rows, comparisons, bars = [], [], []
    base = {
        "world_size": GPUS,
        "strategy": "fsdp2",
        "mixed_precision": "bf16",
        "gpu_memory": GPU_MEMORY_GIB * GiB,
    }
    for preset in presets:
        summary = summarize_network(preset)
        settings = settings_for(preset)
        for setting in settings:
            for checkpointing in (True, False):
                kwargs = {k: v for k, v in setting.items() if k != "setting"}
                t0 = time.perf_counter()
                plan = plan_memory(summary, **base, **kwargs, activation_checkpointing=checkpointing)
                elapsed = time.perf_counter() - t0
                states = plan.gpu["parameters"] + plan.gpu["gradients"] + plan.gpu["optimizer_states"]
                row = {
                    "preset": preset,
                    "setting": setting["setting"],
                    "micro_batch": setting["micro_batch"],
                    "seq_len": setting.get("seq_len"),
                    "activation_checkpointing": checkpointing,
                    "plan_seconds": round(elapsed, 4),
                    "model_states_gib": round(states / GiB, 3),
                    **{f"{k}_gib": round(v / GiB, 3) for k, v in plan.gpu.items()},
                    "activations_full_gib": round(plan.activations_full / GiB, 3),
                    "activations_checkpointed_gib": round(plan.activations_checkpointed / GiB, 3),
                    "total_gib": round(plan.total / GiB, 3),
                    "peak_phase": plan.peak_phase,
                    "verdict": plan.verdict,
                    "dominant": plan.dominant[0],
                }
                rows.append(row)
                if setting["setting"] != "RSGround-R1 GRPO":
                    label = f"{preset} b{setting['micro_batch']} L{setting['seq_len']}"
                    label += " ckpt" if checkpointing else " no-ckpt"
                    bars.append((label, plan))
        n = summary.num_parameters
        t0 = time.perf_counter()
        thumb = rule_of_thumb_bytes(n, GPUS)
        largest = largest_layer_params(preset)
        zero3 = deepspeed_zero3_bytes(n, largest, GPUS, 1)
        alternative_seconds = time.perf_counter() - t0
        plan = plan_memory(summary, **base, image_size=(800, 800))
        ours = plan.gpu["parameters"] + plan.gpu["gradients"] + plan.gpu["optimizer_states"]
        comparisons.append(
            {
                "preset": preset,
                "total_params": n,
                "largest_layer_params": largest,
                "ours_model_states_gib": round(ours / GiB, 4),
                "ours_model_states_plus_fsdp_buffers_gib": round((ours + plan.gpu["comm_buffers"]) / GiB, 4),
                "rule_of_thumb_16B_per_param_gib": round(thumb / GiB, 4),
                "deepspeed_zero3_estimate_gib": round(zero3 / GiB, 4),
                "ratio_ours_to_rule_of_thumb": round(ours / thumb, 5),
                "ratio_ours_plus_buffers_to_deepspeed_zero3": round(
                    (ours + plan.gpu["comm_buffers"]) / zero3, 4
                ),
                "alternative_seconds": round(alternative_seconds, 4),
            }
        )

    fig, (ax, ax2) = plt.subplots(
        1, 2, figsize=(17, 6.5), gridspec_kw={"width_ratios": [4, 1.2]}, constrained_layout=True
    )
    terms = [
        ("parameters", "parameters"),
        ("gradients", "gradients"),
        ("optimizer_states", "optimizer states"),
        ("comm_buffers", "FSDP buffers"),
        ("activations", "activations"),
        ("logits", "logits + loss"),
        ("reserve", "reserve"),
    ]
    bottom = [0.0] * len(bars)
    for key, label in terms:
        values = [plan.gpu.get(key, 0) / GiB for _, plan in bars]
        ax.bar(range(len(bars)), values, bottom=bottom, label=label)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.axhline(GPU_MEMORY_GIB, color="black", linestyle="--", linewidth=1)
    ax.text(len(bars) - 0.5, GPU_MEMORY_GIB + 2, f"A800 {GPU_MEMORY_GIB} GB", ha="right")
    ax.set_xticks(range(len(bars)))
    ax.set_xticklabels([label for label, _ in bars], rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("GiB per GPU (1 x 8 A800, FSDP2 full shard, bf16 mixed)")
    ax.set_title("rszoo plan: per-GPU memory at the papers' SFT settings")
    ax.legend(fontsize=8, ncol=2)
    width = 0.25
    for i, (key, label) in enumerate(
        [
            ("ours_model_states_gib", "ours (exact)"),
            ("rule_of_thumb_16B_per_param_gib", "16 B/param / world"),
            ("deepspeed_zero3_estimate_gib", "DeepSpeed ZeRO-3 est."),
        ]
    ):
        ax2.bar(
            [j + (i - 1) * width for j in range(len(comparisons))],
            [c[key] for c in comparisons],
            width,
            label=label,
        )
    ax2.set_xticks(range(len(comparisons)))
    ax2.set_xticklabels([c["preset"] for c in comparisons], fontsize=8)
    ax2.set_ylabel("model states, GiB per GPU")
    ax2.set_title("model states vs rules of thumb")
    ax2.legend(fontsize=8, loc="upper left")
    save_result(
        "memory_plan",
        {
            "hardware": f"1 x {GPUS} A800 {GPU_MEMORY_GIB}GB (planned, not measured)",
            "strategy": "fsdp2 full sharding, MixedPrecisionPolicy(bf16, reduce fp32), AdamW",
            "alternative": "16 bytes/param / world; DeepSpeed estimate_zero3_model_states_mem_needs (no offload)",
            "rows": rows,
            "model_state_comparison": comparisons,
        },
        fig,
    )


if __name__ == "__main__":
    main()
