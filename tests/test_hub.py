"""Hub I/O: save/load folders, strictness, transformers compatibility both ways, sharding, atomicity, cards, push."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import rszoo
from rszoo.hub.cards import CardError, parse_card, validate_card_metadata
from rszoo.models.base import CheckpointError
from rszoo.models.rsground_r1.model import RSGroundR1Model


def _inputs(model):
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (112, 140, 3), dtype=np.uint8))
    conv = model.grounding_messages("the ship in the top right", image)
    return dict(model.encode([conv], [[image]]))


def _logits(module, inputs):
    with torch.no_grad():
        return module(**inputs).logits


@pytest.fixture
def saved(tmp_path, tiny_model):
    return tiny_model.save_pretrained(tmp_path / "model", recipe="name: demo\n")


def test_saved_folder_contents(saved):
    names = set(os.listdir(saved))
    assert {
        "rszoo.json",
        "config.json",
        "model.safetensors",
        "README.md",
        "recipe.yaml",
        "tokenizer.json",
    } <= names
    assert "processor_config.json" in names or "preprocessor_config.json" in names
    assert json.loads((saved / "rszoo.json").read_text())["family"] == "rsground_r1"
    assert not [n for n in os.listdir(saved.parent) if n.startswith(".")]  # no staging left behind


def test_round_trip_and_transformers_parity(saved, tiny_model):
    from transformers import AutoModelForImageTextToText

    inputs = _inputs(tiny_model)
    reference = _logits(tiny_model, inputs)
    loaded = rszoo.load_model(saved)
    assert isinstance(loaded, RSGroundR1Model)
    assert torch.equal(_logits(loaded, inputs), reference)
    hf = AutoModelForImageTextToText.from_pretrained(saved)
    assert torch.equal(_logits(hf, inputs), reference)
    # the saved processor is what the loaded model uses
    assert _inputs(loaded)["input_ids"].tolist() == inputs["input_ids"].tolist()


def test_plain_transformers_folder_loads_into_rszoo(tmp_path, tiny_model):
    from transformers import Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(3)
    hf = Qwen2_5_VLForConditionalGeneration._from_config(tiny_model.backbone.hf_model.config)
    hf.save_pretrained(tmp_path / "qwen")
    tiny_model.processor.save_pretrained(tmp_path / "qwen")
    net = RSGroundR1Model.from_pretrained(tmp_path / "qwen")
    assert net.config.family == "rsground_r1" and net.config.hf_config["model_type"] == "qwen2_5_vl"
    inputs = _inputs(tiny_model)
    assert torch.equal(_logits(net, inputs), _logits(hf, inputs))
    task = rszoo.RSGroundR1.from_pretrained(str(tmp_path / "qwen"), stage="cot_sft")
    assert torch.equal(_logits(task.network, inputs), _logits(hf, inputs))


def test_legacy_hub_key_names_load(tmp_path, tiny_model):
    """Qwen's Hub checkpoints use the pre-4.52 names (model.layers.*, visual.*); transformers' mapping applies."""
    folder = tiny_model.save_pretrained(tmp_path / "m", model_card=False)
    weights = load_file(folder / "model.safetensors")
    legacy = {}
    for key, value in weights.items():
        key = key.replace("model.language_model.", "model.").replace("model.visual.", "visual.")
        legacy[key] = value
    save_file(legacy, folder / "model.safetensors", metadata={"format": "pt"})
    os.remove(folder / "rszoo.json")  # now it looks like a plain Hub download
    net = RSGroundR1Model.from_pretrained(folder)
    inputs = _inputs(tiny_model)
    assert torch.equal(_logits(net, inputs), _logits(tiny_model, inputs))


def test_missing_and_unexpected_keys_are_errors(saved):
    weights = load_file(saved / "model.safetensors")
    dropped = sorted(k for k in weights if k.endswith("layers.1.mlp.up_proj.weight"))[0]
    del weights[dropped]
    weights["model.extra_head.weight"] = torch.zeros(2, 2)
    save_file(weights, saved / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError) as err:
        rszoo.load_model(saved)
    assert "missing" in str(err.value) and "up_proj" in str(err.value) and "extra_head" in str(err.value)
    with pytest.raises(CheckpointError, match="unexpected"):
        rszoo.load_model(saved, allow_missing=["*.mlp.up_proj.weight"])
    rszoo.load_model(saved, allow_missing=["*.mlp.up_proj.weight"], allow_unexpected=["*extra_head*"])


def test_wrong_shapes_are_an_error(saved):
    weights = load_file(saved / "model.safetensors")
    key = next(k for k in weights if k.endswith("layers.0.self_attn.q_proj.weight"))
    weights[key] = torch.zeros(weights[key].shape[0] + 1, weights[key].shape[1])
    save_file(weights, saved / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="q_proj"):
        rszoo.load_model(saved)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_safetensors_name_the_file(saved, damage):
    path = saved / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00garbage" * 100)
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        rszoo.load_model(saved)


def test_sharded_save_loads_identically(tmp_path, tiny_model):
    folder = tiny_model.save_pretrained(tmp_path / "sharded", max_shard_size="300KB")
    shards = sorted(p.name for p in folder.glob("model-*.safetensors"))
    assert len(shards) >= 2 and (folder / "model.safetensors.index.json").is_file()
    inputs = _inputs(tiny_model)
    assert torch.equal(_logits(rszoo.load_model(folder), inputs), _logits(tiny_model, inputs))


def test_failed_save_leaves_previous_folder_intact(tmp_path, tiny_model, monkeypatch):
    folder = tiny_model.save_pretrained(tmp_path / "m", model_card=False)
    before = sorted(os.listdir(folder))

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(tiny_model), "_save_weights", explode)
    with pytest.raises(OSError, match="disk full"):
        tiny_model.save_pretrained(folder)
    assert sorted(os.listdir(folder)) == before
    assert [n for n in os.listdir(tmp_path) if n != "m"] == []  # staging cleaned up


def test_config_overrides_on_load_and_revision_rules(saved):
    net = rszoo.load_model(saved, max_pixels=224 * 224)
    assert net.config.max_pixels == 224 * 224
    with pytest.raises(ValueError, match="revision"):
        rszoo.load_model(str(saved), revision="main")
    with pytest.raises(FileNotFoundError):
        rszoo.load_model("/definitely/not/here")


def test_model_card_metadata_and_reported_results(saved):
    meta, body = parse_card((saved / "README.md").read_text())
    validate_card_metadata(meta)
    assert (
        meta["library_name"] == "rszoo" and "base_model" not in meta
    )  # the tiny preset has no published base
    dior = meta["model-index"][0]["results"][0]
    assert dior["dataset"]["name"] == "DIOR-RSVG"
    assert {m["type"]: m["value"] for m in dior["metrics"]} == {
        "acc@0.5": 71.81,
        "acc@0.7": 58.71,
        "miou": 63.38,
    }
    assert "reported by the paper" in dior["source"]["name"]
    assert "| RSGround-R1† | 3B | 71.81 |" in body
    assert "name: demo" in body  # the recipe is embedded


def test_card_uses_base_model_and_eval_results(tmp_path):
    with torch.device("meta"):
        big = rszoo.create_model("rsground_r1-3b")
    from rszoo.hub.cards import render_model_card

    text = render_model_card(big.config, eval_results={"acc@0.5": 0.5})
    meta, body = parse_card(text)
    assert meta["base_model"] == "Qwen/Qwen2.5-VL-3B-Instruct"
    assert "| acc@0.5 | 0.5 |" in body


def test_card_validation_catches_problems():
    with pytest.raises(CardError, match="library_name"):
        validate_card_metadata({"license": "mit", "library_name": "other", "pipeline_tag": "x", "tags": []})
    with pytest.raises(CardError, match="source.name"):
        validate_card_metadata(
            {
                "license": "mit",
                "library_name": "rszoo",
                "pipeline_tag": "x",
                "tags": [],
                "model-index": [
                    {
                        "name": "m",
                        "results": [
                            {
                                "task": {"type": "t"},
                                "dataset": {"name": "d", "type": "d"},
                                "metrics": [{"type": "a", "value": 1}],
                            }
                        ],
                    }
                ],
            }
        )


def test_push_to_hub_uploads_exactly_the_saved_folder(tiny_model, monkeypatch):
    from huggingface_hub import HfApi

    calls = {}

    def fake_create_repo(self, repo_id, **kwargs):
        calls["repo"] = repo_id

    def fake_upload_folder(self, repo_id, folder_path, **kwargs):
        calls["files"] = sorted(os.listdir(folder_path))
        with open(os.path.join(folder_path, "rszoo.json")) as fh:
            calls["rszoo"] = json.load(fh)
        calls["revision"] = kwargs.get("revision")
        return "commit-url"

    monkeypatch.setattr(HfApi, "create_repo", fake_create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", fake_upload_folder)
    assert tiny_model.push_to_hub("me/tiny", revision="v1") == "commit-url"
    assert calls["repo"] == "me/tiny" and calls["revision"] == "v1"
    assert {"README.md", "config.json", "model.safetensors", "rszoo.json", "tokenizer.json"} <= set(
        calls["files"]
    )
    assert calls["rszoo"]["config"]["name"] == "rsground_r1-tiny"
