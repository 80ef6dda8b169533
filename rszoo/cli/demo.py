"""``rszoo demo``: the main job — RSGround-R1's whole pipeline with the tiny preset on a CPU.

1. generate a synthetic remote-sensing grounding data set (scenes, referring expressions with full ground truth);
2. split it by image and write position-aware CoT-SFT data;
3. Stage 1, CoT-SFT (``recipes/rsground_r1/tiny_cot_sft.yaml``), then evaluate;
4. Stage 2, spatially guided GRPO from the Stage 1 model (``recipes/rsground_r1/tiny_grpo.yaml``), then evaluate;
5. print Acc@0.5 and mIoU after each stage, where the models are, and how to open the MLflow runs.

Re-running resumes each stage from its latest checkpoint (``checkpoint.resume=auto``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

NAME = "demo"
HELP = (
    "the main job: synthetic data -> CoT-SFT -> GRPO -> evaluation, tiny RSGround-R1 on a CPU (a few minutes)"
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", default="runs/demo", help="where data, runs and models go (default: runs/demo)"
    )
    parser.add_argument("--num-scenes", type=int, default=160, help="synthetic scenes to generate")
    parser.add_argument("--size", type=int, default=224, help="scene size in pixels")
    parser.add_argument("--sft-steps", type=int, default=600, help="CoT-SFT optimizer steps")
    parser.add_argument("--grpo-steps", type=int, default=40, help="GRPO optimizer steps")
    parser.add_argument(
        "--eval-samples", type=int, default=48, help="validation expressions evaluated per stage"
    )
    parser.add_argument("--seed", type=int, default=0)


def _print_metrics(stage: str, metrics: dict) -> None:
    print(
        f"[rszoo demo] {stage:<8} Acc@0.5 = {metrics['acc@0.5']:.3f}   Acc@0.7 = {metrics['acc@0.7']:.3f}   "
        f"mIoU = {metrics['miou']:.3f}   parse failures = {metrics['parse_failures']}/{metrics['n']}",
        flush=True,
    )


def run(args: argparse.Namespace) -> int:
    from rszoo.data.synth import write_dataset
    from rszoo.models.rsground_r1.data import prepare_grounding_data
    from rszoo.recipes import RECIPES_DIR, load_recipe
    from rszoo.training.run import train

    start = time.time()
    out = Path(args.out).resolve()
    data = out / "data"
    print(
        f"[rszoo demo] 1/4 synthetic data: {args.num_scenes} scenes of {args.size}x{args.size} px -> {data}",
        flush=True,
    )
    write_dataset(data, num_scenes=args.num_scenes, seed=args.seed, size=args.size)
    print("[rszoo demo] 2/4 train/val split by image and position-aware CoT-SFT data", flush=True)
    paths = prepare_grounding_data(
        data, val_fraction=0.2, min_pixels=56 * 56, max_pixels=448 * 448, seed=args.seed
    )

    common = [
        f"eval.data={paths['grounding_val']}",
        f"eval.max_samples={args.eval_samples}",
        f"seed={args.seed}",
        "trainer.enable_progress_bar=true",
    ]
    print("[rszoo demo] 3/4 Stage 1: CoT-SFT", flush=True)
    sft = load_recipe(
        RECIPES_DIR / "rsground_r1" / "tiny_cot_sft.yaml",
        [
            f"data.train={paths['cot_sft']}",
            f"output_dir={out / 'cot_sft'}",
            f"trainer.max_steps={args.sft_steps}",
            "checkpoint.every_n_steps=100",
            *common,
        ],
    )
    sft_result = train(sft)
    _print_metrics("CoT-SFT", sft_result.eval)

    print("[rszoo demo] 4/4 Stage 2: GRPO with R_pos and spatial-consistency weighting", flush=True)
    grpo = load_recipe(
        RECIPES_DIR / "rsground_r1" / "tiny_grpo.yaml",
        [
            f"model.init_from={sft_result.model_dir}",
            f"data.train={paths['grounding_train']}",
            f"output_dir={out / 'grpo'}",
            f"trainer.max_steps={args.grpo_steps}",
            *common,
        ],
    )
    grpo_result = train(grpo)
    _print_metrics("CoT-SFT", sft_result.eval)
    _print_metrics("GRPO", grpo_result.eval)
    minutes = (time.time() - start) / 60
    print(f"[rszoo demo] done in {minutes:.1f} min", flush=True)
    print(f"[rszoo demo] final model:  {grpo_result.model_dir}   (rszoo.load_model(...) / rszoo predict ...)")
    print(f"[rszoo demo] evaluation:   {grpo_result.run_dir / 'eval'} (report.json, samples.png)")
    for name, result in (("CoT-SFT", sft_result), ("GRPO", grpo_result)):
        if result.mlflow_uri:
            print(
                f"[rszoo demo] MLflow {name:<7} .venv/bin/mlflow ui --backend-store-uri {result.mlflow_uri}"
            )
    return 0
