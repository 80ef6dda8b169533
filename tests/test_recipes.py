"""Recipes: composition, interpolation, overrides, validation errors, and every shipped recipe runs one step."""

from __future__ import annotations

import pytest

from rszoo.recipes import DEFAULTS_DIR, RECIPES_DIR, RecipeError, load_recipe, shipped_recipes

TINY_GROUNDING = RECIPES_DIR / "rsground_r1" / "tiny_grpo.yaml"


def test_composition_interpolation_and_overrides():
    cfg = load_recipe(TINY_GROUNDING, ["trainer.max_steps=3", "stage_args.num_generations=4"])
    assert cfg.cluster.accelerator == "cpu"  # from _defaults/cpu.yaml
    assert cfg.model.name == "rsground_r1-tiny"  # from _defaults/tiny_model.yaml
    assert cfg.output_dir == f"runs/{cfg.name}"  # ${name} interpolation resolved
    assert cfg.trainer.max_steps == 3 and cfg.stage_args.num_generations == 4
    with pytest.raises(Exception, match="read-only|ReadonlyConfigError"):
        cfg.trainer.max_steps = 4


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        (
            ["trainer.max_stepz=3"],
            r"command line: invalid key 'trainer.max_stepz'.*allowed keys here: \[.*'max_steps'",
        ),
        (["trainer.max_steps=many"], r"command line: invalid key 'trainer.max_steps'"),
        (
            ["stage_args.num_generation=4"],
            r"command line: stage_args: unknown GRPOStage option\(s\) \['num_generation'\].*allowed",
        ),
        (["stage_args.beta=lots"], r"stage_args"),
        (["stage=sft"], r"stage: RSGroundR1 has no stage 'sft'; choose from \['cot_sft', 'grpo'\]"),
        (["task=Nope"], r"unknown task 'Nope'"),
        (["oops"], r"overrides must be key=value"),
    ],
)
def test_bad_overrides_fail_naming_key_and_source(overrides, pattern):
    with pytest.raises(RecipeError, match=pattern):
        load_recipe(TINY_GROUNDING, overrides)


def test_bad_recipe_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "defaults: [cpu]\nname: x\ntask: RSGroundR1\nstage: grpo\nmodel: {name: rsground_r1-tiny}\ndata: {train: a, batchsize: 2}\n"
    )
    with pytest.raises(
        RecipeError, match=r"bad.yaml: invalid key 'data.batchsize'.*allowed keys here: .*'batch_size'"
    ):
        load_recipe(bad)
    missing = tmp_path / "missing.yaml"
    missing.write_text("defaults: [no_such_fragment]\n")
    with pytest.raises(RecipeError, match="defaults entry 'no_such_fragment' not found"):
        load_recipe(missing)
    incomplete = tmp_path / "incomplete.yaml"
    incomplete.write_text("name: x\ntask: RSGroundR1\nstage: grpo\n")
    with pytest.raises(RecipeError, match=r"required key\(s\) not set: \['data.train', 'model.name'\]"):
        load_recipe(incomplete)


def test_every_recipe_opens_with_a_manual_header():
    for path in shipped_recipes():
        lines = path.read_text().splitlines()
        head = lines[
            : next(i for i, line in enumerate(lines) if not line.startswith("#"))
        ]  # the leading comment block
        text = "\n".join(head)
        assert head and head[0].startswith("#"), path
        assert "rszoo train" in text and "Override" in text and "Expected" in text, path


def test_defaults_fragments_validate_alone():
    for fragment in DEFAULTS_DIR.rglob("*.yaml"):
        from omegaconf import OmegaConf

        from rszoo.recipes import _validate_fragment

        _validate_fragment(OmegaConf.load(fragment), str(fragment))


@pytest.mark.slow
@pytest.mark.parametrize("path", shipped_recipes(), ids=lambda p: str(p.relative_to(RECIPES_DIR)))
def test_every_shipped_recipe_runs_one_step(path, synth_data, tmp_path):
    """Cluster recipes get the tiny preset and a CPU; every recipe trains one step on the synthetic data."""
    from rszoo.training.run import train

    cfg = load_recipe(path)
    if (
        cfg.data.format == "mixture"
    ):  # cluster data recipes name real data sets: use the synthetic mixture instead
        overrides = [
            f"data.train={RECIPES_DIR / 'rscovlm' / 'data' / 'tiny_synth.yaml'}",
            f"data.engine={{root: {synth_data['root']}}}",
        ]
    else:
        data = {"messages": synth_data["cot_sft"], "grounding": synth_data["grounding_train"]}[
            cfg.data.format
        ]
        overrides = [f"data.train={data}"]
    overrides += [
        "data.val=null",
        "data.batch_size=1",
        "data.num_workers=0",
        "data.global_batch_size=null",
        "trainer.max_steps=1",
        "trainer.accumulate_grad_batches=1",
        "trainer.precision=32-true",
        "trainer.enable_progress_bar=false",
        f"output_dir={tmp_path / 'run'}",
        "cluster.accelerator=cpu",
        "cluster.devices=1",
        "cluster.num_nodes=1",
        "cluster.strategy=auto",
        "eval.data=null",
        "logging.mlflow=false",
        "checkpoint.save_final_model=false",
    ]
    if not cfg.model.name.endswith("-tiny"):
        overrides.append(f"model.name={cfg.model.name.split('-')[0]}-tiny")
        overrides.append("model.init_from=null")
    if cfg.stage == "grpo":
        overrides += ["stage_args.num_generations=2", "stage_args.max_completion_length=8"]
    result = train(load_recipe(path, overrides))
    assert result.metrics["train/loss"] == result.metrics["train/loss"]  # finite, not NaN
