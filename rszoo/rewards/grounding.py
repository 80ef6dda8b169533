"""Grounding reward modules with trl's reward-function signature, registered in :data:`rszoo.registry.REWARDS`.

Each reward is a small picklable object: ``reward(prompts=None, completions=..., **kwargs) -> list[float]``, exactly
what ``trl.GRPOTrainer(reward_funcs=[...])`` calls (``completions`` are strings or conversational lists
``[{"role": "assistant", "content": ...}]``; every dataset column arrives as a kwargs list with one item per
completion; trl's extra kwargs ``completion_ids``, ``trainer_state``, ``log_extra``, ``log_metric`` are accepted).
``__name__`` is set on the instance, so trl logs ``rewards/<name>/mean``. The returned values are *unweighted*;
``weight`` is read by :class:`WeightedRewards` (pass ``reward_weights=[r.weight for r in rewards]`` to trl).

Columns read from kwargs:

* ``box`` -- GT ``[x1, y1, x2, y2]`` in **original** image pixels (required by every reward except ``format``);
* ``image_size`` -- original ``(W, H)``; if absent, ``image.size`` of a PIL ``image`` column (or the first of an
  ``images`` list) is used;
* ``input_size`` -- ``(W, H)`` of the resized model input; if absent it is computed with
  :func:`rszoo.data.resize.input_size_for` from ``image_size`` and the reward's ``factor``/``min_pixels``/``max_pixels``.

The model answers in input pixels (Qwen2.5-VL absolute coordinates); the predicted box is mapped back to original
pixels by the smart_resize ratio and every box reward is evaluated there. Original pixel space is where the GT and the
evaluation metrics live (VLM-R1 maps back the same way), and it is isotropic: smart_resize scales x and y by slightly
different ratios, which would otherwise stretch R_pos's kernel and the distance normalisers.

Model output never raises: an unparseable answer, a NaN box, an empty answer, or a box that is negative, inverted or
(by default) outside the input image scores 0 and is counted (``stats()``, ``reset_stats()``). Bad *inputs* (a
missing ``box`` column, a malformed GT) raise :class:`RewardError` showing the offending completion and its kwargs.

VLM-R1 parity configuration (``Qwen2VLModule.format_reward_rec`` + ``iou_reward``)::

    [{"name": "format", "mode": "vlmr1_rec"},
     {"name": "iou", "variant": "vlmr1", "parse_style": "vlmr1", "out_of_image": "allow"}]

RSGround-R1 (eq. 5: ``R = R_format + R_IoU + 0.1 R_pos``)::

    [{"name": "format"}, {"name": "iou"}, {"name": "positional", "weight": 0.1, "alpha": 2.5}]

Example:
    >>> reward = IoUReward()
    >>> completion = [{"role": "assistant", "content": '<think>..</think><answer>{"bbox_2d": [0, 0, 406, 406]}</answer>'}]
    >>> reward(completions=[completion, "no answer"], box=[[0, 0, 400, 400]] * 2, image_size=[(800, 800)] * 2)
    [1.0, 0.0]
    >>> reward.stats()["parse_failures"], reward.stats()["reasons"]
    (1, {'no_answer_tag': 1})
"""

from __future__ import annotations

import inspect
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from rszoo.data.answers import FORMAT_MODES, PARSE_STYLES, has_valid_format, parse_answer
from rszoo.data.resize import QWEN2_5_VL_FACTOR, box_to_original, input_size_for
from rszoo.registry import REWARDS
from rszoo.rewards import functional as F

__all__ = [
    "CenterDistanceReward",
    "DIoUReward",
    "FormatReward",
    "GIoUReward",
    "GroundingReward",
    "IoUReward",
    "PositionalReward",
    "RewardError",
    "WeightedRewardOutput",
    "WeightedRewards",
    "completion_text",
]

