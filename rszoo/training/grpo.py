"""GRPO: group relative policy optimisation as a reusable training stage.

For every prompt the stage samples G completions (:mod:`rszoo.training.rollout`: the prompt and its images are encoded
once per group), scores them with reward modules from ``rszoo.registry.REWARDS`` (weighted sum), normalises rewards
into advantages within each group, and minimises the clipped surrogate with an optional KL penalty to a frozen
reference model. Definitions follow trl 1.x (a test checks loss and gradients against ``GRPOTrainer`` for every loss
type; trl 1.16's default ``use_bias_correction_kl=True`` is the option of the same name here, off by default):

* advantages ``A = r - mean_group(r)``, divided by ``std_group(r) + 1e-4`` (``scale_rewards="group"``, unbiased std),
  by the batch std (``"batch"``) or not at all (``"none"``);
* ratio ``rho = exp(logp - logp_old)`` (``logp_old = logp.detach()`` when ``num_iterations == 1``), per-token loss
  ``-min(rho A, clip(rho, 1 - eps_low, 1 + eps_high) A) + beta * KL`` with the k3 estimator
  ``KL = exp(ref - logp) - (ref - logp) - 1``;
* aggregation ``grpo`` (mean over sequences of the per-sequence token mean), ``bnpo`` (token mean over the batch),
  ``dr_grpo`` (token sum / (sequences x max_completion_length)) and ``dapo`` (token sum / active tokens of the batch).

RSGround-R1's spatial-consistency weighting is a group weight: ``w = clip(exp(lambda_m (1 - mean IoU) + lambda_v Var
IoU), w_min, w_max)`` per group, multiplying that group's per-token policy loss (``scope="policy"``, as in the paper's
Eq. 9 reading and UniVG-R1) or policy + KL (``scope="total"``).

With ``num_iterations > 1`` each batch of rollouts is reused for that many optimizer steps (the data order repeats each
batch, as trl's sampler does), with the log-probs of the policy that sampled them stored as ``logp_old``.

Gradient accumulation: Lightning divides each micro-batch loss by the number of accumulated batches, as trl does for
``grpo``/``bnpo``/``dr_grpo``. For ``dapo``, trl normalises by the active tokens of the whole accumulated generation
batch; here rollouts are generated per micro-batch, so ``dapo`` normalises by the micro-batch's active tokens (identical
when ``accumulate_grad_batches == 1``).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import torch

from rszoo.training.rollout import SamplingConfig, completion_logps, sample_group
from rszoo.training.task import Stage

__all__ = ["GRPOConfig", "GRPOStage", "aggregate_loss", "group_advantages", "per_token_grpo_loss"]

LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")


@dataclasses.dataclass
class GRPOConfig:
    """Options of the GRPO stage (names follow trl's GRPOConfig where they overlap).

    Attributes:
        num_generations: G, completions per prompt.
        rewards: reward modules: ``[{"name": "iou", "weight": 1.0, ...options}]`` from ``rszoo.registry.REWARDS``.
        scale_rewards: ``group``, ``batch`` or ``none``.
        loss_type: ``grpo``, ``bnpo``, ``dr_grpo`` or ``dapo``.
        epsilon / epsilon_high: lower / upper clipping range (``epsilon_high`` defaults to ``epsilon``).
        beta: KL coefficient (VLM-R1's default 0.04; trl's 0.0). With 0 no reference model is built.
        num_iterations: optimizer steps per batch of rollouts (mu in the GRPO paper).
        temperature, top_k, top_p, max_completion_length: rollout sampling (override the checkpoint's settings).
        mask_truncated_completions: drop completions without an end-of-sequence token from the loss.
        group_weight: optional per-group loss weight, e.g. ``{"name": "spatial_consistency", "reward": "iou",
            "lambda_m": 1.2, "lambda_v": 1.0, "w_min": 0.5, "w_max": 3.0, "ddof": 0, "scope": "policy"}``.
        use_bias_correction_kl: multiply the k3 KL by the ratio (trl 1.x's default). Off by default: the classic k3
            penalty of the GRPO paper and VLM-R1.
    """

    num_generations: int = 8
    rewards: list[dict[str, Any]] = dataclasses.field(
        default_factory=lambda: [{"name": "format"}, {"name": "iou"}]
    )
    scale_rewards: str = "group"
    loss_type: str = "grpo"
    epsilon: float = 0.2
    epsilon_high: float | None = None
    beta: float = 0.04
    num_iterations: int = 1
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    max_completion_length: int = 256
    mask_truncated_completions: bool = False
    group_weight: dict[str, Any] | None = None
    use_bias_correction_kl: bool = False

    def validate(self) -> None:
        if self.num_generations < 2:
            raise ValueError(
                f"num_generations must be >= 2 (advantages compare rollouts), got {self.num_generations}"
            )
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {self.loss_type!r}")
        if self.scale_rewards not in ("group", "batch", "none"):
            raise ValueError(f"scale_rewards must be group, batch or none, got {self.scale_rewards!r}")
        if self.num_iterations < 1 or self.beta < 0 or self.epsilon < 0:
            raise ValueError("num_iterations must be >= 1, beta >= 0 and epsilon >= 0")
        if not self.rewards:
            raise ValueError("rewards: at least one reward module is needed")
        for spec in self.rewards:
            if "name" not in spec:
                raise ValueError(f"each reward needs a 'name' (a rszoo.registry.REWARDS key), got {spec!r}")
        if self.group_weight is not None:
            allowed = {"name", "reward", "lambda_m", "lambda_v", "w_min", "w_max", "ddof", "scope"}
            unknown = set(self.group_weight) - allowed
            if unknown or self.group_weight.get("name") != "spatial_consistency":
                raise ValueError(
                    f"group_weight: name must be 'spatial_consistency' and keys within {sorted(allowed)}, got {self.group_weight}"
                )
            if self.group_weight.get("scope", "policy") not in ("policy", "total"):
                raise ValueError("group_weight.scope must be 'policy' or 'total'")
        self.sampling.validate()

    @property
    def sampling(self) -> SamplingConfig:
        return SamplingConfig(self.temperature, self.top_k, self.top_p, self.max_completion_length)

    @property
    def epsilon_low(self) -> float:
        return self.epsilon

    @property
    def epsilon_upper(self) -> float:
        return self.epsilon if self.epsilon_high is None else self.epsilon_high


# -- the math (pure functions, tested against trl) -------------------------------------------------------------------
def _nanstd(x: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Unbiased std ignoring NaN (trl's ``nanstd``)."""
    if dim is None:
        x, dim = x.reshape(1, -1), 1
        return _nanstd(x, dim)[0]
    mean = torch.nanmean(x, dim=dim, keepdim=True)
    count = (~x.isnan()).sum(dim=dim)
    return torch.sqrt(torch.nansum((x - mean) ** 2, dim=dim) / (count - 1).clamp(min=1))


def group_advantages(
    rewards: torch.Tensor, group_size: int, scale: str = "group"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages for rewards laid out group by group; returns ``(advantages, per-row std used for scaling)``.

    A NaN reward (a completion every reward function declined to score) is left out of its group's mean and std and
    gets advantage 0, as in trl.
    """
    grouped = rewards.view(-1, group_size)
    mean = torch.nanmean(grouped, dim=1).repeat_interleave(group_size)
    std = _nanstd(grouped, dim=1).repeat_interleave(group_size)  # unbiased, as trl's nanstd
    advantages = rewards - mean
    if scale == "group":
        advantages = advantages / (std + 1e-4)
    elif scale == "batch":
        std = _nanstd(rewards).expand_as(rewards)
        advantages = advantages / (std + 1e-4)
    elif scale != "none":
        raise ValueError(f"scale must be group, batch or none, got {scale!r}")
    return torch.nan_to_num(advantages, nan=0.0), std


def per_token_grpo_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    epsilon_low: float,
    epsilon_high: float,
    beta: float = 0.0,
    ref_logps: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
    weight_scope: str = "policy",
    bias_correction_kl: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The per-token loss ``(B, T)`` and its parts (ratio, clipped flags, KL) for one batch of completions.

    ``weight`` (B,) multiplies each row's policy term (``weight_scope="policy"``) or its whole loss (``"total"``).
    """
    ratio = torch.exp(logps - old_logps)
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    adv = advantages.unsqueeze(1)
    loss = -torch.min(ratio * adv, clipped * adv)
    if weight is not None and weight_scope == "policy":
        loss = loss * weight.unsqueeze(1)
    kl = None
    if beta != 0.0:
        if ref_logps is None:
            raise ValueError("beta > 0 needs the reference log-probs")
        diff = ref_logps - logps
        kl = torch.exp(diff) - diff - 1
        if (
            bias_correction_kl
        ):  # trl 1.x's default: importance-weight the KL term by the (differentiable) ratio
            kl = kl * ratio
        loss = loss + beta * kl
    if weight is not None and weight_scope == "total":
        loss = loss * weight.unsqueeze(1)
    parts = {
        "low_clipped": (ratio < 1 - epsilon_low) & (adv < 0),
        "high_clipped": (ratio > 1 + epsilon_high) & (adv > 0),
        "kl": kl if kl is not None else torch.zeros_like(loss),
    }
    return loss, parts


def aggregate_loss(
    per_token_loss: torch.Tensor,
    mask: torch.Tensor,
    loss_type: str,
    max_completion_length: int,
    num_items: float | None = None,
) -> torch.Tensor:
    """Reduce a ``(B, T)`` per-token loss with its mask as trl's ``loss_type`` does (one process, no accumulation)."""
    mask = mask.to(per_token_loss.dtype)
    if loss_type == "grpo":
        return ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if loss_type == "bnpo":
        return (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)
    if loss_type == "dr_grpo":
        return (per_token_loss * mask).sum() / (per_token_loss.size(0) * max_completion_length)
    if loss_type == "dapo":
        denominator = (
            mask.sum() if num_items is None else torch.as_tensor(num_items, dtype=per_token_loss.dtype)
        )
        return (per_token_loss * mask).sum() / denominator.clamp(min=1.0)
    raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")


def _pad_right(rows: list[torch.Tensor], value: float = 0) -> torch.Tensor:
    width = max(r.shape[1] for r in rows)
    return torch.cat([torch.nn.functional.pad(r, (0, width - r.shape[1]), value=value) for r in rows], dim=0)


# -- the stage ------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Group:
    """One prompt's rollouts and everything the loss needs, kept for ``num_iterations`` steps."""

    sample_id: str
    inputs: dict[str, torch.Tensor]
    completion_ids: torch.Tensor
    mask: torch.Tensor
    advantages: torch.Tensor
    weight: torch.Tensor | None
    old_logps: torch.Tensor | None
    ref_logps: torch.Tensor | None


class GRPOStage(Stage):
    """GRPO over prompt rows ``{"id", "prompt": messages, "reward_kwargs": {...}}`` (see the class docstring above)."""

    Config = GRPOConfig

    @property
    def repeat_batches(self) -> int:
        return self.config.num_iterations

    def extra_modules(self) -> list[Any]:
        return [self.reference.hf_model] if self.reference is not None else []

    def setup(self) -> None:
        from rszoo.registry import REWARDS

        cfg = self.config
        network = self.task.network
        self.reward_fns = [
            REWARDS.build(spec["name"], **{k: v for k, v in spec.items() if k != "name"})
            for spec in cfg.rewards
        ]
        self.reward_names = [spec["name"] for spec in cfg.rewards]
        if len(set(self.reward_names)) != len(self.reward_names):
            raise ValueError(f"stage_args.rewards: each reward may appear once, got {self.reward_names}")
        self.reward_weights = torch.tensor([float(getattr(fn, "weight", 1.0)) for fn in self.reward_fns])
        if cfg.group_weight is not None and cfg.group_weight.get("reward", "iou") not in self.reward_names:
            raise ValueError(
                f"group_weight.reward {cfg.group_weight.get('reward', 'iou')!r} must be one of the rewards {self.reward_names}"
            )
        tok = network.processor.tokenizer
        self.eos_ids = [network.eos_token_id]
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else network.eos_token_id
        self.reference = None
        if cfg.beta > 0:
            self.reference = copy.deepcopy(network.backbone).eval().requires_grad_(False)
        self._buffer: list[_Group] | None = None
        self._buffer_stats: dict[str, float] = {}
        self._buffer_key: tuple[str, ...] | None = None
        self._buffer_uses = 0

    # -- data ---------------------------------------------------------------------------------------------------------
    def collate(self, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Encode each prompt on its own (groups are processed prompt by prompt)."""
        from rszoo.models.vlm.model import load_message_images

        network = self.task.network
        patch = network.processor.image_processor.patch_size
        out = []
        for sample in samples:
            images = load_message_images(sample["prompt"])
            inputs = dict(network.encode([sample["prompt"]], [images], add_generation_prompt=True))
            kwargs = dict(sample.get("reward_kwargs", {}))
            if images and "image_grid_thw" in inputs:
                _, gh, gw = (int(v) for v in inputs["image_grid_thw"][0])
                kwargs.setdefault("input_size", (gw * patch, gh * patch))
                kwargs.setdefault("image_size", images[0].size)
            out.append({"id": sample["id"], "inputs": inputs, "reward_kwargs": kwargs})
        return out

    # -- rollouts -----------------------------------------------------------------------------------------------------
    def _score(self, completions: list[str], kwargs: dict[str, Any], sample_id: str) -> torch.Tensor:
        """``(G, n_rewards)`` raw rewards; None -> NaN (ignored in the weighted sum, as trl does)."""
        group = len(completions)
        columns = {k: [v] * group for k, v in kwargs.items()}
        table = torch.empty(group, len(self.reward_fns))
        for j, fn in enumerate(self.reward_fns):
            values = fn(prompts=None, completions=completions, **columns)
            if len(values) != group:
                raise RuntimeError(
                    f"reward {self.reward_names[j]!r} returned {len(values)} values for {group} completions"
                )
            table[:, j] = torch.tensor([math.nan if v is None else float(v) for v in values])
        return table

    @torch.no_grad()
    def _make_groups(self, batch: list[dict[str, Any]]) -> tuple[list[_Group], dict[str, float]]:
        cfg = self.config
        network = self.task.network
        if (
            self.reference is not None and not self.task.is_sharded
        ):  # Lightning moves only the task's own modules
            device = next(network.parameters()).device
            if next(self.reference.parameters()).device != device:
                self.reference.to(device)
        tokenizer = network.processor.tokenizer
        G = cfg.num_generations
        rollouts, tables = [], []
        for item in batch:
            ids, mask, truncated = sample_group(
                network.backbone, item["inputs"], G, cfg.sampling, self.eos_ids, self.pad_id
            )
            if cfg.mask_truncated_completions:
                mask = mask * (~truncated).long().unsqueeze(1)
            texts = tokenizer.batch_decode(ids * mask + self.pad_id * (1 - mask), skip_special_tokens=True)
            tables.append(self._score(texts, item["reward_kwargs"], item["id"]))
            rollouts.append((item, ids, mask, truncated))
        table = torch.cat(tables)  # (P*G, n_rewards)
        rewards = (table * self.reward_weights).nansum(1)
        rewards[table.isnan().all(1)] = (
            torch.nan
        )  # unscorable completions: out of the baseline, advantage 0 (trl)
        advantages, std = group_advantages(rewards, G, cfg.scale_rewards)
        weights = self._group_weights(table) if cfg.group_weight else None
        groups = []
        for p, (item, ids, mask, _) in enumerate(rollouts):
            rows = slice(p * G, (p + 1) * G)
            old = (
                completion_logps(network.backbone, item["inputs"], ids, cfg.temperature)
                if cfg.num_iterations > 1
                else None
            )
            ref = (
                completion_logps(self.reference, item["inputs"], ids, cfg.temperature)
                if self.reference is not None
                else None
            )
            groups.append(
                _Group(
                    item["id"],
                    item["inputs"],
                    ids,
                    mask,
                    advantages[rows],
                    None if weights is None else weights[rows],
                    old,
                    ref,
                )
            )
        stats = self._rollout_stats(
            table, rewards, std, weights, [r[2] for r in rollouts], [r[3] for r in rollouts]
        )
        return groups, stats

    def _group_weights(self, table: torch.Tensor) -> torch.Tensor:
        from rszoo.rewards.functional import spatial_consistency_weight

        spec = dict(self.config.group_weight)
        column = self.reward_names.index(spec.get("reward", "iou"))
        ious = torch.nan_to_num(table[:, column], nan=0.0).view(-1, self.config.num_generations)
        w = spatial_consistency_weight(
            ious.numpy(),
            lambda_m=float(spec.get("lambda_m", 1.2)),
            lambda_v=float(spec.get("lambda_v", 1.0)),
            w_min=float(spec.get("w_min", 0.5)),
            w_max=float(spec.get("w_max", 3.0)),
            ddof=int(spec.get("ddof", 0)),
        )
        return (
            torch.as_tensor(w, dtype=torch.float32).reshape(-1).repeat_interleave(self.config.num_generations)
        )

    def _rollout_stats(self, table, rewards, std, weights, masks, truncated) -> dict[str, float]:
        G = self.config.num_generations
        stats: dict[str, float] = {}
        for j, name in enumerate(self.reward_names):
            col = table[:, j]
            stats[f"rewards/{name}/mean"] = float(torch.nanmean(col))
            stats[f"rewards/{name}/std"] = float(col[~col.isnan()].std()) if (~col.isnan()).sum() > 1 else 0.0
        group_std = rewards.view(-1, G).std(1)
        stats["reward"] = float(rewards.mean())
        stats["reward_std"] = float(group_std.mean())  # std across rollouts of a prompt (RSGround-R1 Fig. 5)
        stats["frac_reward_zero_std"] = float(
            torch.isclose(group_std, torch.zeros_like(group_std)).float().mean()
        )
        lengths = torch.cat([m.sum(1) for m in masks]).float()
        stats["completion_length/mean"] = float(lengths.mean())
        stats["completion_length/min"] = float(lengths.min())
        stats["completion_length/max"] = float(lengths.max())
        stats["completion_length/truncated_frac"] = float(torch.cat(truncated).float().mean())
        if weights is not None:
            per_group = weights.view(-1, G)[:, 0]
            stats["sc_weight/mean"] = float(per_group.mean())
            stats["sc_weight/min"] = float(per_group.min())
            stats["sc_weight/max"] = float(per_group.max())
        for fn, name in zip(self.reward_fns, self.reward_names):
            if hasattr(fn, "stats"):
                for key, value in fn.stats().items():
                    if isinstance(value, int | float):
                        stats[f"rewards/{name}/{key}"] = float(value)
                fn.reset_stats()
        return stats

    # -- the step -----------------------------------------------------------------------------------------------------
    def training_step(self, batch: list[dict[str, Any]], batch_idx: int) -> torch.Tensor:
        cfg = self.config
        key = tuple(item["id"] for item in batch)
        self._restore_pending(batch)
        if self._buffer is None or self._buffer_key != key or self._buffer_uses >= cfg.num_iterations:
            self._buffer, self._buffer_stats = self._make_groups(batch)
            self._buffer_key, self._buffer_uses = key, 0
        self._buffer_uses += 1
        stats = dict(
            self._buffer_stats
        )  # the rollouts this step trains on (the same for num_iterations steps)
        backbone = self.task.network.backbone
        losses, masks, kls, low, high = [], [], [], [], []
        for group in self._buffer:
            logps = completion_logps(backbone, group.inputs, group.completion_ids, cfg.temperature)
            old = group.old_logps if group.old_logps is not None else logps.detach()
            loss, parts = per_token_grpo_loss(
                logps,
                old,
                group.advantages,
                cfg.epsilon_low,
                cfg.epsilon_upper,
                cfg.beta,
                group.ref_logps,
                group.weight,
                (cfg.group_weight or {}).get("scope", "policy"),
                cfg.use_bias_correction_kl,
            )
            losses.append(loss)
            masks.append(group.mask)
            kls.append(parts["kl"].detach())
            low.append(parts["low_clipped"])
            high.append(parts["high_clipped"])
        mask = _pad_right(masks)
        per_token = _pad_right(losses)
        total = aggregate_loss(per_token, mask, cfg.loss_type, cfg.max_completion_length)
        m = mask.bool()
        n_active = m.sum().clamp(min=1)
        stats["kl"] = float((_pad_right(kls) * m).sum() / n_active)
        stats["clip_ratio/low_mean"] = float((_pad_right(low) & m).sum() / n_active)
        stats["clip_ratio/high_mean"] = float((_pad_right(high) & m).sum() / n_active)
        stats["clip_ratio/region_mean"] = stats["clip_ratio/low_mean"] + stats["clip_ratio/high_mean"]
        bs = len(batch)
        self.task.log("train/loss", total, prog_bar=True, batch_size=bs)
        for name, value in stats.items():
            self.task.log(f"train/{name}", value, batch_size=bs, prog_bar=name == "reward")
        return total

    # -- resumption ---------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Rollouts still to be reused (``num_iterations > 1``), so a resumed run continues exactly."""
        if self._buffer is None or self._buffer_uses >= self.config.num_iterations:
            return {}
        return {
            "key": list(self._buffer_key or ()),
            "uses": self._buffer_uses,
            "stats": dict(self._buffer_stats),
            "groups": [
                {k: v for k, v in dataclasses.asdict(g).items() if k != "inputs"} for g in self._buffer
            ],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore saved rollouts; their prompt tensors are re-encoded from the (identical) next batch."""
        self._pending_state = state or None

    def _restore_pending(self, batch: list[dict[str, Any]]) -> None:
        state, self._pending_state = getattr(self, "_pending_state", None), None
        if not state or tuple(state["key"]) != tuple(item["id"] for item in batch):
            return
        by_id = {item["id"]: item["inputs"] for item in batch}
        self._buffer = [_Group(inputs=by_id[g["sample_id"]], **g) for g in state["groups"]]
        self._buffer_key, self._buffer_uses = tuple(state["key"]), int(state["uses"])
        self._buffer_stats = dict(state.get("stats", {}))
