"""``rszoo train RECIPE [key=value ...]``: fine-tune a model from a YAML recipe."""

from __future__ import annotations

import argparse

NAME = "train"
HELP = "train from a recipe (recipes/<model>/<name>.yaml) with key=value overrides"
DESCRIPTION = (
    "Train from a YAML recipe. Overrides use OmegaConf dot syntax, e.g. "
    "`rszoo train recipes/rsground_r1/tiny_grpo.yaml trainer.max_steps=20 data.batch_size=2`. "
    "The resolved recipe is printed first; --dry-run stops there."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="path to a recipe YAML")
    parser.add_argument("overrides", nargs="*", help="key=value overrides (OmegaConf dotlist)")
    parser.add_argument(
        "--dry-run", action="store_true", help="validate and print the resolved recipe, then exit"
    )


def run(args: argparse.Namespace) -> int:
    from rszoo.recipes import load_recipe, recipe_to_yaml

    recipe = load_recipe(args.recipe, args.overrides)
    if args.dry_run:
        print(recipe_to_yaml(recipe))
        return 0
    from rszoo.training.run import train

    result = train(recipe)
    if not result.is_global_zero:
        return 0
    print(f"[rszoo] run directory: {result.run_dir}")
    if result.model_dir:
        print(f"[rszoo] final model:   {result.model_dir}  (rszoo.load_model('{result.model_dir}'))")
    if result.mlflow_uri:
        print(f"[rszoo] MLflow:        mlflow ui --backend-store-uri {result.mlflow_uri}")
    if result.eval:
        print(
            "[rszoo] evaluation:    "
            + ", ".join(f"{k}={v:.4f}" for k, v in result.eval.items() if isinstance(v, float))
        )
    return 0
