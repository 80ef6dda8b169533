"""RSGround-R1's command-line pieces: ``rszoo eval``/``rszoo predict`` for grounding models and ``rszoo cot``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["COMMANDS", "evaluate", "predict"]


def evaluate(model: Any, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Grounding accuracy on ``args.data`` (grounding JSONL); report, predictions and a PNG in ``out``."""
    from rszoo.data.grounding import load_grounding_jsonl
    from rszoo.models.rsground_r1.task import evaluate_grounding

    records, report = load_grounding_jsonl(args.data, check_images=True)
    if args.max_samples:
        records = records[: args.max_samples]
    if not records:
        raise ValueError(f"{args.data}: no usable grounding records ({report.summary()})")
    return evaluate_grounding(model, records, out, batch_size=args.batch_size)


def predict(model: Any, args: argparse.Namespace) -> int:
    """Ground ``--expression`` in ``--image``; print the answer and draw the box."""
    from rszoo.data.images import load_image
    from rszoo.metrics.grounding import plot_grounding

    if not args.expression:
        raise ValueError(
            "--expression is required for grounding models, e.g. --expression 'the ship in the top right'"
        )
    image = load_image(args.image).pixels
    kwargs = {"max_new_tokens": args.max_new_tokens} if args.max_new_tokens else {}
    result = model.ground([image], [args.expression], **kwargs)[0]
    print(result["text"])
    print(f"box (original pixels): {result['box']}")
    out = Path(args.out) if args.out else Path(args.image).with_suffix(".pred.png")
    _draw_prediction(image, result["box"], args.expression, out, plot_grounding)
    print(f"[rszoo] drawn: {out}")
    return 0


def _draw_prediction(image: Any, box: Any, expression: str, out: Path, plot: Any) -> None:
    # no GT at prediction time: draw the prediction only (plot_grounding draws GT in green when given)
    plot(image, box, None, expression, out)


class _CoTCommand:
    """``rszoo cot``: build RSGround-R1 CoT-SFT data (messages JSONL) from grounding records or external CoT."""

    NAME = "cot"
    HELP = "RSGround-R1: write CoT-SFT messages from grounding JSONL (position-aware writer) or filter external CoT"

    @staticmethod
    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "source", help="grounding JSONL (with facts) or, with --external, external CoT JSONL"
        )
        parser.add_argument("--out", required=True, help="messages JSONL to write")
        parser.add_argument(
            "--external", action="store_true", help="source is externally written CoT (paper filters)"
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--max-pixels", type=int, default=448 * 448, help="the model's smart_resize max_pixels"
        )
        parser.add_argument(
            "--min-pixels", type=int, default=56 * 56, help="the model's smart_resize min_pixels"
        )

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        from rszoo.data import cot
        from rszoo.data.records import write_jsonl

        resize = {"min_pixels": args.min_pixels, "max_pixels": args.max_pixels}
        if args.external:
            rows, report = cot.load_external_cot(args.source)
            samples = cot.build_external_cot_sft(rows, **resize)
            print(report.summary())
        else:
            from rszoo.data.grounding import load_grounding_jsonl

            records, report = load_grounding_jsonl(args.source)
            samples = cot.build_cot_sft(records, seed=args.seed, **resize)
            print(report.summary())
        n = write_jsonl(args.out, samples)
        print(f"[rszoo] wrote {n} CoT-SFT samples to {args.out}")
        return 0


COMMANDS = [_CoTCommand]
