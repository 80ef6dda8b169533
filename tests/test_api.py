"""The public API: list_models, create_model, load_model, lazy imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

import rszoo


def test_import_is_light():
    code = "import sys, rszoo; rszoo.list_models(); print(sorted(m for m in ('torch', 'transformers', 'lightning', 'mlflow') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]", f"`import rszoo` + list_models pulled in heavy modules: {out}"


def test_list_models_patterns():
    assert rszoo.list_models("rsground_r1-*") == ["rsground_r1-3b", "rsground_r1-7b", "rsground_r1-tiny"]
    assert "rsground_r1-tiny" in rszoo.list_models("*-tiny")
    assert rszoo.list_models("*", tiny=True) == rszoo.list_models("*-tiny")
    assert rszoo.list_models("nothing-*") == []


def test_create_model_with_overrides_and_unknown_names():
    model = rszoo.create_model("rsground_r1-tiny", max_pixels=224 * 224)
    assert model.config.max_pixels == 224 * 224
    assert type(model).__name__ == "RSGroundR1Model"
    with pytest.raises(KeyError, match="closest"):
        rszoo.create_model("rsground_r1-tinny")
    with pytest.raises(ValueError, match="unknown RSGroundR1Config key"):
        rszoo.create_model("rsground_r1-tiny", max_pixel=5)


def test_tiny_variant_of_a_real_preset():
    tiny_3b = rszoo.create_model(
        "rsground_r1-3b",
        backbone_overrides={
            "text_config": {"num_hidden_layers": 1, "hidden_size": 64, "intermediate_size": 64, "num_attention_heads": 4,
                            "num_key_value_heads": 2, "vocab_size": 1024,
                            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]}},
            "vision_config": {"depth": 1, "hidden_size": 32, "intermediate_size": 32, "num_heads": 2, "out_hidden_size": 64,
                              "fullatt_block_indexes": [0]},
        },
    )  # fmt: skip
    text = tiny_3b.config.hf_config["text_config"]
    assert (
        text["num_hidden_layers"] == 1 and text["max_position_embeddings"] == 128000
    )  # rest of the 3B config kept
    assert tiny_3b.num_parameters() < 1_000_000


def test_paper_modules_are_exported():
    assert rszoo.RSGroundR1.family == "rsground_r1"
    with pytest.raises(AttributeError):
        _ = rszoo.NotAModel


def test_named_pretrained_variants(tmp_path):
    from rszoo.config import ConfigError
    from rszoo.models.rsground_r1.config import RSGroundR1Config
    from rszoo.registry import MODELS

    folder = rszoo.create_model("rsground_r1-tiny").save_pretrained(tmp_path / "weights")
    RSGroundR1Config.register_pretrained(
        "rsground_r1-tiny.unit", str(folder), description="a test checkpoint"
    )
    try:
        assert "rsground_r1-tiny.unit" in rszoo.list_models("rsground_r1-*", pretrained=True)
        assert "rsground_r1-tiny.unit" not in rszoo.list_models(
            "*", tiny=True
        )  # presets and weights are told apart
        assert type(rszoo.load_model("rsground_r1-tiny.unit")).__name__ == "RSGroundR1Model"
        with pytest.raises(ConfigError, match="'<preset>.<tag>'"):
            RSGroundR1Config.register_pretrained("rsground_r1-huge.x", "org/x")
    finally:
        MODELS._entries.pop("rsground_r1-tiny.unit", None)
