"""``rszoo predict MODEL --image PATH ...``: run a saved model on one image; draws the answer where it is visual."""

from __future__ import annotations

import argparse

NAME = "predict"
HELP = "run a saved model on an image (grounding: --expression; others: --prompt); writes an annotated PNG"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a saved rszoo model folder or a Hub id")
    parser.add_argument("--image", required=True, help="PNG/JPEG/GeoTIFF image")
    parser.add_argument("--prompt", default=None, help="free-form question (chat)")
    parser.add_argument("--expression", default=None, help="referring expression (grounding models)")
    parser.add_argument("--out", default=None, help="annotated PNG to write (default: <image>.pred.png)")
    parser.add_argument("--max-new-tokens", type=int, default=None)


def run(args: argparse.Namespace) -> int:
    import rszoo
    from rszoo.cli.main import family_cli
    from rszoo.data.images import load_image

    model = rszoo.load_model(args.model)
    module = family_cli(model.config.family)
    if module is not None and hasattr(module, "predict"):
        return int(module.predict(model, args) or 0)
    if not args.prompt:
        raise ValueError("--prompt is required for this model")
    image = load_image(args.image).pixels
    conversation = [
        {
            "role": "user",
            "content": [{"type": "image", "image": image}, {"type": "text", "text": args.prompt}],
        }
    ]
    kwargs = {"max_new_tokens": args.max_new_tokens} if args.max_new_tokens else {}
    print(model.chat([conversation], [[image]], **kwargs)[0])
    return 0