DEFAULT_MIN_PIXELS = 4 * 28 * 28  # 3136, Qwen2.5-VL's shipped min_pixels
DEFAULT_MAX_PIXELS = 16384 * 28 * 28  # 12,845,056, Qwen2.5-VL's shipped max_pixels
OutOfImage = Literal["zero", "clip", "allow"]
_TRL_CONTROL_KWARGS = {"trainer_state", "log_extra", "log_metric", "environments", "completion_ids"}


class RewardError(RuntimeError):
    """A reward function failed on one sample; the message shows the completion and that sample's kwargs."""

    def __init__(
        self, reward: str, index: int, completion: Any, sample: Mapping[str, Any], cause: BaseException
    ):
        self.reward, self.index, self.completion, self.sample = reward, index, completion, dict(sample)
        shown = "\n".join(f"    {k} = {_short_repr(v)}" for k, v in self.sample.items()) or "    (none)"
        super().__init__(
            f"reward {reward!r} failed on completion {index}: {type(cause).__name__}: {cause}\n"
            f"  completion = {_short_repr(completion, 2000)}\n  kwargs for this completion:\n{shown}"
        )


def _short_repr(value: Any, limit: int = 300) -> str:
    if hasattr(value, "size") and hasattr(value, "mode") and hasattr(value, "getpixel"):  # a PIL image
        return f"<PIL image {value.mode} {value.size[0]}x{value.size[1]}>"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def completion_text(completion: Any) -> str | None:
    """The text of a completion: a string, or the assistant content of a trl conversational list; else ``None``.

    Example:
        >>> completion_text([{"role": "assistant", "content": [{"type": "text", "text": "hi"}]}])
        'hi'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        completion = [completion]
    if isinstance(completion, Sequence):
        parts: list[str] = []
        for message in completion:
            if not isinstance(message, Mapping) or message.get("role", "assistant") != "assistant":
                continue
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, Sequence):
                parts.extend(
                    p["text"] for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str)
                )
        return "".join(parts) if parts else None
    return None


def _sample_kwargs(kwargs: Mapping[str, Any], index: int, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in _TRL_CONTROL_KWARGS:
            continue
        if isinstance(value, list | tuple) and len(value) == n:
            out[key] = value[index]
        else:
            out[key] = value
    return out


def _column(kwargs: Mapping[str, Any], key: str, index: int, n: int) -> Any:
    if key not in kwargs or kwargs[key] is None:
        return None
    value = kwargs[key]
    if not isinstance(value, list | tuple) or len(value) != n:
        got = f"{len(value)} items" if isinstance(value, list | tuple) else type(value).__name__
        raise ValueError(
            f"kwargs column {key!r} must be a list with one item per completion ({n}); got {got}"
        )
    return value[index]


def _as_size(value: Any, key: str) -> tuple[int, int]:
    try:
        w, h = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be (width, height), got {value!r}") from None
    if not (w > 0 and h > 0 and w == int(w) and h == int(h)):
        raise ValueError(f"{key} must be two positive integers (width, height), got {value!r}")
    return int(w), int(h)


@dataclass(frozen=True)
class _Geometry:
    gt: list[float] | None
    image_size: tuple[int, int] | None
    input_size: tuple[int, int] | None


class GroundingReward:
    """Base class: per-completion parsing, box checks, original-pixel mapping, failure counters and error wrapping.

    Args:
        weight: this reward's weight in a weighted sum (not applied by ``__call__``).
        parse_style: answer parser, see :func:`rszoo.data.answers.parse_answer`.
        out_of_image: what to do with a box outside the input image ``[0, W_in] x [0, H_in]``: ``"zero"`` (reward 0,
            counted), ``"clip"`` (clip to the image, then score; 0 if nothing is left) or ``"allow"`` (score as is,
            like VLM-R1). Negative coordinates are "outside" too. Inverted/zero-area boxes always score 0.
        factor, min_pixels, max_pixels: smart_resize settings used when ``input_size`` is not given.
    """

    name: ClassVar[str] = ""
    needs_gt: ClassVar[bool] = True

    def __init__(
        self,
        weight: float = 1.0,
        *,
        parse_style: str = "tolerant",
        out_of_image: OutOfImage = "zero",
        factor: int = QWEN2_5_VL_FACTOR,
        min_pixels: int = DEFAULT_MIN_PIXELS,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        if parse_style not in PARSE_STYLES:
            raise ValueError(f"{self.name}: parse_style must be one of {PARSE_STYLES}, got {parse_style!r}")
        if out_of_image not in ("zero", "clip", "allow"):
            raise ValueError(
                f"{self.name}: out_of_image must be 'zero', 'clip' or 'allow', got {out_of_image!r}"
            )
        if not math.isfinite(weight):
            raise ValueError(f"{self.name}: weight must be finite, got {weight}")
        self.weight = float(weight)
        self.parse_style = parse_style
        self.out_of_image = out_of_image
        self.factor, self.min_pixels, self.max_pixels = int(factor), int(min_pixels), int(max_pixels)
        self.__name__ = self.name
        self.reset_stats()

    # -- counters ---------------------------------------------------------------------------------------------------
    def reset_stats(self) -> None:
        """Clear the call/completion/failure counters."""
        self._calls = 0
        self._completions = 0
        self._reasons: Counter[str] = Counter()

    def stats(self) -> dict[str, Any]:
        """Counters since the last :meth:`reset_stats`: calls, completions, parse_failures, failure_rate, reasons."""
        failures = sum(self._reasons.values())
        return {
            "calls": self._calls,
            "completions": self._completions,
            "parse_failures": failures,
            "failure_rate": failures / self._completions if self._completions else 0.0,
            "reasons": dict(sorted(self._reasons.items())),
        }

    # -- the trl entry point ----------------------------------------------------------------------------------------
    def __call__(
        self, prompts: Any = None, completions: Sequence[Any] | None = None, **kwargs: Any
    ) -> list[float]:
        if completions is None:
            raise TypeError(f"reward {self.name!r}: completions= is required (trl passes it by keyword)")
        n = len(completions)
        rewards: list[float] = []
        call_reasons: Counter[str] = Counter()
        for index, completion in enumerate(completions):
            try:
                geometry = self._geometry(kwargs, index, n)
                value, reason = self._score_completion(completion_text(completion), geometry)
            except Exception as exc:
                raise RewardError(
                    self.name, index, completion, _sample_kwargs(kwargs, index, n), exc
                ) from exc
            if reason:
                call_reasons[reason] += 1
            rewards.append(float(value))
        self._calls += 1
        self._completions += n
        self._reasons.update(call_reasons)
        log_metric = kwargs.get("log_metric")
        if callable(log_metric) and n:
            log_metric(f"{self.__name__}/parse_failure_rate", sum(call_reasons.values()) / n)
        return rewards

    # -- per-sample pieces ------------------------------------------------------------------------------------------
    def _geometry(self, kwargs: Mapping[str, Any], index: int, n: int) -> _Geometry:
        if not self.needs_gt:
            return _Geometry(None, None, None)
        raw_gt = _column(kwargs, "box", index, n)
        if raw_gt is None:
            raise ValueError(
                f"reward {self.name!r} needs the GT column 'box' ([x1, y1, x2, y2], original pixels)"
            )
        try:
            gt = [float(v) for v in raw_gt]
        except (TypeError, ValueError):
            raise ValueError(f"GT 'box' must be 4 numbers [x1, y1, x2, y2], got {raw_gt!r}") from None
        if len(gt) != 4 or not all(math.isfinite(v) for v in gt):
            raise ValueError(f"GT 'box' must be 4 finite numbers [x1, y1, x2, y2], got {raw_gt!r}")
        raw_size = _column(kwargs, "image_size", index, n)
        if raw_size is None:
            image = _column(kwargs, "image", index, n)
            if image is None:
                images = _column(kwargs, "images", index, n)
                image = images[0] if isinstance(images, list | tuple) and images else None
            raw_size = getattr(image, "size", None)  # PIL: (width, height); a NumPy array's int size is not
            if not (isinstance(raw_size, tuple) and len(raw_size) == 2):
                raise ValueError(
                    f"reward {self.name!r} needs the original image size: give an 'image_size' column (width, height) "
                    "or a PIL 'image' column"
                )
        image_size = _as_size(raw_size, "image_size")
        raw_input = _column(kwargs, "input_size", index, n)
        if raw_input is None:
            input_size = input_size_for(image_size, self.factor, self.min_pixels, self.max_pixels)
        else:
            input_size = _as_size(raw_input, "input_size")
        return _Geometry(gt, image_size, input_size)

    def _score_completion(self, text: str | None, geometry: _Geometry) -> tuple[float, str]:
        if text is None:
            return 0.0, "not_text"
        parsed = parse_answer(text, style=self.parse_style)  # type: ignore[arg-type]
        if parsed.box is None:
            return 0.0, parsed.reason or "no_box"
        box, reason = self._check_box(parsed.box, geometry.input_size)  # type: ignore[arg-type]
        if box is None:
            return 0.0, reason
        original = box_to_original(box, geometry.input_size, geometry.image_size)  # type: ignore[arg-type]
        return self.score(original, geometry.gt, geometry.image_size), ""  # type: ignore[arg-type]

    def _check_box(self, box: list[float], input_size: tuple[int, int]) -> tuple[list[float] | None, str]:
        x1, y1, x2, y2 = box
        if not (x2 > x1 and y2 > y1):
            return None, "inverted"
        w_in, h_in = input_size
        negative = min(box) < 0
        outside = negative or x2 > w_in or y2 > h_in
        if not outside or self.out_of_image == "allow":
            return box, ""
        if self.out_of_image == "zero":
            return None, "negative" if negative else "out_of_image"
        clipped = [
            min(max(x1, 0.0), w_in),
            min(max(y1, 0.0), h_in),
            min(max(x2, 0.0), w_in),
            min(max(y2, 0.0), h_in),
        ]
        if not (clipped[2] > clipped[0] and clipped[3] > clipped[1]):
            return None, "out_of_image"
        return clipped, ""

    def score(self, pred: list[float], gt: list[float], image_size: tuple[int, int]) -> float:
        """The reward for a valid predicted box; both boxes in original pixels."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weight={self.weight}, parse_style={self.parse_style!r}, out_of_image={self.out_of_image!r})"


