"""Exact resumption: a run killed mid-training and resumed produces the same losses as an uninterrupted run."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rszoo.training.data import ResumableSampler

RECIPE = "recipes/rsground_r1/tiny_cot_sft.yaml"
REPO = Path(__file__).resolve().parents[2]


def test_sampler_skips_consumed_samples_and_repeats_batches():
    sampler = ResumableSampler(10, seed=3, shuffle=True, batch_size=2)
    full = list(sampler)
    assert sorted(full) == list(range(10))
    sampler.load_state_dict(sampler.state_dict(consumed=4))
    assert list(sampler) == full[4:]
    assert list(sampler) == full  # the skip applies once
    sampler.set_epoch(1)
    assert list(sampler) != full and sorted(sampler) == list(range(10))
    repeated = ResumableSampler(6, seed=0, shuffle=False, batch_size=2, repeat_batches=3)
    assert list(repeated) == [0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 4, 5, 4, 5, 4, 5]
    ranks = [list(ResumableSampler(5, seed=1, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 3 and set(ranks[0] + ranks[1]) == set(range(5))
    with pytest.raises(ValueError, match="cannot resume the data order"):
        ResumableSampler(7, seed=1).load_state_dict(sampler.state_dict(consumed=2))


def _losses(run_dir: Path) -> dict[int, float]:
    losses = {}
    for path in sorted(run_dir.glob("logs*/metrics.csv")):
        with path.open() as fh:
            for row in csv.DictReader(fh):
                if row.get("train/loss"):
                    losses[int(row["step"])] = float(row["train/loss"])
    return losses


def _cmd(data: Path, run_dir: Path, steps: int) -> list[str]:
    return [
        sys.executable, "-m", "rszoo.cli.main", "train", RECIPE,
        f"data.train={data}", f"output_dir={run_dir}", f"trainer.max_steps={steps}", "data.batch_size=3",
        "checkpoint.every_n_steps=1", "checkpoint.keep_last=3", "eval.data=null", "logging.mlflow=false",
        "trainer.enable_progress_bar=false", "checkpoint.save_final_model=false",
    ]  # fmt: skip


@pytest.mark.slow
def test_killed_run_resumes_exactly(synth_data, tmp_path):
    data, steps = synth_data["cot_sft"], 9
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    straight = tmp_path / "straight"
    subprocess.run(_cmd(data, straight, steps), cwd=REPO, env=env, check=True, capture_output=True)
    reference = _losses(straight)
    assert sorted(reference) == list(range(steps))

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _cmd(data, killed, steps), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while not (killed / "checkpoints" / "step=4.ckpt").exists():
        assert proc.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    subprocess.run(_cmd(data, killed, steps), cwd=REPO, env=env, check=True, capture_output=True)
    resumed_logs = list(killed.glob("logs-resumed-*/metrics.csv"))
    assert len(resumed_logs) == 1, "the second run did not resume from a checkpoint"
    merged = _losses(killed)  # the resumed run's steps overwrite the killed run's
    with resumed_logs[0].open() as fh:
        resumed_steps = sorted({int(r["step"]) for r in csv.DictReader(fh) if r.get("train/loss")})
    assert resumed_steps and resumed_steps[0] >= 4 and resumed_steps[-1] == steps - 1
    assert sorted(merged) == list(range(steps))
    for step in range(steps):
        assert merged[step] == pytest.approx(reference[step], rel=1e-6, abs=1e-7), f"step {step}"
