"""Data recipes: a YAML file declaring the subsets of a training mixture, validated before anything is loaded.

A *data recipe* lists subset units -- one data source feeding one task -- with their sampling weights, prompt
template pools and online options (paper Sec. III-B3: "each subset unit was assigned a sampling weight ... analogous
to controlling the flow rate of different ingredients in an automatic beverage dispenser")::

    variables:                       # ${name} in any string below; users override them
      root: data/rs                  # relative paths resolve against the working directory
    samples_per_epoch: 20000         # weighted mixing: draws per epoch (default: the total number of records)
    prompts:                         # recipe-wide template pools per task (else the built-in defaults)
      caption: ["Describe this image.", "What does this aerial image show?"]
    offline:                         # rszoo.data.engine.offline.OfflineOptions
      degenerate: drop
      typos: {aeroplane: airplane}
    online:                          # defaults of every subset (rszoo.data.engine.online.OnlineOptions)
      prob_random_resize: 0.5
      prob_plain_text_prompt: 1.0    # RSCoVLM's released default: always plain; 0.5 = the paper's random switch
    subsets:
      - name: dota_det
        task: detection              # classification | vqa | caption | grounding | detection | zoom_vqa | conversation
        weight: 2.0                  # relative per-step sampling probability (>= 0)
        source: {format: dota, labels: "${root}/dota/labelTxt", images: "${root}/dota/images"}
        online: {box_type: quad}     # per-subset overrides of the online defaults
      - name: rsvqa_lr
        task: vqa
        weight: 1.0
        prompts: ["{question}", "{question} Answer with one word."]
        source: {format: rsvqa, questions: ..., answers: ..., image_records: ..., images: ...}

Source formats and their keys are listed in :data:`rszoo.data.engine.sources.FORMATS` (``format`` plus required
file/folder keys and optional settings). Template placeholders per task: classification ``{classes}``, vqa
``{question}`` (required), grounding ``{expression}`` (required), zoom_vqa ``{question}`` (required), caption none;
detection and conversation subsets take no templates.

**Static mixing (the RSCoVLM reference).** Instead of per-step weighted sampling, a ``static:`` list fixes the epoch as
in RSCoVLM's ``--datasets``: ``name`` (all records), ``name%P`` (a subsample of ``int(len * P / 100)`` records drawn
without replacement, ``0 < P <= 100``), ``name*K`` (the records repeated ``K`` times), and ``all%P`` / ``all*K`` for
every subset. Weights and ``samples_per_epoch`` are then unused. Quirk reproduced: RSCoVLM's ``random_sample`` turns
*any* given seed into 42 (``if seed is not None: seed = 42``), so its subsamples never change with the run seed;
``static_seed`` defaults to 42 for identical selections (``random.Random(42).sample`` per entry), and ``null`` derives
the selection from the mixture seed instead.

Validation (every error names the file, the key path and what is allowed): unknown keys at every level, unknown
tasks and formats, a format that cannot feed the task, missing files and folders, unknown ``${variables}``, duplicate
or reserved subset names, a name in ``static:`` or in ``overrides`` that is not a subset (the message lists the known
subsets), negative weights, all-zero weights, bad probabilities and malformed prompt templates.

Example:
    >>> raw = {"variables": {"root": "/data"}, "subsets": [{"name": "vqa", "task": "vqa", "weight": 2,
    ...        "source": {"format": "lrsvqa", "annotations": "${root}/lrs.jsonl", "images": "${root}/img"}}]}
    >>> recipe = parse_data_recipe(raw, check_files=False)
    >>> recipe.subset("vqa").source["annotations"], recipe.subset("vqa").weight
    ('/data/lrs.jsonl', 2.0)
    >>> parse_static_entry("dota%12.5"), parse_static_entry("refgeo*3")
    (('dota', 0.125, None), ('refgeo', None, 3))
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rszoo.config import check_known_keys
from rszoo.data.engine.offline import OfflineOptions
from rszoo.data.engine.online import TASKS, OnlineOptions, check_prompt_pool
from rszoo.data.engine.sources import FORMATS

__all__ = [
    "DataRecipe",
    "DataRecipeError",
    "SubsetSpec",
    "load_data_recipe",
    "parse_data_recipe",
    "parse_static_entry",
    "static_selection",
]

TOP_KEYS = (
    "description",
    "variables",
    "samples_per_epoch",
    "static",
    "static_seed",
    "prompts",
    "offline",
    "online",
    "subsets",
)
SUBSET_KEYS = ("name", "task", "source", "weight", "prompts", "online", "description")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_RATE = re.compile(r"%([\d.]+)$")
_REPEAT = re.compile(r"\*(\d+)$")


class DataRecipeError(ValueError):
    """An invalid data recipe; the message names the file, the key and what is allowed."""


@dataclass
class SubsetSpec:
    """One subset unit: a source feeding a task, with its weight, prompt pool and online options.

    Attributes:
        name: unique name (letters, digits, ``_ . -``).
        task: one of :data:`rszoo.data.engine.online.TASKS`.
        source: ``format`` plus that format's keys, defaults filled in and paths made absolute.
        weight: relative sampling weight (>= 0).
        prompts: the template pool (None: recipe-level pool for the task, else the built-in default).
        online: the merged online options.
    """

    name: str
    task: str
    source: dict[str, Any]
    weight: float = 1.0
    prompts: list[str] | None = None
    online: OnlineOptions = field(default_factory=OnlineOptions)


@dataclass
class DataRecipe:
    """A validated data recipe (see the module docstring)."""

    subsets: list[SubsetSpec]
    static: list[str] | None = None
    static_seed: int | None = 42
    samples_per_epoch: int | None = None
    offline: OfflineOptions = field(default_factory=OfflineOptions)
    variables: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    description: str = ""

    @property
    def names(self) -> list[str]:
        """Subset names in recipe order."""
        return [s.name for s in self.subsets]

    def subset(self, name: str) -> SubsetSpec:
        """The subset called ``name`` (an error lists the known subsets)."""
        for s in self.subsets:
            if s.name == name:
                return s
        raise DataRecipeError(
            f"{self.path or 'recipe'}: no subset named {name!r}; known subsets: {self.names}"
        )

    @property
    def mixing(self) -> str:
        """``"static"`` when a ``static:`` list is given, else ``"weighted"``."""
        return "static" if self.static is not None else "weighted"


# --------------------------------------------------------------------------------------------------------------
# static entries
# --------------------------------------------------------------------------------------------------------------
def parse_static_entry(entry: str, where: str = "static") -> tuple[str, float | None, int | None]:
    """``"name%P"`` -> ``(name, P / 100, None)``; ``"name*K"`` -> ``(name, None, K)``; ``"name"`` -> ``(name, None,
    None)`` (RSCoVLM's ``parse_sampling_rate`` grammar)."""
    if not isinstance(entry, str) or not entry.strip():
        raise DataRecipeError(
            f"{where}: entries are strings like 'name', 'name%50' or 'name*2', got {entry!r}"
        )
    entry = entry.strip()
    if m := _RATE.search(entry):
        try:
            percent = float(m.group(1))
        except ValueError:
            raise DataRecipeError(f"{where}: {entry!r}: the rate after % must be a number") from None
        if not 0 < percent <= 100:
            raise DataRecipeError(
                f"{where}: {entry!r}: the rate after % must be in (0, 100], got {percent:g}"
            )
        return entry[: m.start()], percent / 100.0, None
    if m := _REPEAT.search(entry):
        repeat = int(m.group(1))
        if repeat < 1:
            raise DataRecipeError(f"{where}: {entry!r}: the repeat count after * must be >= 1")
        return entry[: m.start()], None, repeat
    if "%" in entry or "*" in entry:
        raise DataRecipeError(
            f"{where}: {entry!r}: write 'name%P' (0 < P <= 100) or 'name*K' (integer K >= 1)"
        )
    return entry, None, None


def static_selection(
    recipe: DataRecipe, sizes: Mapping[str, int], seed: int = 0
) -> list[tuple[str, int, int]]:
    """The static epoch: ``(subset name, record index, occurrence)`` per entry of ``recipe.static``, in list order.

    ``name%P`` draws ``int(n * P / 100)`` indices with ``random.Random(static_seed).sample(range(n), k)`` -- a fresh
    generator per entry, as RSCoVLM's ``random_sample`` (which forces seed 42) -- so the selected positions equal the
    reference's; rate 1 keeps all records in order. ``name*K`` repeats all indices ``K`` times (occurrence ``0..K-1``).

    Example:
        >>> r = DataRecipe([], static=["a%50", "b*2"])
        >>> static_selection(r, {"a": 4, "b": 1})
        [('a', 0, 0), ('a', 3, 0), ('b', 0, 0), ('b', 0, 1)]
    """
    if recipe.static is None:
        raise DataRecipeError("static_selection: the recipe has no static list")
    out: list[tuple[str, int, int]] = []
    static_seed = recipe.static_seed if recipe.static_seed is not None else seed
    for entry in recipe.static:
        name, rate, repeat = parse_static_entry(entry)
        targets = list(sizes) if name == "all" else [name]
        for target in targets:
            if target not in sizes:
                raise DataRecipeError(f"static: no subset named {target!r}; known subsets: {list(sizes)}")
            n = sizes[target]
            if rate is not None and rate < 1:
                picked = random.Random(static_seed).sample(range(n), int(n * rate))
                out.extend((target, i, 0) for i in picked)
            else:
                out.extend((target, i, k) for k in range(repeat or 1) for i in range(n))
    return out


# --------------------------------------------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------------------------------------------
def _fail(where: str, message: str) -> DataRecipeError:
    return DataRecipeError(f"{where}: {message}")


def _check_keys(obj: Any, allowed: Sequence[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise _fail(where, f"expected a mapping, got {type(obj).__name__}")
    check_known_keys(obj, allowed, where, error=DataRecipeError)
    return obj


def _substitute(value: Any, variables: Mapping[str, Any], where: str) -> Any:
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in variables:
                raise _fail(
                    where,
                    f"unknown variable ${{{name}}}; known variables: {sorted(variables)} (define it under "
                    "'variables:' or pass it in overrides)",
                )
            return str(variables[name])

        return _VARIABLE.sub(repl, value)
    if isinstance(value, list):
        return [_substitute(v, variables, f"{where}[{k}]") for k, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _substitute(v, variables, f"{where}.{k}") for k, v in value.items()}
    return value


def _resolve_path(value: Any, where: str, kind: str, check: bool) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"expected a path string, got {value!r}")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else Path.cwd() / path
    if check:
        ok = path.is_file() if kind == "file" else path.is_dir()
        if not ok:
            exists = " (it exists but is not a " + kind + ")" if path.exists() else ""
            raise _fail(
                where,
                f"{'file' if kind == 'file' else 'folder'} not found: {path}{exists}; fix the path or the variables "
                "it uses (e.g. overrides={'root': '/path/to/data'})",
            )
    return str(path)


def _parse_source(raw: Any, task: str, where: str, check: bool) -> dict[str, Any]:
    if not isinstance(raw, dict) or "format" not in raw:
        raise _fail(where, f"expected a mapping with 'format' (one of {sorted(FORMATS)}), got {raw!r}")
    fmt = FORMATS.get(raw["format"])
    if fmt is None:
        raise _fail(f"{where}.format", f"unknown format {raw['format']!r}; known formats: {sorted(FORMATS)}")
    _check_keys(raw, sorted(fmt.keys), where)
    if task not in fmt.tasks:
        raise _fail(where, f"format {fmt.name!r} cannot feed a {task!r} subset; it feeds {list(fmt.tasks)}")
    missing = [k for k in (*fmt.files, *fmt.dirs) if k not in raw]
    if missing:
        raise _fail(where, f"format {fmt.name!r} needs {missing} (required: {[*fmt.files, *fmt.dirs]})")
    out = {**copy.deepcopy(fmt.options), **raw}
    for key in fmt.files:
        out[key] = _resolve_path(raw[key], f"{where}.{key}", "file", check)
    for key in fmt.dirs:
        out[key] = _resolve_path(raw[key], f"{where}.{key}", "dir", check)
    return out


def _parse_weight(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(where, f"a sampling weight is a number >= 0, got {value!r}")
    if value < 0:
        raise _fail(where, f"sampling weights must be >= 0 (0 disables the subset), got {value}")
    return float(value)


def _apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Dotted-key overrides: a bare variable name, ``variables.x``, ``subsets.<name>.<key>...`` or a recipe key."""
    raw = copy.deepcopy(raw)
    variables = raw.setdefault("variables", {}) or {}
    raw["variables"] = variables
    for key, value in overrides.items():
        parts = str(key).split(".")
        if len(parts) == 1 and parts[0] in variables:
            variables[parts[0]] = value
            continue
        if parts[0] == "subsets":
            subsets = raw.get("subsets") or []
            names = [s.get("name") for s in subsets if isinstance(s, dict)]
            if len(parts) < 3:
                raise _fail(
                    f"{where} overrides[{key!r}]", "write subsets.<name>.<key>, e.g. subsets.dota.weight"
                )
            if parts[1] not in names:
                raise _fail(
                    f"{where} overrides[{key!r}]", f"no subset named {parts[1]!r}; known subsets: {names}"
                )
            node: dict[str, Any] = subsets[names.index(parts[1])]
            parts = parts[2:]
        elif parts[0] not in TOP_KEYS:
            raise _fail(
                f"{where} overrides[{key!r}]",
                f"not a variable (known: {sorted(variables)}) nor a recipe key (allowed: {list(TOP_KEYS)})",
            )
        else:
            node = raw
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise _fail(f"{where} overrides[{key!r}]", f"{part!r} is not a mapping")
            node = child
        node[parts[-1]] = value
    return raw


def parse_data_recipe(
    raw: Mapping[str, Any],
    *,
    where: str = "recipe",
    overrides: Mapping[str, Any] | None = None,
    check_files: bool = True,
    path: str | None = None,
) -> DataRecipe:
    """Validate a recipe mapping (as loaded from YAML) into a :class:`DataRecipe`.

    Args:
        raw: the recipe mapping.
        where: how errors name the recipe (its file path).
        overrides: dotted keys -> values applied before validation: a variable name (``root``), ``variables.root``,
            ``subsets.<name>.weight`` / ``subsets.<name>.online.prob_random_resize`` ..., or a top-level key
            (``samples_per_epoch``, ``online.prob_synonym``).
        check_files: check that every source file / folder exists.
        path: the recipe file (recorded in the result).
    """
    if not isinstance(raw, Mapping):
        raise _fail(where, f"a data recipe is a mapping with 'subsets', got {type(raw).__name__}")
    raw = _apply_overrides(dict(raw), overrides or {}, where)
    _check_keys(raw, TOP_KEYS, where)
    variables = raw.get("variables") or {}
    if not isinstance(variables, dict) or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in variables.values()
    ):
        raise _fail(f"{where}.variables", f"a mapping of names to strings or numbers, got {variables!r}")
    body = {k: v for k, v in raw.items() if k not in ("variables", "prompts")}
    body = _substitute(body, variables, where)

    prompts = raw.get("prompts") or {}
    if not isinstance(prompts, dict):
        raise _fail(f"{where}.prompts", f"a mapping of task -> list of templates, got {prompts!r}")
    for task, pool in prompts.items():
        if task not in TASKS:
            raise _fail(f"{where}.prompts", f"unknown task {task!r}; tasks: {list(TASKS)}")
        try:
            check_prompt_pool(pool, task, f"{where}.prompts.{task}")
        except ValueError as exc:
            raise DataRecipeError(str(exc)) from None
    try:
        offline = OfflineOptions.from_dict(body.get("offline") or {}, f"{where}.offline")
        base_online = OnlineOptions.from_dict(body.get("online") or {}, f"{where}.online")
    except (ValueError, TypeError) as exc:
        raise DataRecipeError(str(exc)) from None
    if offline.cache_dir is not None:
        offline.cache_dir = _resolve_path(offline.cache_dir, f"{where}.offline.cache_dir", "dir", False)

    raw_subsets = body.get("subsets")
    if not isinstance(raw_subsets, list) or not raw_subsets:
        raise _fail(f"{where}.subsets", "a non-empty list of subset units is required")
    subsets: list[SubsetSpec] = []
    for k, item in enumerate(raw_subsets):
        at = f"{where}.subsets[{k}]"
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            at += f" ({item['name']})"
        _check_keys(item, SUBSET_KEYS, at)
        name = item.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise _fail(f"{at}.name", f"a name of letters, digits, '_', '.', '-' is required, got {name!r}")
        if name == "all":
            raise _fail(f"{at}.name", "'all' is reserved (static: ['all%50'] means every subset)")
        if name in [s.name for s in subsets]:
            raise _fail(f"{at}.name", f"duplicate subset name {name!r}")
        task = item.get("task")
        if task not in TASKS:
            raise _fail(f"{at}.task", f"unknown task {task!r}; tasks: {list(TASKS)}")
        source = _parse_source(item.get("source"), task, f"{at}.source", check_files)
        weight = _parse_weight(item.get("weight", 1.0), f"{at}.weight")
        pool = item.get("prompts")
        if pool is None and task in prompts:
            pool = prompts[task]
        if item.get("prompts") is not None:
            try:
                pool = check_prompt_pool(item["prompts"], task, f"{at}.prompts")
            except ValueError as exc:
                raise DataRecipeError(str(exc)) from None
        try:
            online = base_online.merged(item.get("online") or {}, f"{at}.online")
        except (ValueError, TypeError) as exc:
            raise DataRecipeError(str(exc)) from None
        subsets.append(SubsetSpec(name, task, source, weight, list(pool) if pool else None, online))

    names = [s.name for s in subsets]
    static = body.get("static")
    if static is not None:
        if not isinstance(static, list) or not static:
            raise _fail(f"{where}.static", f"a non-empty list like ['dota%50', 'refgeo*2'], got {static!r}")
        for k, entry in enumerate(static):
            name, _, _ = parse_static_entry(entry, f"{where}.static[{k}]")
            if name != "all" and name not in names:
                raise _fail(f"{where}.static[{k}]", f"no subset named {name!r}; known subsets: {names}")
        static = [str(e).strip() for e in static]
        if body.get("samples_per_epoch") is not None:
            raise _fail(
                where, "samples_per_epoch applies to weighted mixing; a static list fixes the epoch itself"
            )
    elif not any(s.weight > 0 for s in subsets):
        raise _fail(where, f"every subset has weight 0; give at least one a positive weight ({names})")
    samples = body.get("samples_per_epoch")
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 1):
        raise _fail(f"{where}.samples_per_epoch", f"a positive integer or null, got {samples!r}")
    static_seed = body.get("static_seed", 42)
    if static_seed is not None and (isinstance(static_seed, bool) or not isinstance(static_seed, int)):
        raise _fail(f"{where}.static_seed", f"an integer or null, got {static_seed!r}")
    description = body.get("description", "")
    return DataRecipe(
        subsets,
        static,
        static_seed,
        samples,
        offline,
        dict(variables),
        path,
        str(description) if description else "",
    )


def load_data_recipe(
    path: str | Path, overrides: Mapping[str, Any] | None = None, *, check_files: bool = True
) -> DataRecipe:
    """Read and validate a data recipe YAML file (see the module docstring).

    Example:
        >>> from rszoo.recipes import RECIPES_DIR
        >>> r = load_data_recipe(RECIPES_DIR / "rscovlm/data/example_five_subsets.yaml", check_files=False)
        >>> r.names
        ['dota_det', 'refgeo_grounding', 'rsvqa_lr', 'lrsvqa_zoom', 'geochat_instruct']
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data recipe not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}" if mark is not None else ""
        raise DataRecipeError(f"{path}{at}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return parse_data_recipe(
        raw, where=str(path), overrides=overrides, check_files=check_files, path=str(path)
    )
