"""Model cards: rendered from ``model_cards/<family>.md`` templates and validated locally.

A template is Markdown with YAML front matter, rendered with Jinja2. The front matter carries the Hub metadata
(license, base_model, tags, datasets, pipeline_tag, ``library_name: rszoo``) and a ``model-index`` with the paper's
reported results, each with a ``source`` naming the paper table, so nobody mistakes them for results of this checkpoint.
``huggingface_hub``'s own validation needs the network, so :func:`validate_card_metadata` checks the schema offline.

Template variables: ``model_name``, ``family``, ``config_json``, ``base_model``, ``recipe``, ``rszoo_version`` and any
``card_context`` passed to ``save_pretrained`` (e.g. ``eval_results``: a dict of metric -> value measured on this
checkpoint).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["CardError", "card_template_path", "parse_card", "render_model_card", "validate_card_metadata"]

TEMPLATES = Path(__file__).resolve().parents[2] / "model_cards"
_REQUIRED = ("license", "library_name", "pipeline_tag", "tags")


class CardError(ValueError):
    """A model card template or its metadata is invalid; the message lists every problem."""


def card_template_path(family: str) -> Path:
    """``model_cards/<family>.md``; a clear error if the template does not exist."""
    path = TEMPLATES / f"{family}.md"
    if not path.is_file():
        raise CardError(f"no model card template for {family!r} at {path}; add model_cards/{family}.md")
    return path


def parse_card(text: str, where: str = "model card") -> tuple[dict[str, Any], str]:
    """Split a card into (metadata dict, Markdown body)."""
    if not text.startswith("---\n"):
        raise CardError(f"{where}: must start with a YAML front-matter block delimited by '---' lines")
    end = text.find("\n---\n", 4)
    if end < 0:
        raise CardError(f"{where}: the YAML front matter is not closed by a '---' line")
    try:
        meta = yaml.safe_load(text[4:end]) or {}
    except yaml.YAMLError as exc:
        raise CardError(f"{where}: invalid YAML front matter: {exc}") from None
    if not isinstance(meta, dict):
        raise CardError(f"{where}: the front matter must be a mapping")
    return meta, text[end + 5 :]


def validate_card_metadata(meta: dict[str, Any], where: str = "model card") -> None:
    """Check the Hub metadata schema offline; raises :class:`CardError` listing every problem."""
    problems = [f"missing '{key}'" for key in _REQUIRED if key not in meta]
    if meta.get("library_name") not in (None, "rszoo"):
        problems.append(f"library_name must be 'rszoo', got {meta.get('library_name')!r}")
    if "tags" in meta and not (
        isinstance(meta["tags"], list) and all(isinstance(t, str) for t in meta["tags"])
    ):
        problems.append("tags must be a list of strings")
    for key in ("datasets",):
        if key in meta and not isinstance(meta[key], list):
            problems.append(f"{key} must be a list")
    if "base_model" in meta and not isinstance(meta["base_model"], str | list):
        problems.append("base_model must be a Hub id or a list of them")
    for i, entry in enumerate(meta.get("model-index") or []):
        if not isinstance(entry, dict) or "name" not in entry or not isinstance(entry.get("results"), list):
            problems.append(f"model-index[{i}] needs 'name' and a 'results' list")
            continue
        for j, result in enumerate(entry["results"]):
            at = f"model-index[{i}].results[{j}]"
            if not isinstance(result.get("task"), dict) or "type" not in result["task"]:
                problems.append(f"{at}.task.type is required")
            dataset = result.get("dataset")
            if not isinstance(dataset, dict) or not {"name", "type"} <= set(dataset):
                problems.append(f"{at}.dataset needs 'name' and 'type'")
            metrics = result.get("metrics")
            if not isinstance(metrics, list) or not metrics:
                problems.append(f"{at}.metrics must be a non-empty list")
            else:
                for k, metric in enumerate(metrics):
                    if (
                        not isinstance(metric, dict)
                        or "type" not in metric
                        or not isinstance(metric.get("value"), int | float)
                    ):
                        problems.append(f"{at}.metrics[{k}] needs 'type' and a numeric 'value'")
            source = result.get("source")
            if not isinstance(source, dict) or "name" not in source:
                problems.append(f"{at}.source.name is required (say where the numbers come from)")
    if problems:
        raise CardError(f"{where}: " + "; ".join(problems))


def render_model_card(config: Any, recipe: str | None = None, **context: Any) -> str:
    """Render and validate the card of ``config``'s family; returns the README.md text."""
    import jinja2

    from rszoo import __version__

    path = card_template_path(config.family)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    try:
        template = env.from_string(path.read_text(encoding="utf-8"))
        text = template.render(
            model_name=config.name,
            family=config.family,
            config_json=config.to_json(),
            base_model=getattr(config, "base_model", None),
            recipe=recipe,
            rszoo_version=__version__,
            eval_results=context.pop("eval_results", None),
            **context,
        )
    except jinja2.TemplateError as exc:
        raise CardError(f"{path}: cannot render: {exc}") from None
    meta, body = parse_card(text, where=str(path))
    base_model = getattr(config, "base_model", None)
    if base_model and "/" in str(base_model) and not Path(str(base_model)).exists():
        meta["base_model"] = base_model
    else:
        meta.pop("base_model", None)
    meta["library_name"] = "rszoo"
    validate_card_metadata(meta, where=str(path))
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    return f"---\n{front}---\n{body}"
