"""``rszoo publish FOLDER REPO_ID``: upload a saved model folder to the Hugging Face Hub."""

from __future__ import annotations

import argparse

NAME = "publish"
HELP = "upload a saved model folder to the Hugging Face Hub (validates the model card first; --dry-run lists files)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "folder", help="a folder written by save_pretrained / rszoo train (runs/<name>/model)"
    )
    parser.add_argument("repo_id", help="Hub repository, e.g. my-org/rsground_r1-3b-dior")
    parser.add_argument("--revision", default=None, help="branch to push to")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument(
        "--dry-run", action="store_true", help="check the folder and list what would be uploaded"
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rszoo.config import CONFIG_FILE, ModelConfig
    from rszoo.hub.cards import parse_card, validate_card_metadata

    folder = Path(args.folder)
    if not (folder / CONFIG_FILE).is_file():
        raise FileNotFoundError(
            f"{folder} is not an rszoo model folder (no {CONFIG_FILE}); export or train one first"
        )
    ModelConfig.from_checkpoint(folder)  # the config must load
    readme = folder / "README.md"
    if readme.is_file():
        meta, _ = parse_card(readme.read_text(encoding="utf-8"), where=str(readme))
        validate_card_metadata(meta, where=str(readme))
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    if args.dry_run:
        print(f"would upload {len(files)} files to {args.repo_id}:")
        for name in files:
            print(f"  {name}")
        return 0
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id=args.repo_id, private=args.private or None, exist_ok=True)
    info = api.upload_folder(repo_id=args.repo_id, folder_path=str(folder), revision=args.revision)
    print(f"[rszoo] uploaded {len(files)} files: {info}")
    return 0
