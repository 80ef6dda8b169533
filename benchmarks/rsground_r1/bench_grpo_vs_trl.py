"""GRPO optimizer-step time: rszoo's GRPO stage vs trl's ``GRPOTrainer``, same tiny Qwen2.5-VL, same work.

Both sides train the identical tiny ``rsground_r1-tiny`` network (same initial weights, float32, sdpa attention) on
the same image-heavy grounding prompts, in one process, and time whole optimizer steps:

* rszoo: ``rszoo.RSGroundR1(model="rsground_r1-tiny", stage="grpo", stage_args=...)`` driven by a Lightning
  ``Trainer`` (``fit`` with ``max_steps``); a Lightning callback marks each ``on_train_batch_end``;
* trl: ``GRPOTrainer.train()`` with ``max_steps``; a ``TrainerCallback`` marks each ``on_step_end``.

A step's time runs from the previous step's end to its own end, so it holds everything each framework does per
optimizer step: fetching and encoding the batch (rszoo's collate runs before ``on_train_batch_start``, trl tokenises
inside its step), the G rollouts per prompt, reward scoring, reference and policy log-probs, backward, gradient clipping
and the AdamW step, plus loop and logging overhead.

Matched settings: P prompts per step and G rollouts per prompt (trl: ``per_device_train_batch_size = P * G``,
``num_generations = G``), ``max_completion_length``, sampling (temperature 1, top_k 0, top_p 1), ``loss_type="grpo"``,
``beta=0.04`` with a reference model on both sides, the classic k3 KL (trl: ``use_bias_correction_kl=False``, which is
what the stage computes), rewards format + IoU + 0.1 R_pos from ``rszoo.registry.REWARDS``, lr 1e-6, gradient clipping
at 1.0, no gradient checkpointing and float32 on both (trl's defaults ``bf16=True`` and ``gradient_checkpointing=True``
are turned off). The first ``--warmup`` steps of each run are discarded. The tiny model almost never emits EOS, so every
rollout runs to ``max_completion_length`` on both sides (the mean completion lengths are recorded).

Where the time goes is measured by wrapping, for timing only, the functions each side calls per phase (rszoo:
``GRPOStage.collate``, ``sample_group``, ``completion_logps``, ``GRPOStage._score``, Lightning's backward hooks;
trl: ``_tokenize_prompts``, ``_generate``,
``_get_per_token_logps_and_entropies``, ``_calculate_rewards``, ``accelerator.backward``).

Each step's process CPU time is recorded next to its wall time: on a machine shared with other jobs the wall times
(and their ratio) drift with the load, the CPU times much less. Torch runs one intra-op thread on both sides by default
(``--threads``): several spinning OpenMP threads per process make timings on a busy 2-core machine meaningless.

Run: ``.venv/bin/python benchmarks/rsground_r1/bench_grpo_vs_trl.py`` (about 8 min on 2 cores; ``--quick`` for the
256-token, G=8 point only) -> ``benchmarks/results/grpo_vs_trl.json`` + ``.png``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import save_result

MODEL = "rsground_r1-tiny"
REWARD_SPECS = [{"name": "format"}, {"name": "iou"}, {"name": "positional", "weight": 0.1}]
BETA = 0.04
LR = 1e-6
PHASES = ("data", "generate", "rewards", "ref_logps", "policy_forward", "backward")


# -- data -------------------------------------------------------------------------------------------------------------
def make_samples(count: int, side: int, seed: int = 0) -> list[dict[str, Any]]:
    """Square synthetic scenes (``side`` px, a multiple of 28 so no resize) with a box and an expression each."""
    from PIL import Image

    rng = np.random.RandomState(seed)
    samples = []
    for i in range(count):
        pixels = (rng.rand(side, side, 3) * 255).astype(np.uint8)
        x1, y1 = (int(v) for v in rng.randint(0, side // 2, size=2))
        w, h = (int(v) for v in rng.randint(side // 8, side // 2, size=2))
        samples.append(
            {
                "id": f"s{i}",
                "image": Image.fromarray(pixels),
                "expression": f"the storage tank number {i} near the road",
                "box": [x1, y1, x1 + w, y1 + h],
            }
        )
    return samples


def model_overrides(side: int) -> dict[str, int]:
    """Pixel budget admitting a ``side`` x ``side`` image unresized (the tiny preset caps at 448 x 448)."""
    return {"min_pixels": 56 * 56, "max_pixels": max(448 * 448, side * side)}


# -- phase timing (measurement only: wraps functions, never changes what they compute) ------------------------------
class PhaseClock:
    """Wall time per optimizer step (between consecutive step ends) and per phase within it.

    Phases nest: time spent in an inner wrapped call counts for the inner phase only (trl's prompt tokenisation runs
    inside its ``_generate``).
    """

    def __init__(self) -> None:
        self.current: dict[str, float] = defaultdict(float)
        self.steps: list[dict[str, float]] = []
        self.step_times: list[float] = []
        self.step_cpu_times: list[float] = []
        self._last_cpu: float | None = None
        self._children: list[float] = []
        self._last_end: float | None = None

    def wrap(self, fn: Any, phase: str | None = None) -> Any:
        """``fn`` timed as ``phase`` (default: ``policy_forward`` with grad enabled, else ``ref_logps``)."""

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            name = phase or ("policy_forward" if torch.is_grad_enabled() else "ref_logps")
            self._children.append(0.0)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                self.current[name] += elapsed - self._children.pop()
                if self._children:
                    self._children[-1] += elapsed

        return timed

    def add(self, phase: str, seconds: float) -> None:
        self.current[phase] += seconds

    def start(self) -> None:
        """Training starts: the first step is measured from here (it is a warm-up step and discarded)."""
        self._last_end = time.perf_counter()
        self._last_cpu = time.process_time()

    def end_step(self) -> None:
        """An optimizer step ended: its time runs from the previous step's end (data loading included)."""
        now = time.perf_counter()
        total = now - (self._last_end if self._last_end is not None else now)
        self._last_end = now
        cpu = time.process_time()
        self.step_cpu_times.append(cpu - (self._last_cpu if self._last_cpu is not None else cpu))
        self._last_cpu = cpu
        phases = {p: self.current.get(p, 0.0) for p in PHASES}
        phases["other"] = total - sum(phases.values())
        self.step_times.append(total)
        self.steps.append(phases)
        self.current = defaultdict(float)


