"""The offline tiny tokenizer/processor: reproducible, Qwen-like, and a working transformers processor."""

from __future__ import annotations

import numpy as np
from PIL import Image

from rszoo.tokenizers import qwen_tiny


def test_shipped_tokenizer_is_reproducible_byte_for_byte():
    rebuilt = qwen_tiny.build_tokenizer().to_str(pretty=True) + "\n"
    assert rebuilt == (qwen_tiny.ASSETS / "tokenizer.json").read_text()


def test_byte_level_round_trip_and_qwen_pretokenisation():
    tok = qwen_tiny.load_tokenizer()
    for text in [
        "héllo wörld 🌍",
        '{"bbox_2d": [12, 40, 130, 255]}',
        "line\n\nbreaks\ttabs",
        "北京 remote sensing",
    ]:
        assert tok.decode(tok.encode(text)) == text
    assert tok.convert_ids_to_tokens(tok.encode("12345")) == [
        "1",
        "2",
        "3",
        "4",
        "5",
    ]  # digits split like Qwen
    specials = [
        "<|im_start|>",
        "<|im_end|>",
        "<|vision_start|>",
        "<|image_pad|>",
        "<|vision_end|>",
        "<|endoftext|>",
    ]
    for special in specials:
        assert len(tok.encode(special)) == 1
    # special tokens come after the BPE vocabulary, as in Qwen (151643+)
    assert min(tok.convert_tokens_to_ids(specials)) >= 800


def test_qwen2_5_vl_chat_template_exact_text():
    tok = qwen_tiny.load_tokenizer("qwen2_5_vl")
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Where is the ship?"}]},
        {"role": "assistant", "content": "Top right."},
    ]
    expected = (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Where is the ship?<|im_end|>\n"
        "<|im_start|>assistant\nTop right.<|im_end|>\n"
    )
    assert tok.apply_chat_template(messages, tokenize=False) == expected
    prompt = tok.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")
    qwen3 = qwen_tiny.load_tokenizer("qwen3_vl").apply_chat_template(messages, tokenize=False)
    assert not qwen3.startswith("<|im_start|>system")  # Qwen3-VL adds no default system turn


def test_processor_expands_image_tokens_and_reloads(tmp_path):
    from transformers import AutoProcessor

    proc = qwen_tiny.build_processor("qwen2_5_vl", min_pixels=56 * 56, max_pixels=224 * 224)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (112, 168, 3), dtype=np.uint8))
    text = proc.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}], tokenize=False
    )
    out = proc(text=[text], images=[image], return_tensors="pt")
    assert out["image_grid_thw"].tolist() == [[1, 8, 12]]  # 112x168 px / 14 px patches
    n_image_tokens = int((out["input_ids"] == proc.tokenizer.convert_tokens_to_ids("<|image_pad|>")).sum())
    assert n_image_tokens == 8 * 12 // 4  # 2x2 merge
    proc.save_pretrained(tmp_path)
    again = AutoProcessor.from_pretrained(tmp_path)
    out2 = again(text=[text], images=[image], return_tensors="pt")
    assert out2["input_ids"].tolist() == out["input_ids"].tolist()
    assert (out2["pixel_values"] - out["pixel_values"]).abs().max() == 0


def test_qwen3_processor_uses_patch_16():
    proc = qwen_tiny.build_processor("qwen3_vl", min_pixels=64 * 64, max_pixels=256 * 256)
    image = Image.fromarray(np.zeros((128, 128, 3), dtype=np.uint8))
    out = proc(text=["<|vision_start|><|image_pad|><|vision_end|>x"], images=[image], return_tensors="pt")
    assert out["image_grid_thw"].tolist() == [[1, 8, 8]]
