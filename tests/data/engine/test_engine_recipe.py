"""Data-recipe validation (clear errors before training), overrides, variables and the reference's static lists."""

from __future__ import annotations

import copy
import random
import re
from pathlib import Path

import pytest
import yaml

from rszoo.data.engine.recipe import (
    DataRecipe,
    DataRecipeError,
    load_data_recipe,
    parse_data_recipe,
    parse_static_entry,
    static_selection,
)
from rszoo.recipes import RECIPES_DIR

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "engine"
EXAMPLE = RECIPES_DIR / "rscovlm" / "data" / "example_five_subsets.yaml"


def _raw() -> dict:
    return {
        "variables": {"root": str(FIX)},
        "subsets": [
            {
                "name": "dota",
                "task": "detection",
                "weight": 2,
                "source": {
                    "format": "dota",
                    "labels": "${root}/dota/labelTxt",
                    "images": "${root}/dota/images",
                },
            },
            {
                "name": "vqa",
                "task": "vqa",
                "source": {
                    "format": "lrsvqa",
                    "annotations": "${root}/lrsvqa/LRS_VQA_merged.jsonl",
                    "images": "${root}/lrsvqa/image",
                },
            },
        ],
    }


def _error(raw: dict, **kwargs) -> str:
    with pytest.raises(DataRecipeError) as info:
        parse_data_recipe(raw, where="r.yaml", **kwargs)
    return str(info.value)


def test_a_valid_recipe_resolves_variables_defaults_and_online_options():
    raw = _raw()
    raw["online"] = {"prob_random_resize": 0.5}
    raw["subsets"][1]["online"] = {"prob_synonym": 0.2}
    raw["prompts"] = {"vqa": ["Q: {question}"]}
    recipe = parse_data_recipe(raw)
    dota, vqa = recipe.subsets
    assert dota.source["labels"] == str(FIX / "dota/labelTxt") and dota.source["categories"] == "auto"
    assert (dota.weight, vqa.weight) == (2.0, 1.0) and recipe.mixing == "weighted"
    assert dota.online.prob_random_resize == vqa.online.prob_random_resize == 0.5
    assert (dota.online.prob_synonym, vqa.online.prob_synonym) == (0.0, 0.2)
    assert vqa.prompts == ["Q: {question}"] and dota.prompts is None


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (lambda r: r.update(subset=[]), r"r\.yaml: unknown key\(s\) \['subset'\]; allowed:"),
        (lambda r: r["subsets"][0].update(weigth=1), r"subsets\[0\] \(dota\): unknown key\(s\) \['weigth'\]"),
        (
            lambda r: r["subsets"][0]["source"].update(label="x"),
            r"subsets\[0\] \(dota\)\.source: unknown key\(s\) \['label'\]; allowed: \['categories', 'format', 'image_exts', 'images', 'labels'\]",
        ),
        (
            lambda r: r["subsets"][0].update(online={"prob_resize": 1}),
            r"unknown online option\(s\) \['prob_resize'\]",
        ),
        (lambda r: r.update(offline={"degenerate": "fix"}), r"offline\.degenerate: must be 'drop' or 'keep'"),
        (lambda r: r["subsets"][0].update(weight=-1), r"\(dota\)\.weight: sampling weights must be >= 0"),
        (lambda r: [s.update(weight=0) for s in r["subsets"]], r"every subset has weight 0"),
        (
            lambda r: r["subsets"][0].update(task="segmentation"),
            r"\(dota\)\.task: unknown task 'segmentation'",
        ),
        (
            lambda r: r["subsets"][1].update(task="grounding"),
            r"format 'lrsvqa' cannot feed a 'grounding' subset",
        ),
        (
            lambda r: r["subsets"][0]["source"].update(format="dotaa"),
            r"unknown format 'dotaa'; known formats:",
        ),
        (lambda r: r["subsets"][0]["source"].pop("images"), r"format 'dota' needs \['images'\]"),
        (lambda r: r["subsets"][1].update(name="dota"), r"duplicate subset name 'dota'"),
        (lambda r: r["subsets"][1].update(name="all"), r"'all' is reserved"),
        (lambda r: r["subsets"][1].update(name="a b"), r"a name of letters, digits"),
        (
            lambda r: r["subsets"][0]["source"].update(labels="${rot}/x"),
            r"unknown variable \$\{rot\}; known variables: \['root'\]",
        ),
        (
            lambda r: r["subsets"][1].update(prompts=["{expression}"]),
            r"unknown placeholder\(s\) \['expression'\]",
        ),
        (
            lambda r: r["subsets"][0].update(prompts=["find {x}"]),
            r"detection subsets take no prompt templates",
        ),
        (
            lambda r: r.update(prompts={"vqa": ["no question"]}),
            r"prompts\.vqa\[0\]: vqa templates must contain \{question\}",
        ),
        (lambda r: r.update(samples_per_epoch=0), r"samples_per_epoch: a positive integer"),
        (
            lambda r: r["subsets"][0].update(online={"prob_plain_text_prompt": 2}),
            r"prob_plain_text_prompt: a probability",
        ),
    ],
)
def test_validation_errors_name_the_key(mutate, pattern):
    raw = copy.deepcopy(_raw())
    mutate(raw)
    assert re.search(pattern, _error(raw)), _error(raw)


def test_a_missing_file_is_reported_with_the_subset_and_the_path():
    raw = _raw()
    raw["subsets"][1]["source"]["annotations"] = "${root}/lrsvqa/missing.jsonl"
    message = _error(raw)
    assert "subsets[1] (vqa).source.annotations: file not found" in message
    assert str(FIX / "lrsvqa/missing.jsonl") in message and "overrides={'root'" in message
    raw["subsets"][1]["source"]["annotations"] = "${root}/lrsvqa"
    assert "(it exists but is not a file)" in _error(raw)
    assert parse_data_recipe(raw, check_files=False).subsets[1].source["annotations"] == str(FIX / "lrsvqa")


