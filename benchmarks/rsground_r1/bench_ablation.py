"""RSGround-R1's ablation in miniature (paper Tables 3-5, Fig. 5) on synthetic grounding with the tiny preset.

1. CoT-SFT once (position-aware reasoning written from the synthetic scene graphs);
2. GRPO from that model, three ways, identical seeds, data and steps:
   * ``iou``          — format + IoU rewards (the GRPO baseline);
   * ``iou+rpos``     — + 0.1 R_pos (alpha 2.5);
   * ``iou+rpos+sc``  — + spatial-consistency weighting (lambda_m 1.2, lambda_v 1, w in [0.5, 3]);
3. Acc@0.5 and mIoU on held-out images every ``EVAL_EVERY`` steps, and the reward std across rollouts per step.

The tiny model is a random-init toy: its absolute accuracy is low and the curves are noisy. What the benchmark shows is
the whole mechanism running end to end and how the variants move; the numbers are reported as they come out.

Run: ``python benchmarks/rsground_r1/bench_ablation.py`` (about 15-25 minutes on 2 CPU cores).
"""

from __future__ import annotations

import csv
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, __file__.rsplit("/", 2)[0])
from _common import save_result

SCENES, SIZE, SFT_STEPS, GRPO_STEPS, EVAL_EVERY, EVAL_SAMPLES, SEED = 192, 224, 800, 60, 15, 48, 0
VARIANTS = {
    "iou": ["stage_args.rewards=[{name: format}, {name: iou}]", "stage_args.group_weight=null"],
    "iou+rpos": [
        "stage_args.rewards=[{name: format}, {name: iou}, {name: positional, weight: 0.1, alpha: 2.5}]",
        "stage_args.group_weight=null",
    ],
    "iou+rpos+sc": [],  # the recipe's defaults: all three components
}


def _column(path: Path, key: str) -> list[tuple[int, float]]:
    out = []
    for csv_path in sorted(path.glob("logs*/metrics.csv")):
        with csv_path.open() as fh:
            for row in csv.DictReader(fh):
                if row.get(key):
                    out.append((int(row["step"]), float(row[key])))
    return out


def main() -> None:
    from rszoo.data.synth import write_dataset
    from rszoo.models.rsground_r1.data import prepare_grounding_data
    from rszoo.recipes import RECIPES_DIR, load_recipe
    from rszoo.training.run import train

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_dataset(root / "data", num_scenes=SCENES, seed=SEED, size=SIZE)
        paths = prepare_grounding_data(root / "data", val_fraction=0.2, seed=SEED)
        common = [
            f"eval.data={paths['grounding_val']}",
            f"eval.max_samples={EVAL_SAMPLES}",
            "logging.mlflow=false",
            "trainer.enable_progress_bar=false",
            f"seed={SEED}",
        ]
        sft = train(
            load_recipe(
                RECIPES_DIR / "rsground_r1" / "tiny_cot_sft.yaml",
                [
                    f"data.train={paths['cot_sft']}",
                    f"output_dir={root / 'sft'}",
                    f"trainer.max_steps={SFT_STEPS}",
                    *common,
                ],
            )
        )
        results["cot_sft"] = {"eval": sft.eval}
        print("CoT-SFT", sft.eval, flush=True)
        for name, overrides in VARIANTS.items():
            run_dir = root / f"grpo_{name}"
            res = train(
                load_recipe(
                    RECIPES_DIR / "rsground_r1" / "tiny_grpo.yaml",
                    [
                        f"model.init_from={sft.model_dir}",
                        f"data.train={paths['grounding_train']}",
                        f"output_dir={run_dir}",
                        f"trainer.max_steps={GRPO_STEPS}",
                        f"eval.every_n_steps={EVAL_EVERY}",
                        "checkpoint.every_n_steps=1000",
                        *common,
                        *overrides,
                    ],
                )
            )
            results[name] = {
                "final_eval": res.eval,
                "acc@0.5": [(0, sft.eval["acc@0.5"]), *_column(run_dir, "eval/acc_at_0.5")],
                "miou": [(0, sft.eval["miou"]), *_column(run_dir, "eval/miou")],
                "parse_failure_rate": [
                    (0, sft.eval["parse_failures"] / sft.eval["n"]),
                    *[(s, v / EVAL_SAMPLES) for s, v in _column(run_dir, "eval/parse_failures")],
                ],
                "reward_std": _column(run_dir, "train/reward_std"),
                "reward": _column(run_dir, "train/reward"),
            }
            print(name, res.eval, flush=True)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(18, 3.6))
    for name in VARIANTS:
        r = results[name]
        for ax, key in zip((axes[0], axes[1], axes[3]), ("acc@0.5", "miou", "parse_failure_rate")):
            steps, values = zip(*r[key])
            ax.plot(steps, values, marker="o", label=name)
        steps, values = zip(*r["reward_std"])
        window = 5
        smooth = [
            sum(values[max(0, i - window + 1) : i + 1]) / len(values[max(0, i - window + 1) : i + 1])
            for i in range(len(values))
        ]
        axes[2].plot(steps, smooth, label=name)
    for ax, title in zip(
        axes,
        (
            "Acc@0.5 (held-out images)",
            "mIoU (held-out images)",
            "reward std across rollouts (5-step mean)",
            "unparseable answers (held-out)",
        ),
    ):
        ax.set_title(title)
        ax.set_xlabel("GRPO step (0 = after CoT-SFT)")
        ax.legend()
    save_result(
        "rsground_r1_ablation",
        {
            "settings": {
                "scenes": SCENES,
                "size": SIZE,
                "sft_steps": SFT_STEPS,
                "grpo_steps": GRPO_STEPS,
                "eval_every": EVAL_EVERY,
                "eval_samples": EVAL_SAMPLES,
                "model": "rsground_r1-tiny (random init, 223k parameters)",
            },
            "results": results,
        },
        fig,
    )


if __name__ == "__main__":
    main()
