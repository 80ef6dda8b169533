"""Multimodal chat SFT: assistant-only labels, loss parity with transformers, packing, freezing, data errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import rszoo
from rszoo.data.records import JsonlError
from rszoo.training.data import load_messages_jsonl


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("sft")
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (84 + 28 * i, 112, 3), dtype=np.uint8)).save(
            root / f"img{i}.png"
        )
    rows = [
        {
            "id": "two-turns",
            "messages": [
                {"role": "system", "content": "You look at satellite images."},
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "image": "img0.png"},
                        {"type": "text", "text": "Any ships?"},
                    ],
                },
                {"role": "assistant", "content": "Yes, two."},
                {"role": "user", "content": [{"type": "text", "text": "Where?"}]},
                {"role": "assistant", "content": "Top right."},
            ],
        },
        {
            "id": "two-images",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "image": "img1.png"},
                        {"type": "image", "image": "img2.png"},
                        {"type": "text", "text": "What changed?"},
                    ],
                },
                {"role": "assistant", "content": "A new building."},
            ],
        },
        {
            "id": "text-only",
            "messages": [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi there."}],
        },
    ]
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.fixture(scope="module")
def task():
    torch.manual_seed(0)
    t = rszoo.RSGroundR1(model="rsground_r1-tiny", stage="cot_sft", stage_args={"max_length": 2048})
    t.configure_model()
    return t


def test_labels_cover_exactly_the_assistant_turns_and_end_of_turn(task, data_dir):
    rows = load_messages_jsonl(data_dir / "train.jsonl")
    batch = task.collate(rows)
    tok = task.network.processor.tokenizer
    texts = []
    for ids, labels in zip(batch["input_ids"], batch["labels"]):
        texts.append(tok.decode(ids[labels != -100]))
    assert texts == [
        "Yes, two.<|im_end|>Top right.<|im_end|>",
        "A new building.<|im_end|>",
        "Hi there.<|im_end|>",
    ]
    assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()  # padding never trains


def test_loss_equals_transformers_own_loss(task, data_dir):
    batch = task.collate(load_messages_jsonl(data_dir / "train.jsonl"))
    ours, n_tokens = task.stage.loss(batch)
    with torch.no_grad():
        theirs = task.network.backbone.hf_model(
            **batch
        ).loss  # transformers' causal-LM loss with the same labels
    assert n_tokens == int((batch["labels"][:, 1:] != -100).sum())
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)


def test_answer_scores_equal_transformers_loss_and_greedy_accuracy(task, data_dir):
    """Scored as one right-padded batch, each row equals transformers' own loss over its SFT labels, unpadded."""
    from rszoo.models.vlm.model import load_message_images

    rows = load_messages_jsonl(data_dir / "train.jsonl")
    network = task.network.eval()
    scores = network.answer_scores(
        [r["messages"] for r in rows], [load_message_images(r["messages"], data_dir) for r in rows]
    )
    for row, score in zip(rows, scores):
        batch = task.collate([row])
        labels = batch["labels"][:, 1:]
        with torch.no_grad():
            out = network.backbone.hf_model(**batch)
        assert score["tokens"] == int((labels != -100).sum())
        torch.testing.assert_close(score["nll"] / score["tokens"], out.loss.item(), rtol=1e-5, atol=1e-5)
        greedy = out.logits[:, :-1].argmax(-1)
        assert score["correct"] == int(((greedy == labels) & (labels != -100)).sum())


