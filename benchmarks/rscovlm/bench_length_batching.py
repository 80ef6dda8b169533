"""Padding waste of random batching vs the data engine's length-aware batching, counted with the real tokenizer.

A weighted mixture of synthetic-world subsets at 224, 448 and 896 px (VQA, captions, grounding, dense detection) plus
text-only conversations is drawn by :class:`rszoo.data.engine.mixture.WeightedMixtureSampler` twice with the same
seed: once in draw order (random batching, the alternative) and once with ``group_by_length=True`` (the same samples,
regrouped by the engine's tokenizer-free length estimate inside shuffled mega-batches). Every sample is then rendered
with the chat template and run through the real tiny Qwen2.5-VL processor
(``rszoo.tokenizers.qwen_tiny.build_processor("qwen2_5_vl", min_pixels=224*224, max_pixels=1008*1008)``, images
decoded and resized exactly as the SFT collate does) to count its actual tokens. For consecutive batches of 8 we
report the padding fraction ``sum(max_len * n - sum(len)) / sum(max_len * n)`` (padded tokens / tokens in the padded
batches), for two settings: native sizes, and RSCoVLM's random resize with probability 0.5.

Usage: ``python benchmarks/rscovlm/bench_length_batching.py [--samples 800] [--batch 8]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from _common import save_result  # noqa: E402

MIN_PIXELS, MAX_PIXELS = 224 * 224, 1008 * 1008
SIZES = (224, 448, 896)


def write_data(root: Path, scenes: int) -> None:
    """Synthetic scenes at three sizes and a text-only conversation file."""
    from rszoo.data.synth import write_dataset
    from rszoo.utils.io import atomic_write_text

    for k, size in enumerate(SIZES):
        write_dataset(root / f"s{size}", num_scenes=scenes, seed=10 + k, size=size, max_expressions=3)
    rows = []
    for i in range(60):  # questions and answers of varied length, no image
        question = "Explain " + " and ".join(["ground sample distance"] * (1 + i % 4)) + " in remote sensing."
        answer = " ".join(
            ["The ground sample distance is the size of one pixel on the ground."] * (1 + i % 7)
        )
        rows.append(
            {
                "id": f"text-{i}",
                "task": "conversation",
                "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            }
        )
    atomic_write_text(root / "text.jsonl", "".join(json.dumps(r) + "\n" for r in rows))


def recipe(root: Path, prob_random_resize: float) -> Any:
    from rszoo.data.engine.recipe import parse_data_recipe

    subsets = []
    for size in SIZES:
        base = root / f"s{size}"
        subsets += [
            {
                "name": f"vqa{size}",
                "task": "vqa",
                "weight": 1.0,
                "source": {
                    "format": "messages",
                    "annotations": str(base / "messages.jsonl"),
                    "tasks": ["vqa"],
                },
                "prompts": ["{question}"],
            },
            {
                "name": f"caption{size}",
                "task": "caption",
                "weight": 0.5,
                "source": {
                    "format": "messages",
                    "annotations": str(base / "messages.jsonl"),
                    "tasks": ["caption"],
                },
            },
            {
                "name": f"grounding{size}",
                "task": "grounding",
                "weight": 1.0,
                "source": {"format": "grounding_jsonl", "annotations": str(base / "grounding.jsonl")},
            },
            {
                "name": f"det{size}",
                "task": "detection",
                "weight": 0.5,
                "source": {
                    "format": "dota",
                    "labels": str(base / "dota/labelTxt"),
                    "images": str(base / "images"),
                },
            },
        ]
    subsets.append(
        {
            "name": "text",
            "task": "conversation",
            "weight": 2.0,
            "source": {"format": "messages", "annotations": str(root / "text.jsonl")},
        }
    )
    return parse_data_recipe(
        {
            "online": {"prob_random_resize": prob_random_resize, "prob_plain_text_prompt": 0.5},
            "subsets": subsets,
        }
    )


def actual_tokens(processor: Any, sample: dict[str, Any]) -> int:
    """Token count of one sample exactly as the SFT collate builds it (chat template + processor)."""
    from rszoo.models.vlm.model import load_message_images

    images = load_message_images(sample["messages"]) or None
    text = processor.apply_chat_template(sample["messages"], tokenize=False, add_generation_prompt=False)
    return int(processor(text=[text], images=images, return_tensors="pt")["input_ids"].shape[1])


def padding_fraction(lengths: list[int], batch: int) -> tuple[float, int, int]:
    """``(padding fraction, padded tokens, tokens in padded batches)`` of consecutive batches."""
    padded = total = 0
    for i in range(0, len(lengths), batch):
        chunk = lengths[i : i + batch]
        padded += max(chunk) * len(chunk)
        total += sum(chunk)
    return (padded - total) / padded, padded - total, padded


def spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def run_setting(
    root: Path, processor: Any, prob_random_resize: float, samples: int, batch: int
) -> dict[str, Any]:
    from rszoo.data.engine.mixture import MixtureDataset, WeightedMixtureSampler

    data = MixtureDataset(
        recipe(root, prob_random_resize), seed=0, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS
    )
    common = {"seed": 1, "samples_per_epoch": samples, "batch_size": batch}
    t0 = time.perf_counter()
    random_keys = list(WeightedMixtureSampler(data, **common))
    t_random = time.perf_counter() - t0
    t0 = time.perf_counter()
    grouped_keys = list(WeightedMixtureSampler(data, group_by_length=True, **common))
    t_grouped = time.perf_counter() - t0
    assert sorted(random_keys) == sorted(grouped_keys), "grouping must only reorder the epoch"
    tokens: dict[Any, int] = {}
    estimates: dict[Any, int] = {}
    t0 = time.perf_counter()
    for key in random_keys:
        if key not in tokens:
            tokens[key] = actual_tokens(processor, data[key])
            estimates[key] = data.estimate_tokens(key)
    t_count = time.perf_counter() - t0
    rand = padding_fraction([tokens[k] for k in random_keys], batch)
    grouped = padding_fraction([tokens[k] for k in grouped_keys], batch)
    lengths = [tokens[k] for k in random_keys]
    return {
        "prob_random_resize": prob_random_resize,
        "samples": samples,
        "subset_sizes": dict(zip(data.subset_names, data.subset_sizes)),
        "tokens": {"min": min(lengths), "median": sorted(lengths)[len(lengths) // 2], "max": max(lengths)},
        "random": {"padding_fraction": rand[0], "padded_tokens": rand[1], "batch_tokens": rand[2]},
        "length_aware": {
            "padding_fraction": grouped[0],
            "padded_tokens": grouped[1],
            "batch_tokens": grouped[2],
        },
        "padding_ratio_random_over_length_aware": rand[1] / max(1, grouped[1]),
        "batch_tokens_ratio_random_over_length_aware": rand[2] / grouped[2],
        "estimate_vs_actual_spearman": spearman([estimates[k] for k in tokens], [tokens[k] for k in tokens]),
        "sampler_epoch_seconds": {"random": t_random, "length_aware": t_grouped},
        "token_counting_seconds": t_count,
        "_lengths": lengths,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=800, help="samples per epoch (weighted draws)")
    parser.add_argument("--batch", type=int, default=8, help="batch size")
    parser.add_argument("--scenes", type=int, default=4, help="synthetic scenes per image size")
    args = parser.parse_args()

    from rszoo.tokenizers.qwen_tiny import build_processor

    processor = build_processor("qwen2_5_vl", min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_data(root, args.scenes)
        results = [run_setting(root, processor, p, args.samples, args.batch) for p in (0.0, 0.5)]
    lengths = [r.pop("_lengths") for r in results]
    for r in results:
        print(
            f"random resize p={r['prob_random_resize']}: padding {r['random']['padding_fraction']:.1%} (random) vs "
            f"{r['length_aware']['padding_fraction']:.1%} (length-aware); padded tokens x"
            f"{r['padding_ratio_random_over_length_aware']:.1f}; estimate/actual Spearman "
            f"{r['estimate_vs_actual_spearman']:.3f}"
        )

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    labels = [f"prob_random_resize={r['prob_random_resize']}" for r in results]
    x = range(len(results))
    ax1.bar(
        [i - 0.2 for i in x], [100 * r["random"]["padding_fraction"] for r in results], 0.4, label="random"
    )
    ax1.bar(
        [i + 0.2 for i in x],
        [100 * r["length_aware"]["padding_fraction"] for r in results],
        0.4,
        label="length-aware",
    )
    ax1.set_xticks(list(x), labels)
    ax1.set_ylabel(f"padded tokens / batch tokens (%), batches of {args.batch}")
    ax1.set_title("Padding waste (real tiny Qwen2.5-VL processor)")
    ax1.legend()
    import numpy as np

    bins = np.geomspace(min(min(ls) for ls in lengths), max(max(ls) for ls in lengths), 40)
    for label, ls in zip(labels, lengths):
        ax2.hist(ls, bins=bins, alpha=0.6, label=label)
    ax2.set_xscale("log")
    ax2.set_xlabel("tokens per sample")
    ax2.set_ylabel("samples")
    ax2.set_title("Sample lengths: 224/448/896 px tasks + text-only")
    ax2.legend()
    save_result(
        "length_batching",
        {
            "description": "padding fraction of random vs length-aware batching (rszoo.data.engine), real tokens",
            "batch_size": args.batch,
            "min_pixels": MIN_PIXELS,
            "max_pixels": MAX_PIXELS,
            "image_sizes": list(SIZES),
            "settings": results,
        },
        fig,
    )


if __name__ == "__main__":
    main()
