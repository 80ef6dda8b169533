"""RSCoVLM: presets, the detection interface (prompt, parsing, back-scaling), multi-task evaluation, prediction."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import rszoo
from rszoo.data.detection_format import SYSTEM_PROMPTS
from rszoo.models.rscovlm.config import DOTA_V1_CATEGORIES, RSCoVLMConfig


def test_presets_and_published_parameter_counts():
    assert rszoo.list_models("rscovlm-*") == ["rscovlm-3b", "rscovlm-7b", "rscovlm-tiny"]
    with torch.device("meta"):
        assert (
            rszoo.create_model("rscovlm-7b").num_parameters() == 8_292_166_656
        )  # Qwen/Qwen2.5-VL-7B-Instruct
        assert rszoo.create_model("rscovlm-3b").num_parameters() == 3_754_622_976
    cfg = RSCoVLMConfig.from_name("rscovlm-7b")
    assert (cfg.min_pixels, cfg.max_pixels) == (
        224 * 224,
        1008 * 1008,
    )  # the paper's 224^2 .. 1008^2 area budget
    assert cfg.detection_categories == list(DOTA_V1_CATEGORIES) and len(DOTA_V1_CATEGORIES) == 15
    with pytest.raises(ValueError, match="detection_format"):
        RSCoVLMConfig.from_name("rscovlm-tiny", detection_format="xml")


def test_detection_prompt_is_rscovlms_eval_prompt():
    model = rszoo.create_model("rscovlm-tiny")
    messages = model.detection_messages("img.png", ["ship", "plane", "small-vehicle"])
    assert messages[0] == {"role": "system", "content": SYSTEM_PROMPTS[("quad", "plain")]}
    assert messages[1]["content"][1]["text"] == "find the plane, ship, small vehicle."


def test_detect_parses_and_maps_back_to_original_pixels(monkeypatch):
    model = rszoo.create_model("rscovlm-tiny")
    image = Image.fromarray(
        np.zeros((300, 400, 3), dtype=np.uint8)
    )  # smart_resize -> 392 x 308 input (W x H)
    assert model.input_size(image.size) == (392, 308)
    response = "10,20,50,20,50,60,10,60 ship\ngarbage line\n98,77,196,77,196,154,98,154 small vehicle\n"
    monkeypatch.setattr(type(model), "chat", lambda self, conversations, images, **kw: [response])
    found = model.detect([image], ["ship", "small-vehicle"])[0]
    assert [d["label"] for d in found.detections] == ["ship", "small-vehicle"]
    sx, sy = 400 / 392, 300 / 308
    expected = [98 * sx, 77 * sy, 196 * sx, 77 * sy, 196 * sx, 154 * sy, 98 * sx, 154 * sy]
    np.testing.assert_allclose(found.detections[1]["poly"], expected, rtol=1e-9)
    assert found.counts["parsed"] == 2 and sum(found.counts["dropped"].values()) == 1


class _Oracle:
    """Answers every evaluation question with the ground truth (and one mistake per task), to test the plumbing."""

    def __init__(self, root, real):
        self.real, self.root = real, root
        self.answers = {}
        for line in (root / "messages.jsonl").read_text().splitlines():
            row = json.loads(line)
            user = next(m for m in row["messages"] if m["role"] == "user")
            text = " ".join(p["text"] for p in user["content"] if p.get("type") == "text")
            image = next(p["image"] for p in user["content"] if p.get("type") == "image")
            key = (Image.open(root / image).convert("RGB").tobytes(), text)  # questions repeat across images
            self.answers[key] = (row["task"], row["messages"][-1]["content"])
        self.wrong_once: set[str] = set()

    def eval(self):
        return self

    def input_size(self, size):
        return self.real.input_size(size)

    def answer_scores(self, chats, images):
        return self.real.answer_scores(chats, images)

    def answer(self, images, questions, **kw):
        out = []
        for image, q in zip(images, questions):
            task, truth = self.answers[(image.tobytes(), q)]
            wrong = (
                task in ("vqa", "grounding") and task not in self.wrong_once
            )  # one mistake in those two tasks
            out.append("wrong" if wrong else truth)
            self.wrong_once.add(task)
        return out

    def detect(self, images, categories, **kw):
        from rszoo.data.detection_format import ParsedDetections
        from rszoo.data.dota_split import read_dota_annotation

        results = []
        for image in images:
            stem = next(
                p.stem
                for p in (self.root / "images").glob("*.png")
                if Image.open(p).tobytes() == image.tobytes()
            )
            objs = read_dota_annotation(self.root / "dota" / "labelTxt" / f"{stem}.txt")
            dets = [{"label": o["label"], "poly": o["poly"], "score": 1.0} for o in objs]
            results.append(ParsedDetections(detections=dets, counts={"parsed": len(dets)}))
        return results


def test_multitask_evaluation_scores_an_oracle_and_a_random_model(tmp_path):
    from rszoo.data.synth import write_dataset
    from rszoo.models.rscovlm.evaluate import evaluate_multitask

    write_dataset(tmp_path / "d", num_scenes=6, seed=5, size=224)
    real = rszoo.create_model("rscovlm-tiny")
    report = evaluate_multitask(
        _Oracle(tmp_path / "d", real), tmp_path / "d", tmp_path / "out", max_per_task=6
    )
    assert set(report) >= {"vqa", "caption", "grounding", "detection"}
    assert report["detection"]["ap_nc50"] == pytest.approx(1.0) and report["detection"][
        "mf1"
    ] == pytest.approx(1.0)
    assert report["grounding"]["acc@0.5"] == pytest.approx(
        5 / 6
    )  # one deliberate mistake (unparseable) of six
    assert report["grounding"]["parse_failures"] == 1
    assert 0.8 <= report["vqa"]["OA"] < 1.0
    assert report["caption"]["bleu4"] == pytest.approx(1.0, abs=1e-6) and report["caption"]["cider"] > 1.0
    assert (tmp_path / "out" / "report.json").is_file() and list((tmp_path / "out").glob("detections_*.png"))
    random = evaluate_multitask(
        real, tmp_path / "d", None, max_per_task=2
    )  # the untrained model: low, no crash
    assert random["detection"]["ap_nc50"] <= 0.5 and random["grounding"]["acc@0.5"] <= 0.5
    # teacher-forced scores for every task in messages.jsonl; a random-init model is near chance: NLL ~ ln(vocab)
    vocab = real.processor.tokenizer.vocab_size
    assert set(random["teacher_forced"]) == {"caption", "detection", "grounding", "vqa"}
    for scores in random["teacher_forced"].values():
        assert scores["nll_per_token"] > 0.7 * math.log(vocab) and scores["token_accuracy"] < 0.2


def test_predict_draws_detections(tmp_path, monkeypatch, capsys):
    from rszoo.cli.main import main

    model = rszoo.create_model("rscovlm-tiny")
    folder = model.save_pretrained(tmp_path / "m")
    image = tmp_path / "scene.png"
    Image.fromarray(np.full((224, 224, 3), 90, dtype=np.uint8)).save(image)
    from rszoo.models.rscovlm.model import RSCoVLMModel

    monkeypatch.setattr(RSCoVLMModel, "chat", lambda self, c, i, **kw: ["20,20,80,20,80,60,20,60 plane\n"])
    assert main(["predict", str(folder), "--image", str(image), "--out", str(tmp_path / "p.png")]) == 0
    drawn = np.asarray(Image.open(tmp_path / "p.png").convert("RGB")).astype(int)
    assert (np.abs(drawn - 90).sum(axis=2) > 100).sum() > 100  # the quad outline and label were drawn
    assert '"label": "plane"' in capsys.readouterr().out