@contextlib.contextmanager
def patched(owner: Any, name: str, replacement: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


def fingerprint(model: torch.nn.Module) -> float:
    """A checksum of the weights, to confirm both sides start from the same network."""
    return float(sum(p.detach().double().sum() for p in model.parameters()))


def summarise(clock: PhaseClock, warmup: int, lengths: list[float], weights: float) -> dict[str, Any]:
    kept = clock.step_times[warmup:]
    phases = clock.steps[warmup:]
    return {
        "step_times_s": clock.step_times,
        "median_step_s": statistics.median(kept),
        "step_cpu_times_s": clock.step_cpu_times,
        "median_step_cpu_s": statistics.median(clock.step_cpu_times[warmup:]),
        "phases_median_s": {p: statistics.median(s[p] for s in phases) for p in (*PHASES, "other")},
        "mean_completion_length": float(np.mean(lengths)) if lengths else None,
        "initial_weights_checksum": weights,
    }


# -- rszoo ------------------------------------------------------------------------------------------------------------
def run_rszoo(
    samples: list[dict[str, Any]], args: argparse.Namespace, side: int, group: int
) -> dict[str, Any]:
    import lightning as L

    import rszoo
    import rszoo.training.grpo as grpo
    from rszoo.models.rsground_r1.task import grounding_prompt_rows
    from rszoo.training.data import TaskDataModule

    torch.manual_seed(args.seed)
    task = rszoo.RSGroundR1(
        model=MODEL,
        model_overrides=model_overrides(side),
        stage="grpo",
        stage_args={
            "num_generations": group,
            "rewards": REWARD_SPECS,
            "loss_type": "grpo",
            "beta": BETA,
            "max_completion_length": args.max_completion_length,
        },
        optimizer={"lr": LR},
    )
    task.configure_model()
    weights = fingerprint(task.network)
    template = task.network.config.question_template
    rows = grounding_prompt_rows([_Record(s) for s in samples], template)
    clock = PhaseClock()
    lengths: list[float] = []

    class StepTimer(L.Callback):
        def on_train_start(self, trainer, pl_module):
            clock.start()

        def on_before_backward(self, trainer, pl_module, loss):
            self.backward_start = time.perf_counter()

        def on_after_backward(self, trainer, pl_module):
            clock.add("backward", time.perf_counter() - self.backward_start)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            clock.end_step()
            lengths.append(float(trainer.callback_metrics["train/completion_length/mean"]))

    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=args.warmup + args.steps,
        gradient_clip_val=1.0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        callbacks=[StepTimer()],
    )
    datamodule = TaskDataModule(rows, batch_size=args.prompts, seed=args.seed, shuffle=False)
    with (
        patched(grpo, "sample_group", clock.wrap(grpo.sample_group, "generate")),
        patched(grpo, "completion_logps", clock.wrap(grpo.completion_logps)),
        patched(grpo.GRPOStage, "_score", clock.wrap(grpo.GRPOStage._score, "rewards")),
        patched(grpo.GRPOStage, "collate", clock.wrap(grpo.GRPOStage.collate, "data")),
    ):
        trainer.fit(task, datamodule=datamodule)
    return summarise(clock, args.warmup, lengths, weights)