@REWARDS.register("format", range="{0, 1}", source="VLM-R1 format_reward_rec / grpo_jsonl.format_reward")
class FormatReward(GroundingReward):
    """1.0 when the completion has the think + answer + box format, else 0.0 (failures counted).

    Args:
        mode: see :func:`rszoo.data.answers.has_valid_format`; ``"vlmr1_rec"`` reproduces VLM-R1's REC format reward.
        weight: weight in a weighted sum.

    Example:
        >>> FormatReward()(completions=["<think>a</think><answer>[1, 2, 3, 4]</answer>", "[1, 2, 3, 4]"])
        [1.0, 0.0]
    """

    name = "format"
    needs_gt = False

    def __init__(self, weight: float = 1.0, *, mode: str = "search", **options: Any) -> None:
        if mode not in FORMAT_MODES:
            raise ValueError(f"format: mode must be one of {FORMAT_MODES}, got {mode!r}")
        self.mode = mode
        super().__init__(weight, **options)

    def _score_completion(self, text: str | None, geometry: _Geometry) -> tuple[float, str]:
        if text is None:
            return 0.0, "not_text"
        if has_valid_format(text, mode=self.mode):  # type: ignore[arg-type]
            return 1.0, ""
        parsed = parse_answer(text, style="vlmr1" if self.mode.startswith("vlmr1") else "tolerant")
        return 0.0, parsed.reason or "bad_format"


