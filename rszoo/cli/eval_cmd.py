"""``rszoo eval MODEL --data FILE``: evaluate a saved model on a data set; writes a JSON report and pictures."""

from __future__ import annotations

import argparse

NAME = "eval"
HELP = "evaluate a saved model (folder or Hub id) on a data set; writes report.json and a PNG of samples"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a saved rszoo model folder (e.g. runs/<name>/model) or a Hub id")
    parser.add_argument(
        "--data", required=True, help="evaluation data (for grounding models: grounding JSONL)"
    )
    parser.add_argument("--out", default=None, help="report folder (default: <model>/eval)")
    parser.add_argument("--max-samples", type=int, default=None, help="evaluate only the first N samples")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import rszoo
    from rszoo.cli.main import EXIT_BAD_INPUT, family_cli

    model = rszoo.load_model(args.model, revision=args.revision)
    module = family_cli(model.config.family)
    if module is None or not hasattr(module, "evaluate"):
        print(f"rszoo eval: {model.config.family!r} models have no evaluation yet")
        return EXIT_BAD_INPUT
    out = Path(args.out) if args.out else Path(args.model) / "eval"
    metrics = module.evaluate(model, args, out)
    print(json.dumps(metrics, indent=2))
    print(f"[rszoo] report: {out / 'report.json'}")
    return 0