def test_packing_gives_the_same_loss_and_gradients(task, data_dir):
    rows = load_messages_jsonl(data_dir / "train.jsonl")[:2]
    padded = task.stage._encode(rows)
    packed = task.stage._pack(dict(padded))
    assert packed["input_ids"].shape[0] == 1 and packed["input_ids"].shape[1] == int(
        padded["attention_mask"].sum()
    )
    assert packed["position_ids"].shape[0] == 4  # text positions (restart per sample) + 3-D rope positions

    def loss_and_grads(batch):
        task.network.zero_grad()
        loss, _ = task.stage.loss(batch)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in task.network.named_parameters() if p.grad is not None}
        return loss.detach(), grads

    loss_padded, grads_padded = loss_and_grads(padded)
    loss_packed, grads_packed = loss_and_grads(packed)
    task.network.zero_grad()
    torch.testing.assert_close(loss_packed, loss_padded, rtol=1e-5, atol=1e-5)
    for name, grad in grads_padded.items():
        torch.testing.assert_close(grads_packed[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_too_long_samples_fail_naming_the_sample(data_dir):
    t = rszoo.RSGroundR1(model="rsground_r1-tiny", stage="cot_sft", stage_args={"max_length": 16})
    t.configure_model()
    with pytest.raises(ValueError, match=r"max_length=16 tokens: \[\('two-turns', \d+\)"):
        t.collate(load_messages_jsonl(data_dir / "train.jsonl"))


def test_freezing_parts():
    t = rszoo.RSGroundR1(
        model="rsground_r1-tiny",
        stage="cot_sft",
        freeze={"vision_tower": True, "embeddings": True, "projector": False},
    )
    t.configure_model()
    groups = t.network.freeze_groups()
    frozen = {
        part: all(not p.requires_grad for m in mods for p in m.parameters()) for part, mods in groups.items()
    }
    assert frozen == {"vision_tower": True, "projector": False, "language_model": False, "embeddings": True}
    assert sum(t.part_sizes.values()) == t.network.num_parameters()
    with pytest.raises(ValueError, match="unknown part"):
        bad = rszoo.RSGroundR1(model="rsground_r1-tiny", stage="cot_sft", freeze={"vision": True})
        bad.configure_model()


def test_data_errors_name_file_and_line(tmp_path, data_dir):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"id": "ok", "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\n{oops\n'
    )
    with pytest.raises(JsonlError, match=r"bad.jsonl:2"):
        load_messages_jsonl(bad)
    missing = tmp_path / "missing.jsonl"
    missing.write_text(
        json.dumps({"messages": [{"role": "user", "content": [{"type": "image", "image": "nope.png"}]},
                                 {"role": "assistant", "content": "x"}]}) + "\n"
    )  # fmt: skip
    with pytest.raises(FileNotFoundError, match=r"missing.jsonl:1: image file not found: .*nope.png"):
        load_messages_jsonl(missing)
    no_answer = tmp_path / "no_answer.jsonl"
    no_answer.write_text(json.dumps({"messages": [{"role": "user", "content": "a"}]}) + "\n")
    with pytest.raises(ValueError, match="last message must be the assistant"):
        load_messages_jsonl(no_answer)


def test_overlong_samples_can_be_skipped_and_counted(data_dir):
    rows = load_messages_jsonl(data_dir / "train.jsonl")
    t = rszoo.RSGroundR1(
        model="rsground_r1-tiny", stage="cot_sft", stage_args={"max_length": 40, "overlong": "skip"}
    )
    t.configure_model()
    batch = t.collate(rows)  # two image samples exceed 40 tokens, the text-only one does not
    assert int(batch["num_skipped"]) == 2 and batch["input_ids"].shape[0] == 1
    tok = t.network.processor.tokenizer
    assert tok.decode(batch["input_ids"][0][batch["labels"][0] != -100]) == "Hi there.<|im_end|>"
    assert torch.isfinite(t.training_step(batch, 0))
    with pytest.raises(ValueError, match="max_length=16"):  # nothing left: still an error
        t.stage.config.max_length = 16
        t.collate(rows)
    with pytest.raises(ValueError, match="overlong must be 'error' or 'skip'"):
        rszoo.RSGroundR1(model="rsground_r1-tiny", stage="cot_sft", stage_args={"overlong": "truncate"})
