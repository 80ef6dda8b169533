"""``rszoo.RSGroundR1``: the paper's two training stages as one LightningModule.

* ``cot_sft`` — Stage 1, position-aware CoT-SFT: the shared chat SFT stage on messages JSONL written by
  :func:`rszoo.data.cot.build_cot_sft` (or external CoT filtered by :func:`rszoo.data.cot.load_external_cot`).
* ``grpo`` — Stage 2, the shared GRPO stage on grounding records, rewarded by format + IoU + 0.1 R_pos and weighted per
  group by spatial consistency (``stage_args.group_weight``).

Example:
    >>> import rszoo
    >>> task = rszoo.RSGroundR1(model="rsground_r1-tiny", stage="grpo", stage_args={"num_generations": 4})
    >>> task.configure_model()
    >>> type(task.network).__name__
    'RSGroundR1Model'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rszoo.training.grpo import GRPOStage
from rszoo.training.sft import SFTStage
from rszoo.training.task import BaseTask

__all__ = ["RSGroundR1", "evaluate_grounding", "grounding_prompt_rows"]


def grounding_prompt_rows(records: list[Any], question_template: str) -> list[dict[str, Any]]:
    """GRPO prompt rows for grounding records: the REC prompt with the image, and the GT box for the rewards."""
    rows = []
    for record in records:
        text = question_template.format(Question=record.expression.strip())
        rows.append(
            {
                "id": record.id,
                "prompt": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "image": record.image}, {"type": "text", "text": text}],
                    }
                ],
                "reward_kwargs": {"box": list(record.box), "image_size": (record.width, record.height)},
            }
        )
    return rows


def evaluate_grounding(
    network: Any,
    records: list[Any],
    out_dir: str | Path | None = None,
    batch_size: int = 4,
    plot_samples: int = 8,
    strict: bool = True,
) -> dict[str, Any]:
    """Greedy grounding on ``records``; Acc@0.5/0.7, mIoU, cumIoU, parse failures (+ Unique/Non-unique splits).

    With ``out_dir``: ``report.json`` (metrics), ``predictions.jsonl`` (every completion and box) and
    ``samples.png`` (predicted vs GT boxes on the first ``plot_samples`` images).
    """
    import json

    import torch
    from tqdm.auto import tqdm

    from rszoo.data.images import load_image
    from rszoo.metrics.grounding import grounding, plot_grounding_grid
    from rszoo.utils.io import atomic_write_text

    network.eval()
    predictions = []
    with torch.no_grad():
        for start in tqdm(range(0, len(records), batch_size), desc="evaluating", unit="batch", leave=False):
            chunk = records[start : start + batch_size]
            images = [load_image(r.image).pixels for r in chunk]
            results = network.ground(images, [r.expression for r in chunk])
            for record, result in zip(chunk, results):
                predictions.append(
                    {"id": record.id, "box": result["box"], "gt": record.box, "text": result["text"]}
                )
    unique = [r.unique for r in records] if any(r.unique is not None for r in records) else None
    metrics = grounding(
        [p["box"] for p in predictions], [r.box for r in records], strict=strict, unique=unique
    )
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "report.json", json.dumps(metrics, indent=2) + "\n")
        atomic_write_text(out / "predictions.jsonl", "".join(json.dumps(p) + "\n" for p in predictions))
        samples = [
            {"image": r.image, "pred_box": p["box"], "gt_box": r.box, "expression": r.expression}
            for r, p in list(zip(records, predictions))[:plot_samples]
        ]
        if samples:
            plot_grounding_grid(samples, out / "samples.png")
    return metrics


class RSGroundR1(BaseTask):
    """RSGround-R1 training: ``stage="cot_sft"`` (chat SFT) or ``stage="grpo"`` (spatially guided GRPO).

    Data formats: ``messages`` (CoT-SFT JSONL) and ``grounding`` (grounding JSONL, for GRPO prompts). See
    :class:`rszoo.training.task.BaseTask` for the arguments.
    """

    family = "rsground_r1"
    stages = {"cot_sft": SFTStage, "grpo": GRPOStage}
    data_formats = ("messages", "grounding")

    def load_rows(self, fmt: str, path: str, max_samples: int | None = None) -> list[dict[str, Any]]:
        if fmt != "grounding":
            return super().load_rows(fmt, path, max_samples)
        from rszoo.data.grounding import load_grounding_jsonl

        records, report = load_grounding_jsonl(path, check_images=True)
        if report.skipped_zero_area:
            print(f"[rszoo] {report.summary()}")
        if not records:
            raise ValueError(f"{path}: no usable grounding records ({report.summary()})")
        return grounding_prompt_rows(records[:max_samples], self.model_config().question_template)

    def evaluate(self, eval_cfg: Any, out_dir: Any, network: Any = None) -> dict[str, Any]:
        """Grounding accuracy of the trained network on ``eval_cfg.data`` (grounding JSONL)."""
        from rszoo.data.grounding import load_grounding_jsonl

        records, _ = load_grounding_jsonl(eval_cfg.data, check_images=True)
        records = records[: eval_cfg.max_samples] if eval_cfg.max_samples else records
        return evaluate_grounding(network or self.network, records, out_dir, batch_size=eval_cfg.batch_size)
