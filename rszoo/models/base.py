"""The base class of every rszoo network: a plain ``nn.Module`` with Hugging Face style I/O.

``save_pretrained`` writes a self-describing folder (weights as safetensors, sharded with an index above
``max_shard_size``; ``rszoo.json``; tokenizer/processor files; the training recipe when there is one; a model card)
into a temporary folder and renames it into place, so a crash never leaves a half-written model. ``from_pretrained``
loads a local folder or a Hub id (``revision=`` pins a commit) strictly: missing or unexpected weights are an error
unless the caller allows them by name. ``push_to_hub`` uploads exactly the folder ``save_pretrained`` writes.

Networks never import Lightning: a network loads and runs without it.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Self

import torch.nn as nn

from rszoo.config import CONFIG_FILE, ModelConfig

__all__ = ["CheckpointError", "RSZooModel", "resolve_pretrained"]

RECIPE_FILE = "recipe.yaml"


class CheckpointError(RuntimeError):
    """A checkpoint cannot be loaded: missing/unexpected keys, wrong shapes, or a corrupt file."""


def resolve_pretrained(path_or_id: str | os.PathLike[str], revision: str | None = None) -> Path:
    """A local folder for ``path_or_id``: the folder itself, or a Hub snapshot (cache only when offline).

    Example:
        >>> resolve_pretrained("/no/such/folder")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        FileNotFoundError: ...
    """
    path = Path(path_or_id).expanduser()
    if path.is_dir():
        if revision is not None:
            raise ValueError(f"revision={revision!r} only applies to Hub ids, but {path} is a local folder")
        return path
    text = str(path_or_id)
    looks_like_hub_id = text.count("/") == 1 and not text.startswith((".", "/", "~")) and not path.exists()
    if not looks_like_hub_id:
        raise FileNotFoundError(
            f"no model folder at {path}; pass an existing folder or a Hub id 'owner/name'"
        )
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id=text, revision=revision))
    except Exception as exc:
        raise FileNotFoundError(
            f"could not fetch {text!r} (revision {revision or 'main'}) from the Hugging Face Hub: {exc}. "
            "Offline, download it elsewhere and pass the local folder."
        ) from None


class RSZooModel(nn.Module):
    """Base class: holds ``self.config`` and implements save/load/publish around two hooks.

    Subclasses set ``config_class`` and implement :meth:`_save_weights` (write weights and any framework files into a
    folder) and :meth:`_load_pretrained` (build the network from a folder, strictly).
    """

    config_class: ClassVar[type[ModelConfig]] = ModelConfig

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}"
            )
        self.config = config

    # -- hooks ------------------------------------------------------------------------------------------------------
    def _save_weights(self, directory: Path, max_shard_size: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _save_weights")

    @classmethod
    def _foreign_config(cls, directory: Path) -> ModelConfig:
        """The config for a folder without ``rszoo.json`` (e.g. a plain transformers checkpoint), if supported."""
        raise CheckpointError(f"{directory} has no {CONFIG_FILE}; it is not an rszoo model folder")

    @classmethod
    def _load_pretrained(
        cls,
        directory: Path,
        config: ModelConfig,
        allow_missing: tuple[str, ...],
        allow_unexpected: tuple[str, ...],
    ) -> Self:
        raise NotImplementedError(f"{cls.__name__} must implement _load_pretrained")

    # -- public API ---------------------------------------------------------------------------------------------------
    def save_pretrained(
        self,
        save_directory: str | os.PathLike[str],
        *,
        recipe: str | None = None,
        max_shard_size: str = "5GB",
        model_card: bool = True,
        card_context: dict[str, Any] | None = None,
    ) -> Path:
        """Write the model folder atomically and return its path.

        Args:
            save_directory: target folder; an existing folder is replaced as a whole once the new one is complete.
            recipe: the fully resolved training recipe (YAML text), saved as ``recipe.yaml``.
            max_shard_size: shard the weights above this size (e.g. ``"2GB"``), with a ``*.index.json``.
            model_card: render ``README.md`` from ``model_cards/<family>.md``.
            card_context: extra values for the card template (evaluation results, data sets, ...).
        """
        target = Path(save_directory).expanduser().resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            self._save_weights(staging, max_shard_size)
            self.config.save(staging / CONFIG_FILE)
            if recipe is not None:
                (staging / RECIPE_FILE).write_text(recipe, encoding="utf-8")
            if model_card:
                from rszoo.hub.cards import render_model_card

                card = render_model_card(self.config, recipe=recipe, **(card_context or {}))
                (staging / "README.md").write_text(card, encoding="utf-8")
            _replace_dir(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    @classmethod
    def from_pretrained(
        cls,
        pretrained: str | os.PathLike[str],
        *,
        revision: str | None = None,
        allow_missing: tuple[str, ...] | list[str] = (),
        allow_unexpected: tuple[str, ...] | list[str] = (),
        **config_overrides: Any,
    ) -> Self:
        """Load from a local folder or a Hub id, strictly.

        Args:
            pretrained: a folder written by ``save_pretrained`` (or a supported foreign folder, e.g. a plain
                transformers Qwen-VL checkpoint for Qwen-based models), or a Hub id.
            revision: a Hub branch, tag or commit hash.
            allow_missing / allow_unexpected: fnmatch patterns of weight names allowed to be missing from the
                checkpoint / present but unused. Anything else raises :class:`CheckpointError` listing the keys.
            **config_overrides: fields of the saved config to change (e.g. ``max_pixels``).
        """
        directory = resolve_pretrained(pretrained, revision)
        if (directory / CONFIG_FILE).is_file():
            saved = ModelConfig.from_checkpoint(directory)
            if not isinstance(saved, cls.config_class):
                raise CheckpointError(
                    f"{directory} holds a {saved.family!r} model ({type(saved).__name__}); load it with "
                    f"rszoo.load_model or that family's class, not {cls.__name__}"
                )
        else:
            saved = cls._foreign_config(directory)
        config = type(saved).from_dict({**saved.to_dict(), **config_overrides}, source=str(directory))
        return cls._load_pretrained(directory, config, tuple(allow_missing), tuple(allow_unexpected))

    def push_to_hub(
        self,
        repo_id: str,
        *,
        revision: str | None = None,
        private: bool | None = None,
        token: str | None = None,
        commit_message: str = "Upload model with rszoo",
        recipe: str | None = None,
        create_pr: bool = False,
    ) -> Any:
        """Save into a temporary folder and upload it with ``huggingface_hub`` (``create_repo`` + ``upload_folder``)."""
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        with tempfile.TemporaryDirectory(prefix="rszoo-push-") as tmp:
            folder = self.save_pretrained(Path(tmp) / "model", recipe=recipe)
            api.create_repo(repo_id=repo_id, private=private, exist_ok=True)
            return api.upload_folder(
                repo_id=repo_id,
                folder_path=str(folder),
                revision=revision,
                commit_message=commit_message,
                create_pr=create_pr,
            )

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Unique parameters (tied weights count once)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


def check_keys(
    missing: list[str],
    unexpected: list[str],
    allow_missing: tuple[str, ...],
    allow_unexpected: tuple[str, ...],
    where: str,
) -> None:
    """Raise :class:`CheckpointError` for keys not covered by the allowed fnmatch patterns."""

    def uncovered(keys: list[str], patterns: tuple[str, ...]) -> list[str]:
        return sorted(k for k in keys if not any(fnmatch.fnmatch(k, p) for p in patterns))

    bad_missing, bad_unexpected = uncovered(missing, allow_missing), uncovered(unexpected, allow_unexpected)
    if bad_missing or bad_unexpected:
        parts = []
        if bad_missing:
            parts.append(f"{len(bad_missing)} missing key(s): {_preview(bad_missing)}")
        if bad_unexpected:
            parts.append(f"{len(bad_unexpected)} unexpected key(s): {_preview(bad_unexpected)}")
        raise CheckpointError(
            f"{where}: the checkpoint does not match the model ({'; '.join(parts)}). If this is intended, pass "
            "allow_missing=[...] / allow_unexpected=[...] with these names or fnmatch patterns."
        )


def _preview(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... (+{len(keys) - limit} more)" if len(keys) > limit else "")


def _replace_dir(staging: Path, target: Path) -> None:
    """Move ``staging`` to ``target``; an existing ``target`` is swapped out only once ``staging`` is complete."""
    if target.exists():
        backup = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, backup)
        os.replace(staging, target)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.replace(staging, target)
