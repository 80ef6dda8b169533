"""An offline tiny tokenizer and processor that behave like Qwen's.

Real Qwen-VL tokenizers cannot be downloaded on an offline machine, yet tests, demos and tiny presets need the exact
mechanics: byte-level BPE (any string round-trips), Qwen's pre-tokenisation (digits split one by one, so coordinates
tokenise like Qwen's), Qwen's special tokens (``<|im_start|>``, ``<|im_end|>``, ``<|vision_start|>``, ``<|image_pad|>``
...), appended *after* the BPE vocabulary as in Qwen, and Qwen's chat templates (Qwen2.5-VL inserts a default system
turn; Qwen3-VL does not).

The BPE is trained deterministically on :func:`training_corpus` and shipped in ``assets/qwen_tiny/tokenizer.json``;
:func:`build_tokenizer` rebuilds it byte-identically (a test checks this), so the file is reproducible, not magic.

Example:
    >>> tok = load_tokenizer()
    >>> tok.decode(tok.encode('{"bbox_2d": [12, 40, 30, 55]}'))
    '{"bbox_2d": [12, 40, 30, 55]}'
    >>> tok.convert_ids_to_tokens(tok.encode("2024"))
    ['2', '0', '2', '4']
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

from rszoo.registry import TOKENIZERS

__all__ = [
    "CHAT_TEMPLATES",
    "SPECIAL_TOKENS",
    "build_processor",
    "build_tokenizer",
    "load_tokenizer",
    "training_corpus",
]

ASSETS = Path(__file__).resolve().parent / "assets" / "qwen_tiny"
VOCAB_SIZE = 2048  # BPE vocabulary before special tokens; small so tiny models stay tiny

# Qwen2.5-VL's special tokens, in Qwen's order (ids follow the BPE vocabulary, as in Qwen where they start at 151643).
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
# Added (non-special) tokens: Qwen2.5 tokenises tool calls as single tokens; Qwen3 also has <think> tags.
ADDED_TOKENS = ["<tool_call>", "</tool_call>", "<think>", "</think>"]

# Qwen's pre-tokeniser: contractions, letters with one leading non-letter, single digits, punctuation runs, newlines.
QWEN_SPLIT_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"

_QWEN2_5_VL_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen3-VL Instruct: no default system turn; otherwise the same layout.
_QWEN3_VL_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CHAT_TEMPLATES = {"qwen2_5_vl": _QWEN2_5_VL_TEMPLATE, "qwen3_vl": _QWEN3_VL_TEMPLATE}

# -- corpus ---------------------------------------------------------------------------------------------------------
_CATEGORIES = [
    "building", "small vehicle", "large vehicle", "ship", "plane", "storage tank", "tennis court", "swimming pool",
    "harbor", "bridge", "roundabout", "helicopter", "baseball diamond", "basketball court", "soccer ball field",
    "ground track field", "vehicle", "airport", "dam", "windmill", "chimney", "golf field", "stadium", "train station",
    "overpass", "expressway toll station", "expressway service area", "road", "river", "vegetation", "water",
    "bare soil", "urban fabric", "forest", "farmland", "parking lot", "runway", "apron", "container", "crane",
]  # fmt: skip
_COLOURS = [
    "white",
    "black",
    "grey",
    "red",
    "blue",
    "green",
    "yellow",
    "orange",
    "brown",
    "silver",
    "dark",
    "light",
]
_POSITIONS = [
    "top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right",
    "upper", "lower", "middle", "corner", "edge", "side",
]  # fmt: skip
_RELATIONS = [
    "left of",
    "right of",
    "above",
    "below",
    "next to",
    "near",
    "between",
    "beside",
    "along",
    "across",
]
_SIZES = ["small", "medium", "large", "largest", "smallest", "tiny", "huge", "long", "wide", "narrow"]
_SENTENCES = [
    "You are a helpful assistant.",
    "First output the thinking process in <think> </think> tags and then output the final answer in <answer> </answer> tags. Output the final answer in JSON format.",
    "Please provide the bounding box coordinates of the region this sentence describes:",
    "Describe the image in detail.",
    "How many {c}s are there in the image?",
    "Is there a {c} in the image? Answer yes or no.",
    "What color is the {c} in the {p}?",
    "Where is the {s} {c} located? Answer with a grid cell.",
    "Are there more {c}s than {c2}s?",
    "the {s} {c} {r} the {c2}",
    "the {col} {c} in the {p} of the image",
    "The image shows a {c} {r} a {s} {col} {c2} in the {p}.",
    "The target is the {s} {col} {c}; there are several {c}s, so the position matters.",
    "It lies in the {p} cell of a 3x3 grid, {r} the {c2}.",
    "Find the {c}s and output the oriented bounding boxes.",
    "find the {c}, {c2}.",
    "There are none.",
    "Zoom in to the region of interest and answer the question.",
    "Here's the zoomed-in image. You can complete your task now.",
    "Locate every item from the category list in the image and output the coordinates in JSON format.",
    "What has changed between the two images?",
    "Predict the scene after the given time.",
    "Generate a remote sensing image of {s} {c}s {r} a {c2}.",
    "The answer is yes.",
    "The answer is no.",
]
_STRUCTURED = [
    '{"bbox_2d": [12, 40, 130, 255], "label": "small vehicle"}',
    '```json\n[\n\t{"bbox_2d": [104, 8, 512, 300], "label": "ship"}\n]\n```',
    '{"quadrant bbox": [10, 20, 30, 22, 28, 40, 8, 38], "label": "plane"}',
    "12,40,30,44,28,55,10,51 small vehicle\n",
    '<tool_call>\n{"name": "image_zoom_in", "arguments": {"bbox": [100, 200, 300, 400]}}\n</tool_call>',
    '<think>The expression asks for a building.</think><answer>{"bbox_2d": [1, 2, 3, 4]}</answer>',
]


def training_corpus() -> list[str]:
    """The deterministic corpus the tiny BPE is trained on: remote-sensing vocabulary, prompts and answer formats."""
    lines: list[str] = []
    for i, template in enumerate(_SENTENCES):
        for j, cat in enumerate(_CATEGORIES):
            k = i + j
            lines.append(
                template.format(
                    c=cat,
                    c2=_CATEGORIES[(k * 7 + 3) % len(_CATEGORIES)],
                    p=_POSITIONS[k % len(_POSITIONS)],
                    r=_RELATIONS[k % len(_RELATIONS)],
                    s=_SIZES[k % len(_SIZES)],
                    col=_COLOURS[k % len(_COLOURS)],
                )
            )
    lines += _STRUCTURED * 20
    lines += ["<|im_start|>system\n", "<|im_start|>user\n", "<|im_start|>assistant\n"] * 20
    lines += [" ".join(str(n) for n in range(start, start + 50)) for start in range(0, 2000, 50)]
    lines += [" ".join(words) for words in (_CATEGORIES, _COLOURS, _POSITIONS, _RELATIONS, _SIZES)]
    return lines


# -- building and loading --------------------------------------------------------------------------------------------
def build_tokenizer(corpus: list[str] | None = None, vocab_size: int = VOCAB_SIZE) -> Any:
    """Train the byte-level BPE from ``corpus`` (default :func:`training_corpus`); returns a ``tokenizers.Tokenizer``.

    Deterministic: the same corpus gives a byte-identical ``tokenizer.json``.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(corpus if corpus is not None else training_corpus(), trainer=trainer)
    tok.add_special_tokens(SPECIAL_TOKENS)
    tok.add_tokens(ADDED_TOKENS)
    return tok


