"""One SFT step of the tiny Qwen2.5-VL: rszoo (Lightning Trainer + SFT stage) vs a hand-written plain-transformers loop.

Both sides do the same work per step, in this one process, on the same model weights and samples: tokenise the chat
with the processor (4 samples, one 448x448 image each = 256 visual tokens), mask labels to assistant tokens, forward
with labels, backward, clip gradients to 1.0, AdamW step, zero grads. rszoo's step time is the wall time between
consecutive ``on_train_batch_end`` calls (data fetching and collate included); the plain loop's is timed the same way.
Target: rszoo's overhead <= 10% (ratio <= 1.10).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, __file__.rsplit("/", 2)[0])
from _common import save_result

STEPS, WARMUP, BATCH = 30, 5, 4


def make_data(root: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (448, 448, 3), dtype=np.uint8)).save(root / f"{i}.png")
        answer = f'<think>The target is in the top left.</think><answer>{{"bbox_2d": [{i}, 20, {i + 80}, 90]}}</answer>'
        rows.append(
            {
                "id": str(i),
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image", "image": f"{i}.png"},
                            {"type": "text", "text": "Where is the ship?"},
                        ],
                    },
                    {"role": "assistant", "content": answer},
                ],
            }
        )
    path = root / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def rszoo_step_times(data: Path, state: dict) -> list[float]:
    import lightning as L

    import rszoo
    from rszoo.training.data import TaskDataModule, load_messages_jsonl

    task = rszoo.RSGroundR1(model="rsground_r1-tiny", stage="cot_sft", optimizer={"lr": 1e-4})
    task.configure_model()
    task.network.load_state_dict(state)
    times: list[float] = []

    class Timer(L.Callback):
        last = None

        def on_train_batch_end(self, *args):
            now = time.perf_counter()
            if self.last is not None:
                times.append(now - self.last)
            self.last = now

    trainer = L.Trainer(
        accelerator="cpu", max_steps=STEPS + WARMUP, gradient_clip_val=1.0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[Timer()], use_distributed_sampler=False,
    )  # fmt: skip
    dm = TaskDataModule(load_messages_jsonl(data), batch_size=BATCH, shuffle=False)
    trainer.fit(task, datamodule=dm)
    return times[WARMUP - 1 :]


def plain_step_times(data: Path, state: dict) -> list[float]:
    import rszoo
    from rszoo.training.data import load_messages_jsonl

    net = rszoo.create_model("rsground_r1-tiny")
    net.load_state_dict(state)
    model, proc = net.backbone.hf_model, net.processor
    tok = proc.tokenizer
    im_start, im_end = tok.convert_tokens_to_ids("<|im_start|>"), tok.convert_tokens_to_ids("<|im_end|>")
    header = tok.encode("assistant\n", add_special_tokens=False)
    rows = load_messages_jsonl(data)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    times, last = [], None
    for step in range(STEPS + WARMUP):
        chunk = [rows[(step * BATCH + j) % len(rows)] for j in range(BATCH)]
        texts = [proc.apply_chat_template(r["messages"], tokenize=False) for r in chunk]
        images = [Image.open(r["messages"][0]["content"][0]["image"]).convert("RGB") for r in chunk]
        tok.padding_side = "right"
        batch = proc(text=texts, images=images, padding=True, return_tensors="pt")
        labels = torch.full_like(batch["input_ids"], -100)
        for b, ids in enumerate(batch["input_ids"].tolist()):  # assistant spans, written out by hand
            for s in [i for i, t in enumerate(ids) if t == im_start]:
                if ids[s + 1 : s + 1 + len(header)] == header:
                    end = ids.index(im_end, s + 1 + len(header))
                    labels[b, s + 1 + len(header) : end + 1] = batch["input_ids"][
                        b, s + 1 + len(header) : end + 1
                    ]
        loss = model(**batch, labels=labels, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        now = time.perf_counter()
        if last is not None and step >= WARMUP:
            times.append(now - last)
        last = now
    return times


def main() -> None:
    import rszoo

    torch.manual_seed(0)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    state = rszoo.create_model("rsground_r1-tiny").state_dict()
    with tempfile.TemporaryDirectory() as tmp:
        data = make_data(Path(tmp), 32)
        plain = plain_step_times(data, state)
        ours = rszoo_step_times(data, state)
        plain2 = plain_step_times(data, state)  # again, to see the machine's drift
    plain_all = plain + plain2
    med_ours, med_plain = statistics.median(ours), statistics.median(plain_all)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.plot(ours, label=f"rszoo (Lightning + SFT stage), median {med_ours * 1e3:.0f} ms")
    ax.plot(plain_all, label=f"plain transformers loop, median {med_plain * 1e3:.0f} ms", alpha=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("seconds per step")
    ax.set_title(
        f"tiny Qwen2.5-VL SFT step, batch {BATCH} x 256 visual tokens: ratio {med_ours / med_plain:.3f}"
    )
    ax.legend()
    save_result(
        "sft_step_overhead",
        {
            "batch_size": BATCH,
            "visual_tokens_per_sample": 256,
            "steps_timed": {"rszoo": len(ours), "plain": len(plain_all)},
            "median_step_s": {"rszoo": med_ours, "plain_transformers": med_plain},
            "ratio_rszoo_over_plain": med_ours / med_plain,
            "target_ratio_max": 1.10,
        },
        fig,
    )


if __name__ == "__main__":
    main()
