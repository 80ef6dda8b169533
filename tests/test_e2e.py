"""End to end on a CPU: rszoo synth -> rszoo cot -> rszoo train (tiny SFT) -> checkpoint -> load_model -> predict,
eval, export and publish --dry-run, all through the command line."""

from __future__ import annotations

import json

import pytest
import torch

import rszoo
from rszoo.cli.main import main


@pytest.mark.slow
def test_synth_train_load_predict_eval_export(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["synth", str(data), "--num-scenes", "12", "--seed", "3", "--size", "224"]) == 0
    assert (data / "grounding.jsonl").is_file() and (data / "manifest.json").is_file()
    assert main(["cot", str(data / "grounding.jsonl"), "--out", str(data / "cot.jsonl")]) == 0
    run = tmp_path / "run"
    code = main(
        [
            "train", "recipes/rsground_r1/tiny_cot_sft.yaml", f"data.train={data / 'cot.jsonl'}", f"output_dir={run}",
            "trainer.max_steps=4", "checkpoint.every_n_steps=2", f"eval.data={data / 'grounding.jsonl'}",
            "eval.max_samples=4", "trainer.enable_progress_bar=false",
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "final model:" in out and "mlflow ui --backend-store-uri sqlite:///" in out
    assert (run / "checkpoints" / "step=4.ckpt").is_file() and (run / "recipe.yaml").is_file()
    report = json.loads((run / "eval" / "report.json").read_text())
    assert report["n"] == 4 and 0 <= report["acc@0.5"] <= 1
    assert (run / "eval" / "samples.png").stat().st_size > 1000

    model = rszoo.load_model(run / "model")
    assert type(model).__name__ == "RSGroundR1Model"
    assert (run / "model" / "recipe.yaml").read_text() == (run / "recipe.yaml").read_text()

    image = sorted((data / "images").glob("*.png"))[0]
    pred_png = tmp_path / "pred.png"
    assert (
        main(
            [
                "predict",
                str(run / "model"),
                "--image",
                str(image),
                "--expression",
                "the ship",
                "--out",
                str(pred_png),
            ]
        )
        == 0
    )
    assert pred_png.stat().st_size > 1000 and "box (original pixels):" in capsys.readouterr().out

    assert main(["eval", str(run / "model"), "--data", str(data / "grounding.jsonl"), "--max-samples", "2",
                 "--out", str(tmp_path / "ev")]) == 0  # fmt: skip
    assert json.loads((tmp_path / "ev" / "report.json").read_text())["n"] == 2

    exported = tmp_path / "exported"
    assert main(["export", str(run), "--out", str(exported)]) == 0
    again = rszoo.load_model(exported)
    ids = torch.arange(20).unsqueeze(0)
    with torch.no_grad():
        assert torch.equal(again(input_ids=ids).logits, model(input_ids=ids).logits)

    assert main(["publish", str(exported), "me/tiny", "--dry-run"]) == 0
    listing = capsys.readouterr().out
    assert "model.safetensors" in listing and "rszoo.json" in listing and "README.md" in listing

    # MLflow recorded the run: metrics, the recipe and the model as artifacts
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{run / 'mlflow.db'}")
    run_id = (run / "mlflow_run_id.txt").read_text().strip()
    assert "train/loss" in client.get_run(run_id).data.metrics
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"recipe.yaml", "model", "eval"} <= artifacts
