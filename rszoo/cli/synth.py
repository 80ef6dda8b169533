"""``rszoo synth``: write a synthetic remote-sensing data set (scenes, bi-temporal pairs or a large image).

Examples::

    rszoo synth data/synth --num-scenes 64 --seed 0 --size 256
    rszoo synth data/pairs --kind pairs --num-scenes 16
    rszoo synth data/large --kind large --size 4096 --geotiff
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

NAME = "synth"
HELP = "Generate a synthetic remote-sensing data set (images, scene graphs, captions, VQA, grounding, detection)."

_TASKS = ("caption", "vqa", "grounding", "detection")


def _tasks(value: str) -> list[str]:
    tasks = [t.strip() for t in value.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in _TASKS]
    if not tasks or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown task(s) {unknown or value!r}; give a comma-separated subset of {','.join(_TASKS)}"
        )
    return tasks


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``synth`` options to ``parser``."""
    parser.add_argument("out_dir", type=Path, help="output folder (created if missing)")
    parser.add_argument(
        "--kind",
        choices=("scenes", "pairs", "large"),
        default="scenes",
        help="scenes: single-date tiles with text tasks; pairs: bi-temporal change pairs; large: one big image",
    )
    parser.add_argument("--num-scenes", type=int, default=64, help="number of scenes or pairs (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="data set seed (same seed, same bytes)")
    parser.add_argument(
        "--size", type=int, default=None, help="image side in pixels (default 256; 4096 for --kind large)"
    )
    parser.add_argument(
        "--tasks",
        type=_tasks,
        default=list(_TASKS),
        help=f"comma-separated subset of {','.join(_TASKS)} (scenes)",
    )
    parser.add_argument(
        "--gsd", type=float, default=None, help="metres per pixel (default: drawn in 0.3-0.8)"
    )
    parser.add_argument("--density", type=float, default=1.0, help="object density multiplier (default 1)")
    parser.add_argument(
        "--cloud-cover", type=float, default=0.0, help="cloud fraction 0-1 (scenes; t1 of pairs)"
    )
    parser.add_argument(
        "--geotiff", action="store_true", help="large: also write a GeoTIFF (UTM, via rasterio)"
    )
    parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")


def _check(args: argparse.Namespace) -> str | None:
    if args.num_scenes < 1:
        return f"--num-scenes must be >= 1, got {args.num_scenes}"
    if args.size is not None and args.size < 16:
        return f"--size must be >= 16 pixels, got {args.size}"
    if args.gsd is not None and args.gsd <= 0:
        return f"--gsd must be positive (metres per pixel), got {args.gsd}"
    if args.density <= 0:
        return f"--density must be positive, got {args.density}"
    if not 0.0 <= args.cloud_cover <= 1.0:
        return f"--cloud-cover must be within [0, 1], got {args.cloud_cover}"
    if args.geotiff and args.kind != "large":
        return "--geotiff applies to --kind large only"
    if args.out_dir.exists() and not args.out_dir.is_dir():
        return f"output path {args.out_dir} exists and is not a folder"
    return None


def _summary(kind: str, out_dir: Path, manifest: dict[str, Any], seconds: float) -> str:
    lines = [f"wrote {kind} to {out_dir} in {seconds:.1f} s ({manifest['generator']})"]
    for name, value in manifest.get("files", {}).items():
        lines.append(f"  {name}: {value}")
    for key in ("messages_by_task", "vqa_by_type", "changes_by_kind", "objects_by_category"):
        if manifest.get(key):
            lines.append(f"  {key}: " + ", ".join(f"{k}={v}" for k, v in manifest[key].items()))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Write the data set; 0 on success, 2 for bad arguments."""
    problem = _check(args)
    if problem:
        print(f"rszoo synth: error: {problem}", file=sys.stderr)
        return 2
    from tqdm import tqdm

    from rszoo.data.synth import write_dataset, write_large, write_pairs
    from rszoo.data.synth.render import CHUNK

    started = time.perf_counter()
    if args.kind == "large":
        size = args.size or 4096
        total = -((-size // CHUNK) ** 2)
    else:
        size = args.size or 256
        total = args.num_scenes
    with tqdm(
        total=total, disable=args.no_progress, unit="scene" if args.kind != "large" else "chunk"
    ) as bar:
        try:
            if args.kind == "scenes":
                manifest = write_dataset(
                    args.out_dir,
                    num_scenes=args.num_scenes,
                    seed=args.seed,
                    size=size,
                    tasks=args.tasks,
                    gsd=args.gsd,
                    density=args.density,
                    cloud_cover=args.cloud_cover,
                    progress=bar.update,
                )
            elif args.kind == "pairs":
                manifest = write_pairs(
                    args.out_dir,
                    num_pairs=args.num_scenes,
                    seed=args.seed,
                    size=size,
                    cloud_cover=(0.0, args.cloud_cover),
                    progress=bar.update,
                )
            else:
                manifest = write_large(
                    args.out_dir,
                    seed=args.seed,
                    width=size,
                    height=size,
                    density=args.density,
                    gsd=args.gsd,
                    geotiff=args.geotiff,
                    progress=bar.update,
                )
        except ValueError as exc:
            print(f"rszoo synth: error: {exc}", file=sys.stderr)
            return 2
    print(_summary(args.kind, args.out_dir, manifest, time.perf_counter() - started))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run as ``python -m rszoo.cli.synth ...`` (the ``rszoo`` command wires :func:`configure`/:func:`run`)."""
    parser = argparse.ArgumentParser(prog="rszoo synth", description=HELP)
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