@REWARDS.register("iou", range="[0, 1]", source="VLM-R1 iou_reward; RSGround-R1 R_IoU")
class IoUReward(GroundingReward):
    """IoU between the predicted and GT boxes, in original pixels.

    Args:
        variant: ``"continuous"`` (standard IoU, :func:`rszoo.rewards.functional.iou`) or ``"vlmr1"`` (VLM-R1's
            +-1 px quirk, :func:`rszoo.rewards.functional.vlmr1_iou`).
        **options: see :class:`GroundingReward`.
    """

    name = "iou"

    def __init__(self, weight: float = 1.0, *, variant: str = "continuous", **options: Any) -> None:
        if variant not in ("continuous", "vlmr1"):
            raise ValueError(f"iou: variant must be 'continuous' or 'vlmr1', got {variant!r}")
        self.variant = variant
        super().__init__(weight, **options)

    def score(self, pred: list[float], gt: list[float], image_size: tuple[int, int]) -> float:
        return float(F.vlmr1_iou(pred, gt) if self.variant == "vlmr1" else F.iou(pred, gt))


@REWARDS.register("giou", range="[0, 1]", source="RSGround-R1 Table 4 (GIoU)")
class GIoUReward(GroundingReward):
    """GIoU reward, rescaled to [0, 1] as ``(GIoU + 1) / 2`` by default so that a parse failure (0) is never better
    than a valid but distant box (raw GIoU < 0). ``rescale=False`` returns raw GIoU in [-1, 1]."""

    name = "giou"

    def __init__(self, weight: float = 1.0, *, rescale: bool = True, **options: Any) -> None:
        self.rescale = bool(rescale)
        super().__init__(weight, **options)

    def score(self, pred: list[float], gt: list[float], image_size: tuple[int, int]) -> float:
        value = float(F.giou(pred, gt))
        return (value + 1.0) / 2.0 if self.rescale else value


