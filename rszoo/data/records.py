"""Plain record types shared by generators, loaders, training stages and metrics.

Formats on disk (all JSON Lines, UTF-8, one object per line; paths relative to the JSONL file's folder):

* **messages** (chat SFT; OpenAI style, several images per sample allowed)::

    {"id": "synth-000001-cap", "task": "caption",
     "messages": [{"role": "system", "content": "..."},
                  {"role": "user", "content": [{"type": "image", "image": "images/000001.png"},
                                               {"type": "text", "text": "Describe the scene."}]},
                  {"role": "assistant", "content": "An urban scene with ..."}]}

* **grounding** (one referring expression and its box, original-image pixels, xyxy)::

    {"id": "synth-000001-g03", "image": "images/000001.png", "width": 256, "height": 256,
     "expression": "the small vehicle left of the large building", "box": [12.0, 40.0, 30.0, 55.0],
     "category": "small-vehicle", "unique": true, "source": "synth", "facts": {...}}

``facts`` is optional structured ground truth behind the expression; the RSGround-R1 CoT writer turns it into
position-aware reasoning. Schema (all keys present; ``anchor``/``relation`` are null when no anchor is used)::

    {"target": {"id": 3, "category": "small-vehicle", "color": "white", "size": "small",
                "grid": "top left", "hbox": [x1, y1, x2, y2]},
     "anchor": {"id": 7, "category": "building", "color": "grey", "size": "large", "hbox": [...]} | null,
     "relation": "left of" | "right of" | "above" | "below" | "next to" | null,
     "distractors": 2,          # other objects of the target's category in the scene
     "superlative": "leftmost" | null,   # optional: how the expression disambiguates the target
     "strategy": "relation", "uses": ["relation"]}   # optional (the synthetic world writes them)

Grid cells are the 3x3 names "top left", "top", "top right", "left", "center", "right", "bottom left", "bottom",
"bottom right".
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rszoo.config import check_known_keys

__all__ = ["GroundingRecord", "JsonlError", "check_messages", "iter_jsonl", "write_jsonl"]


class JsonlError(ValueError):
    """A malformed JSONL line; the message names the file and the 1-based line number."""


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for every non-blank line; malformed lines raise :class:`JsonlError`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"JSONL file not found: {path}")
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise JsonlError(
                    f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})"
                ) from None
            if not isinstance(obj, dict):
                raise JsonlError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def write_jsonl(path: str | Path, rows: list[dict[str, Any]] | Iterator[dict[str, Any]]) -> int:
    """Write rows atomically (temp file + rename); returns the number of rows written."""
    from rszoo.utils.io import atomic_write

    n = 0
    with atomic_write(path, "w") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n")
            n += 1
    return n


def check_messages(messages: Any, root: Path, where: str) -> list[dict[str, Any]]:
    """Validate an OpenAI-style ``messages`` list and make image paths absolute (relative ones are under ``root``).

    Roles are system/user/assistant/tool; content is a string or a list of ``{"type": "image"|"text"}`` parts; every
    image must exist; the last message must be the assistant's (the training target). Errors name ``where``.
    """
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"{where}: 'messages' must be a non-empty list of {{role, content}} objects")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in (
            "system",
            "user",
            "assistant",
            "tool",
        ):
            raise ValueError(
                f"{where}: messages[{i}] needs a role of system/user/assistant/tool, got {message!r:.80}"
            )
        content = message.get("content")
        if isinstance(content, list):
            parts = []
            for j, part in enumerate(content):
                if not isinstance(part, dict) or part.get("type") not in ("image", "text"):
                    raise ValueError(
                        f"{where}: messages[{i}].content[{j}] must be {{'type': 'image'|'text', ...}}"
                    )
                if part["type"] == "image":
                    if not isinstance(part.get("image"), str):
                        raise ValueError(f"{where}: messages[{i}].content[{j}].image must be a path string")
                    path = Path(part["image"])
                    path = path if path.is_absolute() else root / path
                    if not path.is_file():
                        raise FileNotFoundError(f"{where}: image file not found: {path}")
                    part = {**part, "image": str(path.resolve())}
                elif not isinstance(part.get("text"), str):
                    raise ValueError(f"{where}: messages[{i}].content[{j}].text must be a string")
                parts.append(part)
            content = parts
        elif not isinstance(content, str):
            raise ValueError(f"{where}: messages[{i}].content must be a string or a list of parts")
        out.append({**message, "content": content})
    if out[-1]["role"] != "assistant":
        raise ValueError(f"{where}: the last message must be the assistant's answer (the training target)")
    return out


@dataclass
class GroundingRecord:
    """One referring expression with its ground-truth box in original-image pixels ``[x1, y1, x2, y2]``."""

    id: str
    image: str
    width: int
    height: int
    expression: str
    box: list[float]
    category: str = ""
    unique: bool | None = None
    source: str = ""
    facts: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.box) != 4 or not all(isinstance(v, int | float) and math.isfinite(v) for v in self.box):
            raise ValueError(f"grounding record {self.id!r}: box must be 4 finite numbers, got {self.box!r}")
        self.box = [float(v) for v in self.box]

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.box
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, obj: dict[str, Any], where: str = "") -> GroundingRecord:
        """Build from a JSON object; ``where`` (e.g. ``file:line``) is put in error messages."""
        required = ("id", "image", "width", "height", "expression", "box")
        missing = [k for k in required if k not in obj]
        if missing:
            raise ValueError(
                f"{where}: grounding record misses {missing}; required keys are {list(required)}"
            )
        check_known_keys(obj, cls.__dataclass_fields__, where, "grounding record key(s)")
        try:
            return cls(**obj)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None