def test_unknown_subset_names_list_the_known_ones():
    raw = _raw()
    raw["static"] = ["dota%50", "vqq*2"]
    assert re.search(r"static\[1\]: no subset named 'vqq'; known subsets: \['dota', 'vqa'\]", _error(raw))
    message = _error(_raw(), overrides={"subsets.dtoa.weight": 3})
    assert "no subset named 'dtoa'; known subsets: ['dota', 'vqa']" in message
    recipe = parse_data_recipe(_raw())
    with pytest.raises(DataRecipeError, match=r"no subset named 'x'; known subsets: \['dota', 'vqa'\]"):
        recipe.subset("x")


def test_overrides():
    recipe = parse_data_recipe(
        _raw(),
        overrides={
            "root": "/elsewhere",
            "subsets.vqa.weight": 4,
            "subsets.dota.online.prob_random_resize": 0.25,
            "online.prob_synonym": 0.1,
            "samples_per_epoch": 50,
        },
        check_files=False,
    )
    dota, vqa = recipe.subsets
    assert dota.source["labels"] == "/elsewhere/dota/labelTxt" and vqa.weight == 4.0
    assert dota.online.prob_random_resize == 0.25 and vqa.online.prob_random_resize == 0.0
    assert dota.online.prob_synonym == vqa.online.prob_synonym == 0.1 and recipe.samples_per_epoch == 50
    assert "not a variable (known: ['root']) nor a recipe key" in _error(_raw(), overrides={"rooot": "/x"})


def test_static_entries_parse_like_the_reference():
    assert parse_static_entry("dota_poly_trainval512%50") == ("dota_poly_trainval512", 0.5, None)
    assert parse_static_entry("refgeo*3") == ("refgeo", None, 3)
    assert parse_static_entry("all%100") == ("all", 1.0, None)
    for bad in ("a%0", "a%150", "a*0", "a%x", "a*2.5"):
        with pytest.raises(DataRecipeError):
            parse_static_entry(bad)
    raw = _raw()
    raw["static"] = ["dota"]
    raw["samples_per_epoch"] = 10
    assert "samples_per_epoch applies to weighted mixing" in _error(raw)


def _reference_random_sample(name: str, anns: list, seed: int | None) -> list:
    """RSCoVLM's parse_sampling_rate + random_sample (rscovlm/utils/data.py), as the notes describe them."""
    rate = 1.0
    if m := re.search(r"%([\d\.]+)$", name):
        rate = float(m.group(1)) / 100
    elif m := re.search(r"\*(\d+)$", name):
        rate = int(m.group(1))
    if seed is not None:
        seed = 42  # the quirk: any given seed becomes 42
    rnd = random.Random(seed)
    if rate < 1:
        return rnd.sample(anns, int(len(anns) * rate))
    return anns * int(rate)


def test_static_selection_matches_the_reference_sampler():
    sizes = {"a": 37, "b": 11, "c": 5}
    recipe = DataRecipe([], static=["a%30", "b*3", "c", "a%12.5", "all%50"], static_seed=42)
    picked = static_selection(recipe, sizes, seed=1234)  # the run seed does not matter, as in the reference
    expected = []
    for entry in recipe.static:
        names = list(sizes) if entry.startswith("all") else [re.split(r"[%*]", entry)[0]]
        for name in names:
            suffix = entry[len("all") :] if entry.startswith("all") else entry[len(name) :]
            anns = [(name, i) for i in range(sizes[name])]
            expected += _reference_random_sample(name + suffix, anns, seed=1234)
    assert [(n, i) for n, i, _ in picked] == expected
    assert [occ for n, _, occ in picked if n == "b"][:22] == [0] * 11 + [1] * 11
    assert len([p for p in picked if p[0] == "a"]) == int(37 * 0.3) + int(37 * 0.125) + int(37 * 0.5)
    other = static_selection(DataRecipe([], static=["a%30"], static_seed=None), sizes, seed=7)
    assert [i for _, i, _ in other] == random.Random(7).sample(range(37), 11)


def test_example_recipes_validate():
    recipe = load_data_recipe(EXAMPLE, {"root": str(FIX)})
    assert recipe.names == ["dota_det", "refgeo_grounding", "rsvqa_lr", "lrsvqa_zoom", "geochat_instruct"]
    assert [s.task for s in recipe.subsets] == ["detection", "grounding", "vqa", "zoom_vqa", "conversation"]
    assert recipe.subset("refgeo_grounding").online.box_type == "hbb" and recipe.samples_per_epoch == 20000
    assert recipe.subset("geochat_instruct").online.prob_random_resize == 0.0
    tiny = load_data_recipe(
        RECIPES_DIR / "rscovlm" / "data" / "tiny_synth.yaml", {"root": "/nowhere"}, check_files=False
    )
    assert sorted(s.task for s in tiny.subsets) == [
        "caption",
        "classification",
        "detection",
        "grounding",
        "vqa",
    ]
    assert all(
        s.source[k].startswith("/nowhere/")
        for s in tiny.subsets
        for k in ("annotations", "labels")
        if k in s.source
    )


def test_yaml_errors_name_the_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("subsets:\n  - name: a\n    task: [vqa\n")
    with pytest.raises(DataRecipeError, match=r"bad\.yaml:\d+: not valid YAML"):
        load_data_recipe(bad)
    (tmp_path / "list.yaml").write_text(yaml.safe_dump(["dota", "vqa"]))
    with pytest.raises(DataRecipeError, match="a data recipe is a mapping with 'subsets'"):
        load_data_recipe(tmp_path / "list.yaml")
