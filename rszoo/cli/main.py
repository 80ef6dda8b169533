"""The ``rszoo`` command line.

Each command is a module exposing ``NAME``, ``HELP``, ``configure(parser)`` and ``run(args) -> int``. The generic
commands live in :mod:`rszoo.cli`; a model package adds its own by shipping ``rszoo/models/<family>/cli.py`` with a
``COMMANDS`` list of such modules (or objects), discovered here without touching other models' code. Family-specific
behaviour of the generic commands (``eval``, ``predict``) is looked up the same way: ``rszoo/models/<family>/cli.py``
may define ``evaluate(model, args)`` and ``predict(model, args)``.

Exit codes: 0 success, 1 the command ran but failed (e.g. training diverged), 2 bad input (arguments, recipe, files).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "family_cli", "main"]

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

_GENERIC = (
    "rszoo.cli.list_cmd",
    "rszoo.cli.synth",
    "rszoo.cli.train",
    "rszoo.cli.eval_cmd",
    "rszoo.cli.predict",
    "rszoo.cli.export",
    "rszoo.cli.publish",
    "rszoo.cli.demo",
    "rszoo.cli.plan",
)


def family_cli(family: str) -> ModuleType | None:
    """The ``rszoo.models.<family>.cli`` module, if the family has one."""
    try:
        return importlib.import_module(f"rszoo.models.{family}.cli")
    except ModuleNotFoundError as exc:
        if exc.name == f"rszoo.models.{family}.cli":
            return None
        raise


def _commands() -> list[Any]:
    commands = [importlib.import_module(name) for name in _GENERIC]
    import rszoo.models as models_pkg

    for info in pkgutil.iter_modules(models_pkg.__path__):
        if info.ispkg:
            module = family_cli(info.name)
            commands += list(getattr(module, "COMMANDS", []) if module else [])
    return commands


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (every command with its own ``--help``)."""
    from rszoo import __version__

    parser = argparse.ArgumentParser(
        prog="rszoo",
        description="rszoo: remote-sensing multimodal foundation models (list, synth, train, eval, predict, export, publish).",
    )
    parser.add_argument("--version", action="version", version=f"rszoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in _commands():
        sp = sub.add_parser(
            command.NAME, help=command.HELP, description=getattr(command, "DESCRIPTION", command.HELP)
        )
        command.configure(sp)
        sp.set_defaults(_run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rszoo`` console script."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `key=value` overrides may come after options (`rszoo train r.yaml --dry-run a=1`); argparse stops at the flag
    if (
        extra
        and isinstance(getattr(args, "overrides", None), list)
        and all("=" in e and not e.startswith("-") for e in extra)
    ):
        args.overrides += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "_run", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, KeyError) as exc:
        # bad input: recipes, configs, data files, names. The message says what to fix.
        print(f"rszoo {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
