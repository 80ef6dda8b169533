"""Shared test set-up: offline, quiet, deterministic; tiny models and a synthetic data set built once per session."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def tiny_model():
    """A tiny RSGround-R1 network (random init, fixed seed). Tests must not modify it in place."""
    import torch

    import rszoo

    torch.manual_seed(0)
    return rszoo.create_model("rsground_r1-tiny")


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory):
    """A small synthetic data set (scenes, grounding, messages, CoT-SFT) shared by the training tests."""
    from rszoo.data.synth import write_dataset
    from rszoo.models.rsground_r1.data import prepare_grounding_data

    root = tmp_path_factory.mktemp("synth")
    write_dataset(root, num_scenes=24, seed=7, size=224)
    return prepare_grounding_data(root, val_fraction=0.25, max_pixels=448 * 448, min_pixels=56 * 56, seed=0)
