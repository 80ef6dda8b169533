"""FSDP2 on CPU with 2 processes (gloo): train, save sharded (DCP), resume on 1 and 2 processes, export — and the result
matches a single-process run trained on the same global batches."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import rszoo

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.distributed]


@pytest.fixture(scope="module")
def uniform_data(tmp_path_factory):
    """Samples with identical token counts, so per-rank token means average to the global token mean."""
    root = tmp_path_factory.mktemp("fsdp_data")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)).save(root / f"{i}.png")
        a, b, c, d = (int(v) for v in rng.integers(10, 99, 4))
        rows.append(
            {
                "id": f"u{i}",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image", "image": f"{i}.png"},
                            {"type": "text", "text": "Where is it?"},
                        ],
                    },
                    {"role": "assistant", "content": f'{{"bbox_2d": [{a}, {b}, {c}, {d}]}}'},
                ],
            }
        )
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root / "train.jsonl"


def _train(data: Path, run: Path, devices: int, batch: int, strategy: str, steps: int = 4) -> None:
    cmd = [
        sys.executable, "-m", "rszoo.cli.main", "train", "recipes/rsground_r1/tiny_cot_sft.yaml",
        f"data.train={data}", f"output_dir={run}", f"trainer.max_steps={steps}", f"data.batch_size={batch}",
        f"cluster.devices={devices}", f"cluster.strategy={strategy}", "cluster.fsdp.mixed_precision=fp32",
        "checkpoint.every_n_steps=2", "checkpoint.keep_last=5", "eval.data=null", "logging.mlflow=false",
        "trainer.enable_progress_bar=false", "optimizer.lr=1e-3", "scheduler.name=constant", "scheduler.warmup_ratio=0",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def _logits(folder: Path) -> torch.Tensor:
    model = rszoo.load_model(folder)
    ids = torch.arange(40).unsqueeze(0)
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_fsdp2_train_resume_export_matches_single_process(uniform_data, tmp_path):
    sharded = tmp_path / "fsdp2"
    _train(uniform_data, sharded, devices=2, batch=1, strategy="fsdp2")
    step2 = sharded / "checkpoints" / "step=2.ckpt"
    assert step2.is_dir() and len(list(step2.glob("*.distcp"))) == 2  # one shard file per rank
    reference = _logits(sharded / "model")

    single = tmp_path / "single"
    _train(
        uniform_data, single, devices=1, batch=2, strategy="auto"
    )  # the same global batches in one process
    torch.testing.assert_close(_logits(single / "model"), reference, rtol=1e-4, atol=1e-4)

    for devices, batch in (
        (1, 2),
        (2, 1),
    ):  # resume the 2-process checkpoint on another and on the same world size
        resumed = tmp_path / f"resumed_{devices}"
        (resumed / "checkpoints").mkdir(parents=True)
        shutil.copytree(step2, resumed / "checkpoints" / "step=2.ckpt")
        _train(uniform_data, resumed, devices=devices, batch=batch, strategy="fsdp2")
        assert (resumed / "logs-resumed-step2").is_dir()
        torch.testing.assert_close(_logits(resumed / "model"), reference, rtol=1e-4, atol=1e-4)

    exported = tmp_path / "exported"
    from rszoo.cli.main import main

    assert (
        main(["export", str(sharded), "--out", str(exported)]) == 0
    )  # consolidates the final DCP checkpoint
    torch.testing.assert_close(_logits(exported), reference, rtol=0, atol=0)
