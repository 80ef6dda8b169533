"""Scale-out on this CPU: tokens/s of the tiny model with 1 vs 2 processes under FSDP2 and DDP, and per-rank parameter
bytes under FSDP2 (world size 2 should hold about half of world size 1).

Every configuration runs `rszoo train` (tiny CoT-SFT recipe, the same global batch of 4 samples per optimizer step) as
a subprocess; tokens/s and per-rank parameter bytes come from the run's own `perf/*` metrics. Two processes on a
2-core machine share the cores, so expect little or no speed-up here: the point is that the sharded path runs and
shards, and what it costs. Reported honestly, whatever the numbers are.
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, __file__.rsplit("/", 2)[0])
from _common import save_result

REPO = Path(__file__).resolve().parents[2]
CONFIGS = [("auto", 1), ("fsdp2", 1), ("fsdp2", 2), ("ddp", 2)]
STEPS = 12


def make_data(root: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(32):
        Image.fromarray(rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)).save(root / f"{i}.png")
        rows.append(
            {
                "id": str(i),
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image", "image": f"{i}.png"},
                            {"type": "text", "text": "Where is the ship?"},
                        ],
                    },
                    {
                        "role": "assistant",
                        "content": f'<think>top left</think><answer>{{"bbox_2d": [{i}, 2, {i + 40}, 60]}}</answer>',
                    },
                ],
            }
        )
    path = root / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(data: Path, out: Path, strategy: str, devices: int) -> dict[str, float]:
    cmd = [
        sys.executable, "-m", "rszoo.cli.main", "train", "recipes/rsground_r1/tiny_cot_sft.yaml",
        f"data.train={data}", f"output_dir={out}", f"trainer.max_steps={STEPS}", "data.global_batch_size=4",
        f"data.batch_size={4 // devices}", f"cluster.devices={devices}", f"cluster.strategy={strategy}",
        "cluster.fsdp.mixed_precision=fp32", "cluster.fsdp.activation_checkpointing=false", "eval.data=null",
        "logging.mlflow=false", "trainer.enable_progress_bar=false", "checkpoint.every_n_steps=1000",
        "checkpoint.save_final_model=false",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // devices))}
    subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True, timeout=1200)
    rows = list(csv.DictReader((out / "logs" / "metrics.csv").open()))
    tps = [float(r["perf/tokens_per_s"]) for r in rows if r.get("perf/tokens_per_s")][
        2:
    ]  # skip warm-up steps
    param_bytes = [float(r["perf/param_bytes_per_rank"]) for r in rows if r.get("perf/param_bytes_per_rank")]
    return {"tokens_per_s": statistics.median(tps), "param_bytes_per_rank": param_bytes[0]}


def main() -> None:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = make_data(Path(tmp))
        for strategy, devices in CONFIGS:
            results[f"{strategy} x{devices}"] = run(
                data, Path(tmp) / f"{strategy}{devices}", strategy, devices
            )
            print(strategy, devices, results[f"{strategy} x{devices}"], flush=True)
    base = results["auto x1"]["tokens_per_s"]
    ratios = {k: v["tokens_per_s"] / base for k, v in results.items()}
    shard_ratio = results["fsdp2 x2"]["param_bytes_per_rank"] / results["fsdp2 x1"]["param_bytes_per_rank"]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    names = list(results)
    axes[0].bar(names, [results[n]["tokens_per_s"] for n in names], color="tab:blue")
    axes[0].set_ylabel("tokens / s")
    axes[0].set_title("tiny SFT throughput (global batch 4)")
    axes[1].bar(names, [results[n]["param_bytes_per_rank"] / 1e6 for n in names], color="tab:orange")
    axes[1].set_ylabel("parameter MB per rank")
    axes[1].set_title(f"FSDP2 x2 / x1 parameter bytes per rank = {shard_ratio:.3f}")
    for ax in axes:
        ax.tick_params(axis="x", rotation=20)
    save_result(
        "scale_out_cpu",
        {
            "steps": STEPS,
            "results": results,
            "tokens_per_s_ratio_to_single_process": ratios,
            "fsdp2_param_bytes_ratio_world2_over_world1": shard_ratio,
            "note": "2 processes share 2 cores here; throughput gains need real devices",
        },
        fig,
    )


if __name__ == "__main__":
    main()
