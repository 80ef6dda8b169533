"""GRPO resumes exactly: sampled rollouts (RNG per rank), stored rollouts of num_iterations > 1 and the data order."""

from __future__ import annotations

import csv

import lightning as L
import pytest

from rszoo.recipes import RECIPES_DIR, load_recipe
from rszoo.registry import REWARDS
from rszoo.training.run import train


class LengthReward:
    """A reward with spread even for an untrained model, so advantages, updates and losses are non-trivial."""

    __name__ = "test_length"

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def __call__(self, prompts=None, completions=None, **kwargs):
        return [len(c) / 40.0 for c in completions]


class StopAt(L.Callback):
    """Stops training once ``step`` optimizer steps are done, right after that step's checkpoint (the process-kill
    version of this test is tests/training/test_resume.py; here the point is GRPO's own state)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step >= self.step:
            trainer.should_stop = True


def _losses(run_dir):
    out = {}
    for path in sorted(run_dir.glob("logs*/metrics.csv")):
        with path.open() as fh:
            for row in csv.DictReader(fh):
                if row.get("train/loss"):
                    out[int(row["step"])] = (float(row["train/loss"]), float(row["train/reward"]))
    return out


@pytest.mark.slow
def test_grpo_run_interrupted_and_resumed_matches_uninterrupted(synth_data, tmp_path):
    if "test_length" not in REWARDS:
        REWARDS.register("test_length", obj=LengthReward)
    overrides = [
        f"data.train={synth_data['grounding_train']}",
        "data.fraction=1.0",
        "stage_args.rewards=[{name: test_length}]",
        "stage_args.group_weight=null",
        "stage_args.num_generations=4",
        "stage_args.max_completion_length=12",
        "stage_args.num_iterations=2",
        "trainer.max_steps=6",
        "checkpoint.every_n_steps=1",
        "checkpoint.keep_last=10",
        "eval.data=null",
        "logging.mlflow=false",
        "checkpoint.save_final_model=false",
        "trainer.enable_progress_bar=false",
        "optimizer.lr=5e-3",
    ]
    straight = tmp_path / "straight"
    train(load_recipe(RECIPES_DIR / "rsground_r1" / "tiny_grpo.yaml", [*overrides, f"output_dir={straight}"]))
    reference = _losses(straight)
    assert (
        sorted(reference) == list(range(6)) and len({v[0] for v in reference.values()}) > 2
    )  # losses do move

    broken = tmp_path / "broken"
    recipe = load_recipe(RECIPES_DIR / "rsground_r1" / "tiny_grpo.yaml", [*overrides, f"output_dir={broken}"])
    train(
        recipe, extra_callbacks=[StopAt(3)]
    )  # mid-way through a reused batch of rollouts (steps 2-3 share one)
    assert sorted(p.name for p in (broken / "checkpoints").glob("*.ckpt"))[-1] == "step=3.ckpt"
    train(recipe)  # resume: auto
    resumed = _losses(broken)
    assert sorted(resumed) == list(range(6))
    for step in range(6):
        assert resumed[step] == pytest.approx(reference[step], rel=1e-6, abs=1e-7), step