class _Record:
    """The fields of a GroundingRecord that ``grounding_prompt_rows`` reads."""

    def __init__(self, sample: dict[str, Any]) -> None:
        self.id, self.image, self.expression, self.box = (
            sample["id"],
            sample["image"],
            sample["expression"],
            sample["box"],
        )
        self.width, self.height = sample["image"].size


# -- trl --------------------------------------------------------------------------------------------------------------
def run_trl(
    samples: list[dict[str, Any]], args: argparse.Namespace, side: int, group: int, workdir: Path
) -> dict[str, Any]:
    import datasets
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    import rszoo
    from rszoo.registry import REWARDS

    torch.manual_seed(args.seed)
    network = rszoo.create_model(MODEL, **model_overrides(side))  # the same initial weights as the rszoo run
    model = network.backbone.hf_model
    weights = fingerprint(model)
    reference_dir = workdir / f"initial_{side}_{group}"
    model.save_pretrained(reference_dir)
    model.config._name_or_path = str(reference_dir)  # trl loads its reference model from here (beta > 0)
    template = network.config.question_template
    dataset = datasets.Dataset.from_list(
        [
            {
                "prompt": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image"},
                            {"type": "text", "text": template.format(Question=s["expression"])},
                        ],
                    }
                ],
                "image": s["image"],
                "box": s["box"],
                "image_size": list(s["image"].size),
            }
            for s in samples
        ]
    )
    rewards = [
        REWARDS.build(spec["name"], **{k: v for k, v in spec.items() if k != "name"}) for spec in REWARD_SPECS
    ]
    config = GRPOConfig(
        output_dir=str(workdir / f"trl_{side}_{group}"),
        report_to="none",
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        max_steps=args.warmup + args.steps,
        per_device_train_batch_size=args.prompts * group,
        num_generations=group,
        max_completion_length=args.max_completion_length,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        loss_type="grpo",
        beta=BETA,
        use_bias_correction_kl=False,
        learning_rate=LR,
        lr_scheduler_type="constant",
        max_grad_norm=1.0,
        reward_weights=[r.weight for r in rewards],
        logging_steps=1,
        save_strategy="no",
        seed=args.seed,
        disable_tqdm=True,
    )
    clock = PhaseClock()

    class StepTimer(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            clock.start()

        def on_step_end(self, args, state, control, **kwargs):
            clock.end_step()

    trainer = GRPOTrainer(
        model=model,
        reward_funcs=rewards,
        args=config,
        train_dataset=dataset,
        processing_class=network.processor,
        callbacks=[StepTimer()],
    )
    trainer.accelerator.backward = clock.wrap(trainer.accelerator.backward, "backward")
    with (
        patched(GRPOTrainer, "_generate", clock.wrap(GRPOTrainer._generate, "generate")),
        patched(
            GRPOTrainer,
            "_get_per_token_logps_and_entropies",
            clock.wrap(GRPOTrainer._get_per_token_logps_and_entropies),
        ),
        patched(GRPOTrainer, "_calculate_rewards", clock.wrap(GRPOTrainer._calculate_rewards, "rewards")),
        patched(GRPOTrainer, "_tokenize_prompts", clock.wrap(GRPOTrainer._tokenize_prompts, "data")),
    ):
        trainer.train()
    lengths = [
        e["completions/mean_length"] for e in trainer.state.log_history if "completions/mean_length" in e
    ]
    return summarise(clock, args.warmup, lengths, weights)


# -- main -------------------------------------------------------------------------------------------------------------
def visual_tokens(side: int) -> int:
    return (side // 28) ** 2


def plot(results: list[dict[str, Any]], main: dict[str, Any]) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.6))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.5, 1]})
    labels = [f"{r['visual_tokens']} tok\nG={r['num_generations']}" for r in results]
    x = np.arange(len(results))
    ours = [r["rszoo"]["median_step_s"] for r in results]
    theirs = [r["trl"]["median_step_s"] for r in results]
    ax1.bar(x - 0.2, ours, 0.4, label="rszoo GRPO stage (Lightning)")
    ax1.bar(x + 0.2, theirs, 0.4, label="trl GRPOTrainer")
    for xi, r in zip(x, results):
        top = max(r["rszoo"]["median_step_s"], r["trl"]["median_step_s"])
        ax1.annotate(f"x{r['speedup']:.2f}", (xi, top), ha="center", va="bottom", fontsize=9)
    ax1.set_xticks(x, labels)
    ax1.set_ylabel("median optimizer-step time (s)")
    ax1.set_title("GRPO step time, tiny Qwen2.5-VL, CPU (higher x = rszoo faster)")
    ax1.legend()
    phases = (*PHASES, "other")
    bottom = np.zeros(2)
    for phase in phases:
        values = np.array([main["rszoo"]["phases_median_s"][phase], main["trl"]["phases_median_s"][phase]])
        ax2.bar([0, 1], values, 0.6, bottom=bottom, label=phase)
        bottom += values
    ax2.set_xticks([0, 1], ["rszoo", "trl"])
    ax2.set_ylabel("seconds per step")
    ax2.set_title(f"where the time goes ({main['visual_tokens']} visual tokens, G={main['num_generations']})")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


