"""The registry: registration, lookup with suggestions, building, fnmatch listing, lazy module loading."""

from __future__ import annotations

import sys

import pytest

from rszoo import registry
from rszoo.registry import Registry, UnknownNameError


def test_register_get_build_list():
    reg = Registry("widget")

    @reg.register("round-small", size=1)
    def round_small(scale: float = 1.0) -> float:
        return 2.0 * scale

    reg.register("round-large", obj=lambda scale=1.0: 10 * scale, size=3)
    reg.register("square", obj=dict)
    assert reg.get("round-small") is round_small
    assert reg.build("round-large", scale=2.0) == 20.0
    assert reg.list() == ["round-large", "round-small", "square"]
    assert reg.list("round-*") == ["round-large", "round-small"]
    assert reg.list("*", size=1) == ["round-small"]
    assert "square" in reg and len(reg) == 3


def test_unknown_name_lists_closest_matches():
    reg = Registry("reward")
    for name in ("iou", "giou", "diou", "format"):
        reg.register(name, obj=object)
    with pytest.raises(UnknownNameError) as err:
        reg.get("iuo")
    message = str(err.value)
    assert "unknown reward 'iuo'" in message and "iou" in message
    with pytest.raises(KeyError):  # UnknownNameError is a KeyError, so `except KeyError` keeps working
        reg.get("nothing-like-it")


def test_duplicate_registration_is_an_error_unless_overwrite():
    reg = Registry("thing")
    reg.register("a", obj=int)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", obj=float)
    reg.register("a", obj=float, overwrite=True)
    assert reg.get("a") is float


def test_build_refuses_non_callables():
    reg = Registry("constant")
    reg.register("pi", obj=3.14)
    with pytest.raises(TypeError, match="not buildable"):
        reg.build("pi")


def test_modules_are_imported_on_first_lookup(tmp_path, monkeypatch):
    pkg = tmp_path / "lazy_plugin_mod.py"
    pkg.write_text("from tests_lazy_reg import REG\nREG.register('from-module', obj=42)\n")
    (tmp_path / "tests_lazy_reg.py").write_text(
        "from rszoo.registry import Registry\nREG = Registry('lazy', modules=['lazy_plugin_mod'])\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import tests_lazy_reg

    assert "lazy_plugin_mod" not in sys.modules
    tests_lazy_reg.REG.add_module("lazy_plugin_mod")  # declaring a module twice is harmless
    assert tests_lazy_reg.REG.get("from-module") == 42
    assert "lazy_plugin_mod" in sys.modules


def test_shipped_registries_are_populated():
    assert "rsground_r1-tiny" in registry.MODELS.list("rsground_r1-*")
    assert {"qwen2_5_vl-3b", "qwen2_5_vl-7b", "qwen3_vl-8b"} <= set(registry.BACKBONES.list())
    assert {"format", "iou", "giou", "diou", "center_distance", "positional"} <= set(registry.REWARDS.list())
    assert "grounding" in registry.METRICS.list()
    assert {"auto", "ddp", "fsdp2", "fsdp1"} <= set(registry.STRATEGIES.list())
    assert {"synth", "dior_rsvg", "vrsbench_vg", "rrsisd", "grounding_jsonl"} <= set(registry.DATASETS.list())
    assert "qwen_tiny" in registry.TOKENIZERS.list()
    reward = registry.REWARDS.build("positional", weight=0.1, alpha=2.5)
    assert reward.weight == 0.1
