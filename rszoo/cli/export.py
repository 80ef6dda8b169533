"""``rszoo export CHECKPOINT --out DIR``: turn a training checkpoint into a model folder loadable by from_pretrained."""

from __future__ import annotations

import argparse

NAME = "export"
HELP = "export a training checkpoint (.ckpt, or a run directory) to a save_pretrained folder"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint", help="a step=N.ckpt file or folder (sharded), or a run directory (uses its latest step)"
    )
    parser.add_argument("--out", required=True, help="the model folder to write")
    parser.add_argument("--max-shard-size", default="5GB")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rszoo.training.export import export_checkpoint

    folder = export_checkpoint(Path(args.checkpoint), Path(args.out), max_shard_size=args.max_shard_size)
    print(f"[rszoo] exported to {folder}")
    return 0
