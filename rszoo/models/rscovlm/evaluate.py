"""Multi-task evaluation of RSCoVLM-style models on a data folder in the synthetic world's layout.

The folder holds ``messages.jsonl`` (rows with ``task`` = ``vqa`` / ``classification`` / ``caption`` / ``grounding``),
``coco.json`` (detection categories) and ``dota/labelTxt/<image>.txt`` (oriented GT), as ``rszoo synth`` writes it.
Each task is scored with rszoo's metrics:

* VQA / classification — exact match after normalisation, per question type, AA and OA (:func:`rszoo.metrics.vqa.rsvqa`);
* captioning — BLEU-4 and CIDEr (pycocoevalcap scorers on lower-cased whitespace tokens);
* grounding — Acc@0.5, Acc@0.7, mIoU, cumIoU (:func:`rszoo.metrics.grounding.grounding`; answers in Qwen2.5-VL absolute
  pixels of the resized input, mapped back by the smart_resize ratio);
* detection — AP_nc@0.5 with constant scores and mF1 (:mod:`rszoo.metrics.detection`), plus the parser's counts.
* every task — ``teacher_forced``: NLL per reference-answer token and greedy token accuracy, which move from the first
  training steps, long before generated answers become correct (compare short runs with them).

``report.json`` holds every number; ``detections.png`` draws predicted quads with labels on sample images.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

__all__ = ["draw_detections", "evaluate_multitask"]

_COLOURS = [
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
]


def draw_detections(
    image: Any, detections: list[dict[str, Any]], path: str | Path, title: str | None = None
) -> Path:
    """Draw detected quads with their labels on a copy of ``image`` and save a PNG (atomically)."""
    import io

    from PIL import ImageDraw

    from rszoo.utils.io import atomic_write_bytes

    canvas = image.convert("RGB").copy()
    draw = ImageDraw.Draw(canvas)
    labels = sorted({d["label"] for d in detections})
    for det in detections:
        colour = _COLOURS[labels.index(det["label"]) % len(_COLOURS)]
        pts = [(float(det["poly"][i]), float(det["poly"][i + 1])) for i in range(0, 8, 2)]
        draw.polygon(pts, outline=colour, width=2)
        draw.text((min(p[0] for p in pts), max(0.0, min(p[1] for p in pts) - 11)), det["label"], fill=colour)
    if title:
        draw.text((4, 4), title, fill=(255, 255, 255))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def _question(row: dict[str, Any]) -> tuple[str, str, str]:
    """(image path, user text, reference answer) of a single-image, single-turn row."""
    user = next(m for m in row["messages"] if m["role"] == "user")
    image = next(p["image"] for p in user["content"] if p.get("type") == "image")
    text = " ".join(p["text"] for p in user["content"] if p.get("type") == "text")
    answer = next(m for m in row["messages"] if m["role"] == "assistant")["content"]
    return image, text, answer


def _caption_scores(predictions: list[str], references: list[str]) -> dict[str, float]:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    res = {i: [" ".join(p.lower().split())] for i, p in enumerate(predictions)}
    gts = {i: [" ".join(r.lower().split())] for i, r in enumerate(references)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    return {"bleu4": float(bleu[3]), "cider": float(cider)}


def _teacher_forced(
    model: Any, root: Path, by_task: dict[str, list[dict[str, Any]]], batch_size: int
) -> dict[str, dict[str, float]]:
    """Per task: NLL per reference-answer token and greedy token accuracy (:meth:`VLMModel.answer_scores`)."""
    from rszoo.models.vlm.model import load_message_images

    out = {}
    for task, rows in sorted(by_task.items()):
        nll = tokens = correct = 0.0
        for start in range(0, len(rows), batch_size):
            chats = [r["messages"] for r in rows[start : start + batch_size]]
            for s in model.answer_scores(chats, [load_message_images(c, root) for c in chats]):
                nll, tokens, correct = nll + s["nll"], tokens + s["tokens"], correct + s["correct"]
        tokens = tokens or float("nan")  # every answer truncated away: no score rather than a division error
        out[task] = {"nll_per_token": nll / tokens, "token_accuracy": correct / tokens, "rows": len(rows)}
    return out


def evaluate_multitask(
    model: Any,
    data_root: str | Path,
    out_dir: str | Path | None = None,
    max_per_task: int = 32,
    batch_size: int = 4,
) -> dict[str, Any]:
    """Score ``model`` on every task present in ``data_root`` (see the module docstring); returns the report."""
    import torch

    from rszoo.data.answers import parse_box
    from rszoo.data.dota_split import read_dota_annotation
    from rszoo.data.images import load_image
    from rszoo.data.records import iter_jsonl
    from rszoo.data.resize import box_to_original
    from rszoo.metrics.detection import ap_nc, mf1
    from rszoo.metrics.grounding import grounding
    from rszoo.metrics.vqa import rsvqa

    root = Path(data_root)
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _, row in iter_jsonl(root / "messages.jsonl"):
        if len(by_task[row.get("task", "")]) < max_per_task:
            by_task[row.get("task", "")].append(row)
    report: dict[str, Any] = {}
    model.eval()

    def run_chat(rows: list[dict[str, Any]]) -> list[tuple[dict, Any, str, str]]:
        out = []
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            items = [_question(r) for r in chunk]
            images = [load_image(root / img).pixels for img, _, _ in items]
            texts = model.answer(images, [q for _, q, _ in items])
            out += [(r, im, t, ref) for r, im, t, (_, _, ref) in zip(chunk, images, texts, items)]
        return out

    with torch.no_grad():
        report["teacher_forced"] = _teacher_forced(model, root, by_task, batch_size)
        for task in ("vqa", "classification"):
            if by_task.get(task):
                results = run_chat(by_task[task])
                records = [
                    {"prediction": t, "ground_truth": ref, "type": r.get("vqa_type", task)}
                    for r, _, t, ref in results
                ]
                report[task] = rsvqa(records, type_key="type")
        if by_task.get("caption"):
            results = run_chat(by_task["caption"])
            report["caption"] = _caption_scores([t for _, _, t, _ in results], [ref for *_, ref in results])
        if by_task.get("grounding"):
            results = run_chat(by_task["grounding"])
            preds, gts = [], []
            for row, image, text, ref in results:
                gt = parse_box(f"<answer>{ref}</answer>")  # the synthetic world writes GT in original pixels
                if gt is None:
                    raise ValueError(
                        f"{root / 'messages.jsonl'}: grounding row {row.get('id')!r} has no parseable GT box"
                    )
                box = parse_box(text if "<answer>" in text else f"<answer>{text}</answer>")
                input_size = model.input_size(image.size)  # the model answers in resized-input pixels
                preds.append(None if box is None else box_to_original(box, input_size, image.size))
                gts.append(gt)
            report["grounding"] = grounding(preds, gts)
        label_dir = root / "dota" / "labelTxt"
        if label_dir.is_dir():
            categories = [c["name"] for c in json.loads((root / "coco.json").read_text())["categories"]]
            files = sorted(label_dir.glob("*.txt"))[:max_per_task]
            dets, gts, counts, samples = [], [], defaultdict(int), []
            for start in range(0, len(files), batch_size):
                chunk = files[start : start + batch_size]
                images = [load_image(root / "images" / f"{f.stem}.png").pixels for f in chunk]
                parsed = model.detect(images, categories)
                for f, image, result in zip(chunk, images, parsed):
                    for d in result.detections:
                        dets.append({**d, "image": f.stem})
                    for obj in read_dota_annotation(f):
                        gts.append(
                            {
                                "image": f.stem,
                                "label": obj["label"],
                                "poly": obj["poly"],
                                "difficult": obj.get("difficult", 0),
                            }
                        )
                    for key, value in result.counts.items():
                        if isinstance(value, int):
                            counts[key] += value
                    if len(samples) < 4:
                        samples.append((image, [d for d in result.detections], f.stem))
            ap = ap_nc(dets, gts, iou_thrs=(0.5,), classes=categories, seeds=())
            report["detection"] = {
                "ap_nc50": float(ap["constant"]["AP50"]),
                "mf1": float(mf1(dets, gts, classes=categories)["mF1"]),
                "images": len(files),
                "detections": len(dets),
                "ground_truths": len(gts),
                "parser": dict(counts),
            }
            if out_dir is not None:
                for image, found, stem in samples:
                    draw_detections(
                        image, found, Path(out_dir) / f"detections_{stem}.png", title=f"{len(found)} found"
                    )
    if out_dir is not None:
        from rszoo.utils.io import atomic_write_text

        Path(out_dir).mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(out_dir) / "report.json", json.dumps(report, indent=2, default=float) + "\n")
    return report