def measure_point(args: argparse.Namespace, side: int, group: int, workdir: Path) -> dict[str, Any]:
    """Alternating trl / rszoo runs at one (image side, G); per side the lower of the per-round medians."""
    samples = make_samples(args.prompts * (args.warmup + args.steps), side, args.seed)
    runs: dict[str, list[dict[str, Any]]] = {"rszoo": [], "trl": []}
    for round_ in range(args.rounds):
        order = ("trl", "rszoo") if round_ % 2 == 0 else ("rszoo", "trl")
        for name in order:
            load = os.getloadavg()[0]
            run = (
                run_trl(samples, args, side, group, workdir)
                if name == "trl"
                else run_rszoo(samples, args, side, group)
            )
            run["load_avg_1min_before"] = load
            runs[name].append(run)
            steps = [round(t, 3) for t in run["step_times_s"]]
            print(
                f"threads={torch.get_num_threads()} G={group} {visual_tokens(side):4d} tokens  {name:5s} "
                f"round {round_}: median step {run['median_step_s']:.3f} s wall, {run['median_step_cpu_s']:.3f} s "
                f"CPU (wall steps {steps}, load {load:.1f})",
                flush=True,
            )
    checksums = {r["initial_weights_checksum"] for side_runs in runs.values() for r in side_runs}
    if len(checksums) != 1:
        raise SystemExit(f"the two sides did not start from the same weights: {checksums}")
    point: dict[str, Any] = {
        "image_side_px": side,
        "visual_tokens": visual_tokens(side),
        "num_generations": group,
        "torch_threads": torch.get_num_threads(),
    }
    for name, side_runs in runs.items():
        best = min(side_runs, key=lambda r: r["median_step_s"])
        point[name] = {
            **best,
            "median_step_s_per_round": [r["median_step_s"] for r in side_runs],
            "median_step_cpu_s_per_round": [r["median_step_cpu_s"] for r in side_runs],
            "best_median_step_cpu_s": min(r["median_step_cpu_s"] for r in side_runs),
        }
    point["speedup"] = point["trl"]["median_step_s"] / point["rszoo"]["median_step_s"]
    point["speedup_cpu"] = point["trl"]["best_median_step_cpu_s"] / point["rszoo"]["best_median_step_cpu_s"]
    print(f"  -> trl / rszoo = {point['speedup']:.2f}x wall, {point['speedup_cpu']:.2f}x CPU", flush=True)
    return point


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sides", default="224,448,672", help="image sides in px (64, 256, 576 visual tokens)"
    )
    parser.add_argument("--groups", default="8,4", help="G values")
    parser.add_argument("--prompts", type=int, default=2, help="prompts per optimizer step")
    parser.add_argument("--max-completion-length", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=1, help="untimed first steps per run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating trl / rszoo runs per point")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (both sides)")
    parser.add_argument(
        "--check-threads",
        type=int,
        default=0,
        help="also measure the main point with this many threads (0: skip; on a shared machine several threads per "
        "process spin-wait and the timings become meaningless)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="only 448 px (256 tokens), G=8, one round")
    args = parser.parse_args()
    if args.quick:
        args.sides, args.groups, args.rounds, args.check_threads = "448", "8", 1, 0
    import transformers

    transformers.logging.set_verbosity_error()
    sides = [int(s) for s in args.sides.split(",")]
    groups = [int(g) for g in args.groups.split(",")]
    main_side, main_group = (448, 8) if 448 in sides and 8 in groups else (sides[0], groups[0])
    results = []
    threads_check = None
    with tempfile.TemporaryDirectory(prefix="bench_grpo_") as tmp:
        torch.set_num_threads(args.threads)
        for group in groups:
            for side in sides:
                results.append(measure_point(args, side, group, Path(tmp)))
        if args.check_threads and args.check_threads != args.threads:
            torch.set_num_threads(args.check_threads)
            threads_check = measure_point(args, main_side, main_group, Path(tmp))
    main_point = next(
        r for r in results if r["image_side_px"] == main_side and r["num_generations"] == main_group
    )
    summary = {
        "visual_tokens": main_point["visual_tokens"],
        "num_generations": main_point["num_generations"],
        "speedup": main_point["speedup"],
        "speedup_cpu": main_point["speedup_cpu"],
        "target_speedup": 1.5,
    }
    if threads_check is not None:
        summary[f"speedup_with_{args.check_threads}_threads"] = threads_check["speedup"]
    save_result(
        "grpo_vs_trl",
        {
            "description": "median optimizer-step time, rszoo GRPO stage (Lightning) vs trl GRPOTrainer, identical "
            "tiny Qwen2.5-VL, same prompts/G/max_completion_length/beta/loss; speedup = trl / rszoo",
            "settings": {
                "model": MODEL,
                "prompts_per_step": args.prompts,
                "max_completion_length": args.max_completion_length,
                "beta": BETA,
                "loss_type": "grpo",
                "rewards": REWARD_SPECS,
                "timed_steps": args.steps,
                "warmup_steps": args.warmup,
                "rounds": args.rounds,
                "torch_threads": args.threads,
                "step_time": "from the previous optimizer step's end to this one's (data, rollouts, rewards, "
                "log-probs, backward, clipping, AdamW, loop overhead)",
                "statistic": "per point and side: the lower of the per-round medians (rounds alternate which side "
                "runs first); wall time and, as a check against other load on the machine, process CPU time",
            },
            "main_point": summary,
            "results": results,
            "threads_check": threads_check,
        },
        plot(results, main_point),
    )


if __name__ == "__main__":
    main()
