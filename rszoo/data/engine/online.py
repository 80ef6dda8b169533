"""Online processing: one unified record -> one chat SFT sample, deterministic per (seed, epoch, index, occurrence).

Every sample is a messages row that rszoo's SFT stage trains on directly (assistant turns are the targets)::

    {"id": "dota:P0001", "task": "detection", "subset": "dota",
     "messages": [{"role": "system", "content": "..."},
                  {"role": "user", "content": [{"type": "image", "image": "/abs/P0001.png",
                                                "resized_width": 504, "resized_height": 392},
                                               {"type": "text", "text": "find the plane, ship"}]},
                  {"role": "assistant", "content": "12,40,30,44,28,55,10,51 ship\\n"}]}

What happens to a record, in this order (all draws come from one ``random.Random`` seeded by
:func:`sample_seed`, so a resumed run rebuilds exactly the same sample):

1. **Dynamic resolution** (paper Sec. III-C). Each image gets the size the model will see: ``smart_resize`` of its
   size with the mixture's ``min_pixels``/``max_pixels`` (small images are enlarged), or -- with probability
   ``prob_random_resize`` -- RSCoVLM's random resize: ``scale = U(min_pixels / (w h), max_pixels / (w h))`` applied to
   the *side lengths* (``int(h * scale)``, ``int(w * scale)``; an area ratio used on sides, so most draws end at the
   ``max_pixels`` clamp), then ``smart_resize``. The image part carries ``resized_width``/``resized_height`` so the SFT
   collate resizes to exactly that size (the model's processor must use the same min/max pixels).
2. **Scalable boxes.** Boxes are written in pixels of that resized input: ``int(v * resized / original)`` per axis
   (truncation, as RSCoVLM). Grounding quads are ordered after scaling, as RSCoVLM's ``normalize_polygon``.
   (RSCoVLM's refGeo code also truncates the original box to ``int`` before scaling; refGeo boxes are integers, so
   the results agree, and non-integer boxes stay within one pixel of :func:`rszoo.data.resize.box_to_input`.)
3. **Output format.** Grounding and detection answer in plain text (``x1,y1,x2,y2 label``) or Qwen2.5-VL JSON
   (``{"bbox_2d": [...], "label": ...}``): JSON iff ``rng.random() >= prob_plain_text_prompt``. The released
   RSCoVLM default is ``1.0`` (always plain; notes Sec. 0.2); ``0.5`` is the paper's random switch.
4. **Prompt templates.** One template drawn uniformly from the subset's pool (:data:`DEFAULT_PROMPTS` per task,
   overridable per recipe and per subset). Detection prompts are RSCoVLM's own
   (:func:`rszoo.data.detection_format.build_dense_det_messages`, with ``prob_proxy_prompt``).
5. **Synonyms.** With ``prob_synonym`` per occurrence, a word of a synonym group (:data:`DEFAULT_SYNONYMS`:
   vehicle/car, building/house, ...) in the *user* text (questions, expressions, conversation user turns) becomes
   another member of its group. Off by default: the released RSCoVLM code never enables it (notes Sec. 0.3).
6. **Detection** targets come from :func:`~rszoo.data.detection_format.build_dense_det_messages`; an image without
   objects is answered ``There are none.`` (notes Sec. 0.1).

Zoom-in Chain samples come from :func:`rszoo.data.zoom_chain.zoom_chain_messages` (RSCoVLM's
``visual_cot_dataset``: tool system prompt, full image at its smart-resize size, a ``<tool_call>`` with the crop box
scaled to that size, then the native-resolution crop -- an image part with ``"crop"`` -- and the answer); the first
user turn is drawn from the ``zoom_vqa`` pool. They are not randomly resized (the crop is native pixels by design).

Example:
    >>> from rszoo.data.engine.sources import QARecord
    >>> rec = QARecord("q1", ["/data/a.png"], "Is there a harbor?", ["yes"], sizes=[(512, 512)])
    >>> row = build_sample(rec, "vqa", rng=random.Random(0), options=OnlineOptions(), prompts=["{question}"],
    ...                    subset="demo", min_pixels=224 * 224, max_pixels=1008 * 1008)
    >>> row["messages"][0]["content"][0]["resized_width"], row["messages"][1]
    (504, {'role': 'assistant', 'content': 'yes'})
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import random
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rszoo.config import check_known_keys
from rszoo.data.detection_format import PLAIN_TEMPLATE, SYSTEM_PROMPTS, build_dense_det_messages
from rszoo.data.resize import smart_resize

__all__ = [
    "DEFAULT_PROMPTS",
    "DEFAULT_SYNONYMS",
    "PROMPT_FIELDS",
    "TASKS",
    "OnlineOptions",
    "apply_synonyms",
    "build_sample",
    "check_prompt_pool",
    "dynamic_size",
    "grounding_values",
    "random_resize_size",
    "sample_seed",
]

TASKS = ("classification", "vqa", "caption", "grounding", "detection", "zoom_vqa", "conversation")

# RSCoVLM's refGeo JSON templates ({prompt} renamed {expression}); the plain form is "find the {expression}".
_GROUNDING_HBB = (
    "Locate the {expression}, output the bbox coordinates using JSON format",
    "Give me the bbox of {expression} using JSON format",
    "Output the bbox of the {expression} in the image using JSON format.",
    "From this image, provide the bbox for {expression} using JSON format",
    "Please provide the bbox coordinate of the region this sentence describes: {expression}",
    "Locate {expression} in the given image and provide the bbox using JSON format",
)
_GROUNDING_ORIENTED = (
    "Locate the {expression}, output the oriented bbox coordinates using JSON format",
    "Give me the oriented bounding box of {expression} using JSON format",
    "Output the oriented bounding box of the {expression} in the image using JSON format.",
    "From this image, provide the oriented bounding box for {expression} using JSON format",
    "Please provide the oriented bounding box coordinate of the region this sentence describes: {expression}",
    "Locate {expression} in the given image and provide the oriented bounding box using JSON format",
)

#: Template pools per task. ``grounding`` is the HBB pool; oriented/quad grounding uses ``grounding_oriented``
#: unless the recipe gives a pool. ``detection`` and ``conversation`` take no templates.
DEFAULT_PROMPTS: dict[str, tuple[str, ...]] = {
    "classification": (
        "Classify this remote sensing image into one of the following scene classes: {classes}. "
        "Answer with the class name only.",
        "Which of these scene categories does this aerial image belong to: {classes}? Answer with one category.",
        "What is the scene category of this image? Choose from: {classes}.",
    ),
    "vqa": ("{question}", "{question}\nAnswer the question using a single word or phrase."),
    "caption": (
        "Describe this remote sensing image in detail.",
        "Write a caption for this aerial image.",
        "What does this satellite image show? Describe it.",
        "Provide a detailed description of the scene in this image.",
    ),
    "grounding": _GROUNDING_HBB,
    "grounding_oriented": _GROUNDING_ORIENTED,
    "zoom_vqa": ("{question}\nZoom in to the region of interest and answer the question.",),
}
#: Placeholders a template may use, per task; ``vqa``/``grounding``/``zoom_vqa`` templates must use theirs.
PROMPT_FIELDS: dict[str, frozenset[str]] = {
    "classification": frozenset({"classes"}),
    "vqa": frozenset({"question"}),
    "caption": frozenset(),
    "grounding": frozenset({"expression"}),
    "zoom_vqa": frozenset({"question"}),
}
_REQUIRED_FIELDS = {"vqa": "question", "grounding": "expression", "zoom_vqa": "question"}

#: Synonym groups for the user text; any member may replace any other (plural ``s`` is carried over).
DEFAULT_SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("vehicle", "car"),
    ("building", "house"),
    ("airplane", "plane"),
    ("ship", "boat", "vessel"),
    ("road", "street"),
    ("harbor", "port"),
    ("image", "picture"),
    ("large", "big"),
    ("parking lot", "car park"),
    ("cropland", "farmland"),
)

_MCQ_TAIL = (
    "Select the best answer to the above multiple-choice question based on the image. Respond with only the letter "
    "(A, B, C, D, or E) of the correct option.\nThe best answer is:"
)
_JSON_KEYS = {"hbb": "bbox_2d", "obb": "oriented bbox", "quad": "quadrant bbox"}


# --------------------------------------------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------------------------------------------
@dataclass
class OnlineOptions:
    """Per-subset online options (recipe ``online:``; the recipe-level block gives defaults for every subset).

    Attributes:
        prob_random_resize: probability of RSCoVLM's random resize (reference default 0).
        prob_plain_text_prompt: probability of the plain output format for grounding/detection (reference default
            1.0 = always plain; 0.5 = the paper's random plain/JSON switch).
        prob_proxy_prompt: detection JSON prompts: probability of a proxy template and of each word replacement
            (RSCoVLM's ``prob_proxy_prompt``).
        prob_synonym: probability that each synonym-table word in the user text is replaced.
        synonyms: synonym groups (lists of interchangeable words); None = :data:`DEFAULT_SYNONYMS`.
        box_type: ``hbb``, ``obb`` or ``quad``; None = ``hbb`` for grounding (paper default), ``quad`` for detection.
        clockwise: grounding quad vertex order (True: RSCoVLM dense detection / the paper; False: RSCoVLM's refGeo
            polygons and LMMRotate).
        sort_key: detection object order, ``start_vertex`` (paper) or ``released`` (RSCoVLM code).
        skip_difficult: leave DOTA difficult / COCO crowd objects out of detection targets (RSCoVLM keeps them).
        zoom_chain: build the Zoom-in Chain for single-crop zoom records (False = plain VQA, RSCoVLM's
            ``--disable_visual_cot``).
        system_prompt: a system message for classification/vqa/caption/zoom-VQA-without-chain samples (None: the
            record's own, if any; the chat template then adds its default).
    """

    prob_random_resize: float = 0.0
    prob_plain_text_prompt: float = 1.0
    prob_proxy_prompt: float = 0.5
    prob_synonym: float = 0.0
    synonyms: list[list[str]] | None = None
    box_type: str | None = None
    clockwise: bool = True
    sort_key: str = "start_vertex"
    skip_difficult: bool = False
    zoom_chain: bool = True
    system_prompt: str | None = None

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str) -> OnlineOptions:
        """Build from a recipe mapping; unknown keys and bad values fail naming ``where`` and the key."""
        check_known_keys(values, (f.name for f in dataclasses.fields(cls)), where, "online option(s)")
        opts = cls(**dict(values))
        opts.validate(where)
        return opts

    def merged(self, values: Mapping[str, Any], where: str) -> OnlineOptions:
        """A copy with ``values`` (a recipe mapping) applied on top."""
        return OnlineOptions.from_dict({**dataclasses.asdict(self), **dict(values)}, where)

    def validate(self, where: str) -> None:
        for name in ("prob_random_resize", "prob_plain_text_prompt", "prob_proxy_prompt", "prob_synonym"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{where}.{name}: a probability in [0, 1] is required, got {value!r}")
        if self.box_type not in (None, "hbb", "obb", "quad"):
            raise ValueError(f"{where}.box_type: must be hbb, obb or quad, got {self.box_type!r}")
        if self.sort_key not in ("start_vertex", "released"):
            raise ValueError(f"{where}.sort_key: must be start_vertex or released, got {self.sort_key!r}")
        for name in ("clockwise", "skip_difficult", "zoom_chain"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{where}.{name}: must be true or false, got {getattr(self, name)!r}")
        if self.system_prompt is not None and not isinstance(self.system_prompt, str):
            raise ValueError(f"{where}.system_prompt: must be a string or null")
        if self.synonyms is not None:
            ok = isinstance(self.synonyms, list) and all(
                isinstance(g, list) and len(g) >= 2 and all(isinstance(w, str) and w.strip() for w in g)
                for g in self.synonyms
            )
            if not ok:
                raise ValueError(
                    f"{where}.synonyms: a list of groups of at least two words, e.g. [[vehicle, car], "
                    f"[building, house]], got {self.synonyms!r}"
                )


def check_prompt_pool(pool: Any, task: str, where: str) -> list[str]:
    """Validate a template pool for ``task``: a non-empty list of strings using only the task's placeholders.

    Example:
        >>> check_prompt_pool(["Q: {question}"], "vqa", "prompts")
        ['Q: {question}']
    """
    if task not in PROMPT_FIELDS:
        raise ValueError(
            f"{where}: {task} subsets take no prompt templates (detection uses RSCoVLM's own prompts, conversations "
            "are used as written); remove 'prompts'"
        )
    if not isinstance(pool, list) or not pool or not all(isinstance(t, str) and t.strip() for t in pool):
        raise ValueError(f"{where}: expected a non-empty list of template strings, got {pool!r}")
    allowed = PROMPT_FIELDS[task]
    for k, template in enumerate(pool):
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
        except ValueError as exc:
            raise ValueError(
                f"{where}[{k}]: malformed template {template!r} ({exc}); write literal braces as {{{{ }}}}"
            ) from None
        bad = sorted(names - allowed)
        if bad:
            raise ValueError(
                f"{where}[{k}]: unknown placeholder(s) {bad} in {template!r}; {task} templates may use "
                f"{sorted('{' + a + '}' for a in allowed) or 'none'}"
            )
        need = _REQUIRED_FIELDS.get(task)
        if need and need not in names:
            raise ValueError(f"{where}[{k}]: {task} templates must contain {{{need}}}, got {template!r}")
    return list(pool)


# --------------------------------------------------------------------------------------------------------------
# randomness and sizes
# --------------------------------------------------------------------------------------------------------------
def sample_seed(seed: int, epoch: int, index: int, occurrence: int = 0) -> int:
    """A 64-bit seed for the sample at ``index`` drawn for the ``occurrence``-th time in ``epoch``.

    Example:
        >>> sample_seed(0, 1, 2) == sample_seed(0, 1, 2) != sample_seed(0, 2, 2)
        True
    """
    digest = hashlib.blake2b(
        f"rszoo-engine:{seed}:{epoch}:{index}:{occurrence}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "little")


def random_resize_size(
    width: int, height: int, rng: random.Random, factor: int, min_pixels: int, max_pixels: int
) -> tuple[int, int]:
    """RSCoVLM's random resize, ``(width, height)``: an area ratio applied to side lengths, then ``smart_resize``.

    ``scale = U(min_pixels / (w h), max_pixels / (w h))``; ``(int(h scale), int(w scale))`` (at least 1 px: the
    reference would crash on 0) goes through ``smart_resize`` with the same bounds (``qwen_vl_utils`` rounding).
    """
    pixels = width * height
    scale = rng.uniform(min_pixels / pixels, max_pixels / pixels)
    h, w = max(1, int(height * scale)), max(1, int(width * scale))
    rh, rw = smart_resize(h, w, factor, min_pixels, max_pixels, convention="qwen_vl_utils")
    return rw, rh


def dynamic_size(
    size: Sequence[int],
    rng: random.Random,
    prob_random_resize: float,
    factor: int,
    min_pixels: int,
    max_pixels: int,
) -> tuple[int, int]:
    """The model-input ``(width, height)`` of an image of ``size``: random resize with ``prob_random_resize``, else
    ``smart_resize``. Always draws one number from ``rng`` first, so later draws do not depend on the probability."""
    width, height = int(size[0]), int(size[1])
    if rng.random() < prob_random_resize:
        return random_resize_size(width, height, rng, factor, min_pixels, max_pixels)
    rh, rw = smart_resize(height, width, factor, min_pixels, max_pixels, convention="qwen_vl_utils")
    return rw, rh


# --------------------------------------------------------------------------------------------------------------
# synonyms
# --------------------------------------------------------------------------------------------------------------
_SYNONYM_CACHE: dict[tuple[tuple[str, ...], ...], tuple[re.Pattern[str], dict[str, list[str]]]] = {}


def _synonym_matcher(groups: Sequence[Sequence[str]]) -> tuple[re.Pattern[str], dict[str, list[str]]]:
    key = tuple(tuple(g) for g in groups)
    if key not in _SYNONYM_CACHE:
        others: dict[str, list[str]] = {}
        for group in key:
            for word in group:
                others.setdefault(word.lower(), [])
                others[word.lower()] += [w for w in group if w.lower() != word.lower()]
        words = sorted(others, key=len, reverse=True)  # longest first: "parking lot" before "parking"
        pattern = r"\b(" + "|".join(re.escape(w) for w in words) + r")(s?)\b"
        _SYNONYM_CACHE[key] = (re.compile(pattern, re.IGNORECASE), others)
    return _SYNONYM_CACHE[key]


def apply_synonyms(
    text: str, rng: random.Random, prob: float, groups: Sequence[Sequence[str]] | None = None
) -> str:
    """Replace each synonym-table word (whole words, optional plural ``s``) with probability ``prob``.

    The replacement is drawn uniformly from the other members of its group; a capitalised word stays capitalised.
    With ``prob == 0`` the text is returned unchanged and ``rng`` is not used.

    Example:
        >>> apply_synonyms("Two vehicles near the building.", random.Random(0), 1.0)
        'Two cars near the house.'
    """
    if prob <= 0 or not text:
        return text
    pattern, others = _synonym_matcher(groups if groups is not None else DEFAULT_SYNONYMS)

    def swap(m: re.Match[str]) -> str:
        word, plural = m.group(1), m.group(2)
        if rng.random() >= prob:
            return m.group(0)
        new = rng.choice(others[word.lower()])
        if word[:1].isupper():
            new = new[:1].upper() + new[1:]
        return new + plural

    return pattern.sub(swap, text)


# --------------------------------------------------------------------------------------------------------------
# per-task builders
# --------------------------------------------------------------------------------------------------------------
class _Context:
    """What every builder needs: the RNG, options, pool and the resolution bounds."""

    def __init__(
        self,
        rng: random.Random,
        options: OnlineOptions,
        prompts: Sequence[str] | None,
        factor: int,
        min_pixels: int,
        max_pixels: int,
    ) -> None:
        self.rng, self.options, self.prompts = rng, options, prompts
        self.factor, self.min_pixels, self.max_pixels = factor, min_pixels, max_pixels

    def size(self, size: Sequence[int], random_resize: bool = True) -> tuple[int, int]:
        prob = self.options.prob_random_resize if random_resize else 0.0
        return dynamic_size(size, self.rng, prob, self.factor, self.min_pixels, self.max_pixels)

    def image_part(self, path: str, size: Sequence[int], random_resize: bool = True) -> dict[str, Any]:
        w, h = self.size(size, random_resize)
        return {"type": "image", "image": path, "resized_width": w, "resized_height": h}

    def synonyms(self, text: str) -> str:
        opts = self.options
        return apply_synonyms(text, self.rng, opts.prob_synonym, opts.synonyms)

    def template(self, task: str) -> str:
        pool = self.prompts if self.prompts else DEFAULT_PROMPTS[task]
        return self.rng.choice(list(pool))


def _sizes_of(record: Any, n: int) -> list[tuple[int, int]]:
    sizes = list(record.sizes)
    if len(sizes) != n:
        raise ValueError(
            f"record {record.id!r} has {n} image(s) but {len(sizes)} size(s); run offline processing first "
            "(rszoo.data.engine.offline.process_source fills image sizes)"
        )
    return sizes


def _scaled(values: Sequence[float], original: Sequence[int], resized: Sequence[int]) -> list[int]:
    (ow, oh), (iw, ih) = original, resized
    # v * resized / original, in this order, as RSCoVLM and rszoo.data.detection_format
    return [int(v * iw / ow) if k % 2 == 0 else int(v * ih / oh) for k, v in enumerate(values)]


def grounding_values(record: Any, box_type: str, resized: Sequence[int], clockwise: bool = True) -> list[int]:
    """The integer box of a (unified) referring record in model-input pixels, as ``box_type`` wants it.

    ``hbb``: ``[x1, y1, x2, y2]``; ``quad``: 8 numbers scaled then ordered (RSCoVLM order); ``obb``:
    ``[cx, cy, w, h, angle_deg]`` of the minimum-area rectangle of the scaled quad (long side first), all ``int``.

    Example:
        >>> from rszoo.data.engine.sources import ReferringRecord
        >>> r = ReferringRecord("1", "/a.png", (100, 100), "the ship", [10, 20, 30, 40], "hbb",
        ...                     quad=[10, 20, 30, 20, 30, 40, 10, 40], hbox=[10, 20, 30, 40])
        >>> grounding_values(r, "hbb", (50, 50)), grounding_values(r, "quad", (50, 50))
        ([5, 10, 15, 20], [5, 10, 15, 10, 15, 20, 5, 20])
    """
    from rszoo.data.geometry import normalize_quad

    if record.quad is None or record.hbox is None:
        raise ValueError(f"grounding record {record.id!r} was not unified; run offline processing first")
    if box_type == "hbb":
        return _scaled(record.hbox, record.size, resized)
    quad = normalize_quad(_scaled(record.quad, record.size, resized), clockwise=clockwise)
    if box_type == "quad":
        return quad
    from rszoo.data.geometry import quad_to_rbox

    return [int(v) for v in quad_to_rbox(quad, degrees=True)]


def _user(parts: list[dict[str, Any]], text: str) -> dict[str, Any]:
    return {"role": "user", "content": [*parts, {"type": "text", "text": text}]}


def _with_system(system: str | None, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return ([{"role": "system", "content": system}] if system else []) + messages


def _qa_messages(record: Any, task: str, ctx: _Context) -> list[dict[str, Any]]:
    parts = [ctx.image_part(p, s) for p, s in zip(record.images, _sizes_of(record, len(record.images)))]
    if task == "caption":
        text = ctx.template("caption")
    elif task == "classification":
        if record.options:
            text = ctx.template("classification").format(classes=", ".join(record.options))
        elif record.question:
            text = record.question
        else:
            raise ValueError(f"classification record {record.id!r} has neither class options nor a question")
    else:
        text = ctx.template("vqa").format(question=ctx.synonyms(record.question))
    answer = record.answers[0] if len(record.answers) == 1 else ctx.rng.choice(record.answers)
    system = ctx.options.system_prompt or record.meta.get("system")
    return _with_system(system, [_user(parts, text), {"role": "assistant", "content": answer}])


def _grounding_messages(record: Any, ctx: _Context) -> list[dict[str, Any]]:
    opts = ctx.options
    box = opts.box_type or "hbb"
    part = ctx.image_part(record.image, record.size)
    resized = (part["resized_width"], part["resized_height"])
    fmt = "json" if ctx.rng.random() >= opts.prob_plain_text_prompt else "plain"
    values = grounding_values(record, box, resized, opts.clockwise)
    expression = ctx.synonyms(record.expression)
    if fmt == "plain":
        text = PLAIN_TEMPLATE.format(categories=expression)
        answer = ",".join(str(v) for v in values) + f" {expression}\n"
    else:
        pool = ctx.prompts or DEFAULT_PROMPTS["grounding" if box == "hbb" else "grounding_oriented"]
        text = ctx.rng.choice(list(pool)).format(expression=expression)
        item = json.dumps({_JSON_KEYS[box]: values, "label": expression}, ensure_ascii=False)
        answer = "```json\n[\n\t" + item + "\n]\n```"
    return _with_system(
        SYSTEM_PROMPTS[(box, fmt)], [_user([part], text), {"role": "assistant", "content": answer}]
    )


def _detection_messages(record: Any, ctx: _Context) -> list[dict[str, Any]]:
    opts = ctx.options
    resized = ctx.size(record.size)
    objects = [
        {
            "label": o.label,
            "poly": o.quad,
            "bbox": [o.hbox[0], o.hbox[1], o.hbox[2] - o.hbox[0], o.hbox[3] - o.hbox[1]],
        }
        for o in record.objects
        if not (opts.skip_difficult and o.difficult)
    ]
    return build_dense_det_messages(
        record.image,
        objects,
        record.categories,
        rng=ctx.rng,
        box=opts.box_type or "quad",
        original_size=tuple(record.size),
        input_size=resized,
        prob_plain_text_prompt=opts.prob_plain_text_prompt,
        prob_proxy_prompt=opts.prob_proxy_prompt,
        sort_key=opts.sort_key,
    )


def _zoom_question(record: Any) -> str:
    if not record.choices:
        return record.question
    return (
        record.question
        + " The choices are listed below: \n"
        + "".join(c + "\n" for c in record.choices)
        + _MCQ_TAIL
    )


def _zoom_messages(record: Any, ctx: _Context) -> list[dict[str, Any]]:
    from rszoo.data.zoom_chain import zoom_chain_messages

    question = _zoom_question(record)
    crops = record.crop_boxes if ctx.options.zoom_chain else None
    messages = zoom_chain_messages(
        record.image,
        question,
        record.answer,
        crops,
        original_size=tuple(record.size),
        min_pixels=ctx.min_pixels,
        max_pixels=ctx.max_pixels,
        factor=ctx.factor,
    )
    if len(messages) == 5:  # the chain: the user turn comes from the template pool
        messages[1]["content"][-1]["text"] = ctx.template("zoom_vqa").format(question=question)
        return messages
    return _with_system(ctx.options.system_prompt or record.meta.get("system"), messages)


def _conversation_messages(record: Any, ctx: _Context) -> list[dict[str, Any]]:
    messages = copy.deepcopy(record.messages)
    n_images = sum(
        1
        for m in messages
        if isinstance(m["content"], list)
        for p in m["content"]
        if p.get("type") == "image"
    )
    sizes = iter(_sizes_of(record, n_images))
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            if message["role"] == "user":
                message["content"] = ctx.synonyms(content)
            continue
        for k, part in enumerate(content):
            if part.get("type") == "image":
                size = next(sizes)
                w, h = ctx.size(size)
                content[k] = {**part, "resized_width": w, "resized_height": h}
            elif message["role"] == "user" and part.get("type") == "text":
                content[k] = {**part, "text": ctx.synonyms(part["text"])}
    return messages


def build_sample(
    record: Any,
    task: str,
    *,
    rng: random.Random,
    options: OnlineOptions,
    prompts: Sequence[str] | None,
    subset: str,
    min_pixels: int,
    max_pixels: int,
    factor: int = 28,
) -> dict[str, Any]:
    """One SFT messages row ``{"id", "task", "subset", "messages"}`` from a unified record.

    Args:
        record: a record of the kind ``task`` reads (after offline processing: sizes known, boxes unified).
        task: the subset task (:data:`TASKS`).
        rng: the sample's random generator (``random.Random(sample_seed(...))``).
        options: the subset's :class:`OnlineOptions`.
        prompts: the subset's template pool (None: :data:`DEFAULT_PROMPTS`).
        subset: the subset name (goes into ``id`` and ``subset``).
        min_pixels / max_pixels / factor: the dynamic-resolution bounds (must match the model's processor).
    """
    ctx = _Context(rng, options, prompts, factor, min_pixels, max_pixels)
    if task in ("classification", "vqa", "caption"):
        messages = _qa_messages(record, task, ctx)
    elif task == "grounding":
        messages = _grounding_messages(record, ctx)
    elif task == "detection":
        messages = _detection_messages(record, ctx)
    elif task == "zoom_vqa":
        messages = _zoom_messages(record, ctx)
    elif task == "conversation":
        messages = _conversation_messages(record, ctx)
    else:
        raise ValueError(f"unknown task {task!r}; expected one of {list(TASKS)}")
    return {"id": f"{subset}:{record.id}", "task": task, "subset": subset, "messages": messages}
