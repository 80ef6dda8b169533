"""RSCoVLM's command-line pieces: ``rszoo eval`` (multi-task) and ``rszoo predict`` (detection drawn on the image)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["COMMANDS", "evaluate", "predict"]


def evaluate(model: Any, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Multi-task metrics on ``args.data`` (a folder in the synthetic world's layout)."""
    from rszoo.models.rscovlm.evaluate import evaluate_multitask

    return evaluate_multitask(
        model, args.data, out, max_per_task=args.max_samples or 32, batch_size=args.batch_size
    )


def predict(model: Any, args: argparse.Namespace) -> int:
    """With ``--prompt``: answer it. Without: detect objects and draw the quads with labels into a PNG."""
    from rszoo.data.images import load_image
    from rszoo.models.rscovlm.evaluate import draw_detections

    image = load_image(args.image).pixels
    kwargs = {"max_new_tokens": args.max_new_tokens} if args.max_new_tokens else {}
    if args.prompt:
        print(model.answer([image], [args.prompt], **kwargs)[0])
        return 0
    result = model.detect([image], **kwargs)[0]
    print(json.dumps({"detections": result.detections, "parser": result.counts}, indent=1))
    out = Path(args.out) if args.out else Path(args.image).with_suffix(".pred.png")
    draw_detections(image, result.detections, out, title=f"{len(result.detections)} objects")
    print(f"[rszoo] drawn: {out}")
    return 0


COMMANDS: list[Any] = []
