"""``rszoo list``: the zoo (models, backbones, rewards, metrics, data sets, strategies, recipes)."""

from __future__ import annotations

import argparse

NAME = "list"
HELP = "list models, backbones, tokenizers, rewards, metrics, data sets, strategies or recipes"
KINDS = ("models", "backbones", "tokenizers", "rewards", "metrics", "datasets", "strategies", "recipes")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "kind", nargs="?", default="models", choices=KINDS, help="what to list (default: models)"
    )
    parser.add_argument(
        "pattern", nargs="?", default="*", help="fnmatch filter, e.g. 'rsground_r1-*' (default: *)"
    )


def run(args: argparse.Namespace) -> int:
    from rszoo import registry
    from rszoo.recipes import RECIPES_DIR, shipped_recipes

    if args.kind == "recipes":
        import fnmatch

        for path in shipped_recipes():
            rel = str(path.relative_to(RECIPES_DIR))
            if fnmatch.fnmatch(rel, args.pattern):
                print(f"recipes/{rel}")
        return 0
    reg = getattr(registry, args.kind.upper())
    entries = reg.items(args.pattern)
    if not entries:
        print(f"no {args.kind} match {args.pattern!r}")
        return 0
    if args.kind == "models":
        print(f"{'model':<24}{'paper / tasks':<60}{'status'}")
        for e in entries:
            meta = e.meta
            print(
                f"{e.name:<24}{(meta.get('tasks', '') + ' | ' + meta.get('paper', ''))[:58]:<60}{meta.get('status', '')}"
            )
        return 0
    for e in entries:
        detail = e.meta.get("description") or e.meta.get("family") or e.meta.get("kind") or ""
        print(f"{e.name:<28}{detail}")
    return 0
