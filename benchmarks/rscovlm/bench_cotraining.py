"""RSCoVLM co-training in miniature: the tiny model trained on a synthetic multi-task mixture, two weightings compared.

Tasks: scene classification, VQA, captioning, grounding and oriented detection on synthetic 224 px scenes, plus
Zoom-in Chain VQA on synthetic large scenes (LRS-VQA-Zoom style). The data engine mixes them online by weight:

* ``uniform``            — every subset weight 1;
* ``perception-heavy``   — grounding and detection weight 3 (the paper's practice of raising under-performing tasks).

Per-task metrics are measured on held-out scenes before training (random init) and after each mixture's training,
with identical seeds and steps, in two ways:

* generated answers scored by the task metrics (VQA OA, caption BLEU-4, grounding Acc@0.5/mIoU, detection AP_nc50/mF1,
  zoom-in VQA OA and the share of parsed zoom tool calls);
* teacher-forced: per-token NLL and greedy token accuracy of the reference answers (``VLMModel.answer_scores``, the
  tokens SFT trains on). A model this small moves here long before its free-running answers become parseable.

The tiny model is a random-init toy (223 k parameters, a 914-token vocabulary); absolute numbers are low, and what the
benchmark shows is the whole multi-task pipeline running and how the weighting moves the tasks. Reported as measured.

Run: ``python benchmarks/rscovlm/bench_cotraining.py`` (about 30-40 minutes on 2 CPU cores).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, __file__.rsplit("/", 2)[0])
from _common import save_result

SCENES, EVAL_SCENES, SIZE, STEPS, EVAL_PER_TASK, SEED = 128, 12, 224, 1500, 12, 0
MIXTURES = {"uniform": {}, "perception-heavy": {"synth_grounding": 3.0, "synth_det": 3.0}}

DATA_RECIPE = """\
description: benchmark mixture (five synthetic tasks + Zoom-in Chain VQA on large scenes)
variables:
  root: .
  zoom: .
online:
  prob_random_resize: 0.5
  prob_plain_text_prompt: 0.5
subsets:
  - {name: synth_cls, task: classification, weight: 1.0, source: {format: synth_scenes, annotations: "${root}/scenes.jsonl"}}
  - name: synth_vqa
    task: vqa
    weight: 1.0
    source: {format: messages, annotations: "${root}/messages.jsonl", tasks: [vqa]}
    prompts: ["{question}"]
  - {name: synth_caption, task: caption, weight: 1.0, source: {format: messages, annotations: "${root}/messages.jsonl", tasks: [caption]}}
  - {name: synth_grounding, task: grounding, weight: 1.0, source: {format: grounding_jsonl, annotations: "${root}/grounding.jsonl"}}
  - name: synth_det
    task: detection
    weight: 1.0
    source: {format: dota, labels: "${root}/dota/labelTxt", images: "${root}/images"}
  - {name: zoom_vqa, task: zoom_vqa, weight: 1.0, source: {format: zoom, annotations: "${zoom}/lrs_vqa_zoom_train.jsonl", images: "${zoom}"}}
