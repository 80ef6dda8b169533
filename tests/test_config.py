"""Config dataclasses: presets, serialisation, validation, and real presets against published parameter counts."""

from __future__ import annotations

import json

import pytest
import torch

import rszoo
from rszoo.backbones.qwen_vl import QwenVLBackbone, backbone_preset
from rszoo.config import ConfigError, ModelConfig
from rszoo.models.rsground_r1.config import RSGroundR1Config
from rszoo.registry import BACKBONES

# Parameter counts published for the base models (the safetensors totals shown on each Hugging Face model page).
PUBLISHED = {
    "qwen2_5_vl-3b": 3_754_622_976,  # Qwen/Qwen2.5-VL-3B-Instruct
    "qwen2_5_vl-7b": 8_292_166_656,  # Qwen/Qwen2.5-VL-7B-Instruct
    "qwen3_vl-2b": 2_127_532_032,  # Qwen/Qwen3-VL-2B-Instruct
    "qwen3_vl-4b": 4_437_815_808,  # Qwen/Qwen3-VL-4B-Instruct
    "qwen3_vl-8b": 8_767_123_696,  # Qwen/Qwen3-VL-8B-Instruct
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_real_backbones_match_published_parameter_counts(name):
    with torch.device("meta"):
        backbone = QwenVLBackbone(backbone_preset(name)["hf_config"])
    assert sum(p.numel() for p in backbone.parameters()) == PUBLISHED[name]
    assert backbone_preset(name)["published_params"] == PUBLISHED[name]


@pytest.mark.parametrize(
    ("model", "backbone"), [("rsground_r1-3b", "qwen2_5_vl-3b"), ("rsground_r1-7b", "qwen2_5_vl-7b")]
)
def test_real_model_presets_on_meta(model, backbone):
    with torch.device("meta"):
        net = rszoo.create_model(model)
    assert net.num_parameters() == PUBLISHED[backbone]
    assert next(net.parameters()).device.type == "meta"


def test_every_backbone_preset_builds_tiny_or_meta():
    for name in BACKBONES.list():
        preset = backbone_preset(name)
        with torch.device("meta"):
            QwenVLBackbone(preset["hf_config"])


def test_tiny_preset_token_ids_match_the_shipped_tokenizer():
    from rszoo.tokenizers.qwen_tiny import load_tokenizer, special_token_ids

    ids = special_token_ids(load_tokenizer())
    for family in ("qwen2_5_vl-tiny", "qwen3_vl-tiny"):
        cfg = backbone_preset(family)["hf_config"]
        for key in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"):
            assert cfg[key] == ids[key], (family, key)
        assert cfg["text_config"]["eos_token_id"] == ids["eos_token_id"]
        assert cfg["text_config"]["vocab_size"] >= len(load_tokenizer())


def test_from_name_dict_file_checkpoint_round_trip(tmp_path):
    cfg = RSGroundR1Config.from_name("rsground_r1-tiny", max_pixels=200704)
    assert isinstance(ModelConfig.from_name("rsground_r1-tiny"), RSGroundR1Config)
    data = json.loads(cfg.to_json())
    assert data["family"] == "rsground_r1" and data["config"]["max_pixels"] == 200704
    cfg.save(tmp_path / "rszoo.json")
    assert ModelConfig.from_file(tmp_path / "rszoo.json") == cfg
    assert RSGroundR1Config.from_checkpoint(tmp_path) == cfg
    (tmp_path / "fields.yaml").write_text("name: custom\nmax_pixels: 50176\n")
    assert RSGroundR1Config.from_file(tmp_path / "fields.yaml").max_pixels == 50176


def test_validation_errors_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown RSGroundR1Config key\(s\) \['max_pixel'\].*allowed"):
        RSGroundR1Config.from_name("rsground_r1-tiny", max_pixel=1)
    with pytest.raises(ConfigError, match="min_pixels <= max_pixels"):
        RSGroundR1Config.from_name("rsground_r1-tiny", min_pixels=10_000, max_pixels=100)
    with pytest.raises(ConfigError, match="question_template must contain"):
        RSGroundR1Config.from_name("rsground_r1-tiny", question_template="no placeholder")
    with pytest.raises(ConfigError, match="model_type must be 'qwen2_5_vl'"):
        RSGroundR1Config.from_name("rsground_r1-tiny", backbone="qwen3_vl-tiny")
    with pytest.raises(ConfigError, match="backbone"):
        RSGroundR1Config.from_name("rsground_r1-tiny", backbone="qwen9-huge")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json: cannot parse"):
        RSGroundR1Config.from_file(bad)
    with pytest.raises(FileNotFoundError, match="no rszoo.json"):
        RSGroundR1Config.from_checkpoint(tmp_path)


def test_saved_config_is_self_describing():
    cfg = RSGroundR1Config.from_name("rsground_r1-3b")
    # the resolved transformers config is stored, so a saved folder does not depend on presets staying the same
    assert cfg.hf_config["text_config"]["hidden_size"] == 2048
    assert cfg.backbone_overrides == {}
    assert json.loads(json.dumps(cfg.to_dict())) == cfg.to_dict()
