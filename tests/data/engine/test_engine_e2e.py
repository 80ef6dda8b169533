"""End to end: the tiny synthetic-world recipe -> mixture samples -> the shared SFT stage's collate (labels on the
assistant tokens only; images reach the processor at exactly the size the boxes were written for)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

import rszoo
from rszoo.data.engine import build_mixture, mixture_sampler_factory
from rszoo.recipes import RECIPES_DIR

TINY = str(RECIPES_DIR / "rscovlm" / "data" / "tiny_synth.yaml")
PIXELS = {"min_pixels": 56 * 56, "max_pixels": 448 * 448}  # rsground_r1-tiny's processor bounds


@pytest.fixture(scope="module")
def mixture(tmp_path_factory):
    from rszoo.data.synth import write_dataset

    root = tmp_path_factory.mktemp("engine_e2e")
    write_dataset(root, num_scenes=3, seed=2, size=112, max_expressions=2)
    return build_mixture(TINY, seed=0, overrides={"root": str(root)}, **PIXELS)


@pytest.fixture(scope="module")
def task():
    torch.manual_seed(0)
    t = rszoo.RSGroundR1(model="rsground_r1-tiny", stage="cot_sft", stage_args={"max_length": 8192})
    t.configure_model()
    return t


def _assistant_text(sample: dict) -> str:
    return "".join(m["content"] + "<|im_end|>" for m in sample["messages"] if m["role"] == "assistant")


def test_every_task_collates_with_labels_on_assistant_tokens(mixture, task):
    assert mixture.subset_names == ["synth_cls", "synth_vqa", "synth_caption", "synth_grounding", "synth_det"]
    assert all(n > 0 for n in mixture.subset_sizes)
    samples = [mixture.sample(offset, epoch=1) for offset in mixture.offsets[:-1]]
    assert [s["task"] for s in samples] == ["classification", "vqa", "caption", "grounding", "detection"]
    batch = task.collate(samples)
    tok = task.network.processor.tokenizer
    decoded = [tok.decode(ids[labels != -100]) for ids, labels in zip(batch["input_ids"], batch["labels"])]
    assert decoded == [_assistant_text(s) for s in samples]
    assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()
    # the processor keeps the engine's resized size (rsground_r1-tiny uses the same min/max pixels)
    expected = [
        [1, p["resized_height"] // 14, p["resized_width"] // 14]
        for s in samples
        for m in s["messages"]
        if isinstance(m["content"], list)
        for p in m["content"]
        if p["type"] == "image"
    ]
    assert batch["image_grid_thw"].tolist() == expected


def test_a_sampler_driven_dataloader_feeds_the_sft_collate(mixture, task):
    sampler = mixture_sampler_factory(
        mixture, batch_size=2, seed=0, samples_per_epoch=6, group_by_length=True
    )(1, 0)
    loader = DataLoader(mixture, batch_size=2, sampler=sampler, collate_fn=task.collate)
    batches = list(loader)
    assert len(batches) == 3 and all(b["input_ids"].shape[0] == 2 for b in batches)
    assert all((b["labels"] != -100).any() for b in batches)