@REWARDS.register("diou", range="[0, 1]", source="RSGround-R1 Table 4 (DIoU)")
class DIoUReward(GroundingReward):
    """DIoU reward, rescaled to [0, 1] as ``(DIoU + 1) / 2`` by default (see :class:`GIoUReward`)."""

    name = "diou"

    def __init__(self, weight: float = 1.0, *, rescale: bool = True, **options: Any) -> None:
        self.rescale = bool(rescale)
        super().__init__(weight, **options)

    def score(self, pred: list[float], gt: list[float], image_size: tuple[int, int]) -> float:
        value = float(F.diou(pred, gt))
        return (value + 1.0) / 2.0 if self.rescale else value


@REWARDS.register("center_distance", range="[0, 1]", source="RSGround-R1 Table 4 (center distance)")
class CenterDistanceReward(GroundingReward):
    """``1 - d / D``: ``d`` the distance between box centres, ``D`` the original image diagonal."""

    name = "center_distance"

    def score(self, pred: list[float], gt: list[float], image_size: tuple[int, int]) -> float:
        return float(F.center_distance(pred, gt, image_size=image_size))


@REWARDS.register(
    "positional", range="[0, 1]", source="RSGround-R1 eq. 2-4 (R_pos)", paper_alpha=2.5, paper_beta=0.1
)
class PositionalReward(GroundingReward):
    """RSGround-R1's positional reward R_pos (:func:`rszoo.rewards.functional.positional`), in original pixels.

    Args:
        alpha: kernel width relative to the GT size (paper: 2.5). The paper weights this reward by beta = 0.1.
        clip_to_image: clip the predicted pixels to the original image before averaging.
        **options: see :class:`GroundingReward`.
    """

    name = "positional"

    def __init__(
        self, weight: float = 1.0, *, alpha: float = 2.5, clip_to_image: bool = True, **options: Any
    ) -> None:
        if not alpha > 0:
            raise ValueError(f"positional: alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)
        self.clip_to_image = bool(clip_to_image)
        super().__init__(weight, **options)

    def score(self, pred: list[float], gt: list[float], image_size: tuple[int, int]) -> float:
        return float(
            F.positional(pred, gt, alpha=self.alpha, image_size=image_size if self.clip_to_image else None)
        )


@dataclass(frozen=True)
class WeightedRewardOutput:
    """Per-function rewards and their weighted sum for one batch of completions.

    Attributes:
        per_function: ``{name: (N,) array}`` of unweighted rewards, in spec order.
        weights: ``{name: weight}``.
        total: ``(N,)`` array, ``sum_k weight_k * reward_k``.
    """

    per_function: dict[str, np.ndarray]
    weights: dict[str, float]
    total: np.ndarray

    @property
    def matrix(self) -> np.ndarray:
        """``(N, K)`` unweighted rewards, columns in spec order (trl's ``rewards_per_func`` layout)."""
        return np.stack(list(self.per_function.values()), axis=1)


class WeightedRewards:
    """Several rewards built from specs ``{"name": ..., "weight": ..., **options}`` via the registry.

    A spec may carry ``"label"`` to register the same reward twice with different options (labels must be unique;
    the label becomes the reward's ``__name__``).

    Example:
        >>> rewards = WeightedRewards([{"name": "format"}, {"name": "iou"}, {"name": "positional", "weight": 0.1}])
        >>> out = rewards(completions=['<think>x</think><answer>{"bbox_2d": [0, 0, 812, 812]}</answer>'],
        ...               box=[[0, 0, 800, 800]], image_size=[(800, 800)])
        >>> [round(float(v), 4) for v in out.total]  # 1 + 1 + 0.1 * R_pos(full image == GT)
        [2.0949]
    """

    def __init__(self, specs: Sequence[Mapping[str, Any]]) -> None:
        if isinstance(specs, Mapping) or not isinstance(specs, Sequence) or not specs:
            raise ValueError(
                "WeightedRewards: specs must be a non-empty list of {'name': ..., 'weight': ...} dicts"
            )
        self.funcs: list[GroundingReward] = []
        labels: list[str] = []
        for k, spec in enumerate(specs):
            if not isinstance(spec, Mapping) or "name" not in spec:
                raise ValueError(
                    f"reward spec #{k} must be a dict with a 'name' key (one of {REWARDS.list()}), got {spec!r}"
                )
            options = dict(spec)
            name = options.pop("name")
            label = str(options.pop("label", name))
            cls = REWARDS.get(name)
            try:
                func = cls(**options)
            except TypeError as exc:
                raise TypeError(
                    f"reward spec #{k} ({name!r}): {exc}; {cls.__name__} accepts {_option_names(cls)}"
                ) from None
            if label in labels:
                raise ValueError(
                    f"reward spec #{k}: label {label!r} is used twice; give one spec a distinct 'label'"
                )
            func.__name__ = label
            labels.append(label)
            self.funcs.append(func)
        self.names = labels

    @property
    def weights(self) -> list[float]:
        return [f.weight for f in self.funcs]

    def __call__(
        self, prompts: Any = None, completions: Sequence[Any] | None = None, **kwargs: Any
    ) -> WeightedRewardOutput:
        per_function = {
            name: np.asarray(func(prompts=prompts, completions=completions, **kwargs), dtype=np.float64)
            for name, func in zip(self.names, self.funcs)
        }
        weights = dict(zip(self.names, self.weights))
        n = len(completions) if completions is not None else 0
        total = np.zeros(n, dtype=np.float64)
        for name, values in per_function.items():
            total += weights[name] * values
        return WeightedRewardOutput(per_function, weights, total)

    def stats(self) -> dict[str, dict[str, Any]]:
        """``{name: reward.stats()}``."""
        return {name: func.stats() for name, func in zip(self.names, self.funcs)}

    def reset_stats(self) -> None:
        for func in self.funcs:
            func.reset_stats()

    def __repr__(self) -> str:
        return "WeightedRewards(" + ", ".join(f"{n}*{w:g}" for n, w in zip(self.names, self.weights)) + ")"


def _option_names(cls: Callable[..., Any]) -> list[str]:
    names: list[str] = []
    for klass in inspect.getmro(cls):  # type: ignore[arg-type]
        if klass is not object and "__init__" in vars(klass):
            params = inspect.signature(vars(klass)["__init__"]).parameters.values()
            names += [p.name for p in params if p.name not in ("self", "options") and p.name not in names]
    return names