"""


def evaluate(model, eval_root: Path, zoom_root: Path, out: Path) -> dict[str, dict[str, float]]:
    from rszoo.data.records import iter_jsonl
    from rszoo.metrics.vqa import lrs_vqa
    from rszoo.models.rscovlm.evaluate import evaluate_multitask

    report = evaluate_multitask(model, eval_root, out, max_per_task=EVAL_PER_TASK)
    flat = {
        "classification/vqa OA": report["vqa"]["OA"],
        "caption BLEU-4": report["caption"]["bleu4"],
        "grounding Acc@0.5": report["grounding"]["acc@0.5"],
        "grounding mIoU": report["grounding"]["miou"],
        "detection AP_nc50": report["detection"]["ap_nc50"],
        "detection mF1": report["detection"]["mf1"],
    }
    records, tool_calls = [], 0
    for _, row in iter_jsonl(zoom_root / "lrs_vqa_zoom_eval.jsonl"):
        result = model.zoom_answer(str(zoom_root / row["image"]), row["text"], max_new_tokens=48)
        tool_calls += bool(result["tool_call_parsed"])
        records.append({**row, "prediction": result["answer"]})
    flat["zoom VQA OA"] = lrs_vqa(records)["OA"]
    flat["zoom tool calls parsed"] = tool_calls / max(1, len(records))
    teacher = {
        f"{task} {key}": scores[key]
        for task, scores in sorted(report["teacher_forced"].items())
        for key in ("nll_per_token", "token_accuracy")
    }
    return {"generated": flat, "teacher_forced": teacher}


def main() -> None:
    from rszoo.data.synth import write_dataset
    from rszoo.models.rscovlm.uhr_data import write_lrs_vqa_zoom
    from rszoo.recipes import RECIPES_DIR, load_recipe
    from rszoo.training.run import train

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_dataset(root / "train", num_scenes=SCENES, seed=SEED, size=SIZE)
        write_dataset(root / "eval", num_scenes=EVAL_SCENES, seed=SEED + 1000, size=SIZE)
        write_lrs_vqa_zoom(
            root / "zoom",
            num_scenes=3,
            seed=SEED,
            sizes=((2048, 2048),),
            eval_scenes=1,
            min_pixels=56 * 56,
            max_pixels=448 * 448,
        )
        (root / "mixture.yaml").write_text(DATA_RECIPE)
        import rszoo

        before = rszoo.create_model("rscovlm-tiny")
        results["before (random init)"] = evaluate(before, root / "eval", root / "zoom", root / "eval_before")
        print("before", results["before (random init)"], flush=True)
        for name, weights in MIXTURES.items():
            engine = {"root": str(root / "train"), "zoom": str(root / "zoom")}
            engine.update({f"subsets.{k}.weight": v for k, v in weights.items()})
            overrides = [
                f"data.train={root / 'mixture.yaml'}",
                f"data.engine={json.dumps(engine)}",
                f"output_dir={root / name}",
                f"trainer.max_steps={STEPS}",
                "eval.data=null",
                "logging.mlflow=false",
                "trainer.enable_progress_bar=false",
                f"seed={SEED}",
            ]
            res = train(load_recipe(RECIPES_DIR / "rscovlm" / "tiny_sft.yaml", overrides))
            model = rszoo.load_model(res.model_dir)
            results[f"after: {name}"] = evaluate(model, root / "eval", root / "zoom", root / f"eval_{name}")
            print(name, results[f"after: {name}"], flush=True)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    runs = list(results)
    first = results[runs[0]]
    panels = [
        ("generated answers", list(first["generated"]), "generated", "score (0-1)"),
        (
            "teacher-forced token accuracy",
            [m for m in first["teacher_forced"] if m.endswith("token_accuracy")],
            "teacher_forced",
            "greedy token accuracy",
        ),
        (
            "teacher-forced NLL per token",
            [m for m in first["teacher_forced"] if m.endswith("nll_per_token")],
            "teacher_forced",
            "nats (lower is better)",
        ),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(18, 4.5), gridspec_kw={"width_ratios": [2, 1, 1]})
    for ax, (title, metrics, group, ylabel) in zip(axes, panels):
        x = np.arange(len(metrics))
        for k, run in enumerate(runs):
            ax.bar(x + (k - 1) * 0.27, [results[run][group][m] for m in metrics], 0.27, label=run)
        labels = [m.replace(" token_accuracy", "").replace(" nll_per_token", "") for m in metrics]
        ax.set_xticks(x, labels, rotation=20, ha="right")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
    axes[0].legend()
    fig.suptitle(f"tiny RSCoVLM co-training: {STEPS} steps per mixture, held-out synthetic scenes")
    fig.tight_layout()
    save_result(
        "rscovlm_cotraining",
        {
            "settings": {
                "train_scenes": SCENES,
                "eval_scenes": EVAL_SCENES,
                "size": SIZE,
                "steps": STEPS,
                "eval_per_task": EVAL_PER_TASK,
                "mixtures": MIXTURES,
                "model": "rscovlm-tiny (random init)",
            },
            "results": results,
        },
        fig,
    )


if __name__ == "__main__":
    main()