def write_assets(directory: Path = ASSETS) -> None:
    """Rebuild the shipped ``tokenizer.json`` (maintainers run this after changing the corpus)."""
    from rszoo.utils.io import atomic_write_text

    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(directory / "tokenizer.json", build_tokenizer().to_str(pretty=True) + "\n")


@functools.cache
def _tokenizer_json() -> str:
    path = ASSETS / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"the tiny tokenizer file {path} is missing; rebuild it with "
            "`python -c 'from rszoo.tokenizers.qwen_tiny import write_assets; write_assets()'`"
        )
    return path.read_text()


def load_tokenizer(family: Literal["qwen2_5_vl", "qwen3_vl"] = "qwen2_5_vl") -> Any:
    """The shipped tiny tokenizer as a ``PreTrainedTokenizerFast`` with Qwen's chat template for ``family``."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    if family not in CHAT_TEMPLATES:
        raise ValueError(f"unknown Qwen-VL family {family!r}; expected one of {sorted(CHAT_TEMPLATES)}")
    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json()),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        model_max_length=32768,
        padding_side="right",
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
    )
    tok.chat_template = CHAT_TEMPLATES[family]
    return tok


def special_token_ids(tokenizer: Any) -> dict[str, int]:
    """The ids a Qwen-VL config needs: image/video pads, vision start/end, bos/eos/pad."""
    ids = {
        "image_token_id": tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        "video_token_id": tokenizer.convert_tokens_to_ids("<|video_pad|>"),
        "vision_start_token_id": tokenizer.convert_tokens_to_ids("<|vision_start|>"),
        "vision_end_token_id": tokenizer.convert_tokens_to_ids("<|vision_end|>"),
        "bos_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
        "pad_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
    }
    return ids


def build_processor(
    family: Literal["qwen2_5_vl", "qwen3_vl"] = "qwen2_5_vl",
    min_pixels: int = 56 * 56,
    max_pixels: int = 448 * 448,
) -> Any:
    """A real transformers Qwen-VL processor around the tiny tokenizer (saves and reloads with ``AutoProcessor``).

    Example:
        >>> proc = build_processor("qwen2_5_vl", min_pixels=56 * 56, max_pixels=112 * 112)
        >>> type(proc).__name__
        'Qwen2_5_VLProcessor'
    """
    from transformers import Qwen2VLImageProcessor

    tokenizer = load_tokenizer(family)
    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLProcessor
        from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

        patch = 14
        image_processor = Qwen2VLImageProcessor(
            patch_size=patch,
            merge_size=2,
            temporal_patch_size=2,
            min_pixels=min_pixels,
            max_pixels=max_pixels,
        )
        video = Qwen2VLVideoProcessor(patch_size=patch, merge_size=2, temporal_patch_size=2)
        return Qwen2_5_VLProcessor(
            image_processor=image_processor,
            tokenizer=tokenizer,
            video_processor=video,
            chat_template=CHAT_TEMPLATES[family],
        )
    from transformers import Qwen3VLProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    patch = 16
    image_processor = Qwen2VLImageProcessor(
        patch_size=patch,
        merge_size=2,
        temporal_patch_size=2,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    video = Qwen3VLVideoProcessor(patch_size=patch, merge_size=2, temporal_patch_size=2)
    return Qwen3VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video,
        chat_template=CHAT_TEMPLATES[family],
    )


TOKENIZERS.register("qwen_tiny", obj=load_tokenizer, kind="text", family="qwen")
TOKENIZERS.register(
    "qwen2_5_vl-tiny-processor", obj=functools.partial(build_processor, "qwen2_5_vl"), kind="visual"
)
TOKENIZERS.register(
    "qwen3_vl-tiny-processor", obj=functools.partial(build_processor, "qwen3_vl"), kind="visual"
)
