"""Per-GPU memory planner: will a recipe fit on these GPUs, before the job is queued?

:func:`plan_memory` builds the network on the meta device (nothing is allocated, even for 8B presets), walks its
parameters with their FSDP group (the ``fsdp_units()`` instance that owns each parameter, or the root), and adds up
per GPU: sharded parameters, gradients and optimizer states; the FSDP all-gather / reduce-scatter working buffers;
activations with and without activation checkpointing; the logits / loss buffers; and a fixed reserve. The total is
compared with the GPU memory and a verdict is given. ``rszoo plan`` (:mod:`rszoo.cli.plan`) runs it on a recipe.

Model states (exact)
====================
FSDP2 (``fully_shard``, as :func:`rszoo.training.sharding.shard_network` applies it) shards every parameter on dim 0
across the shard group of size S (S = world size for full sharding, GPUs per node for HSDP, 1 for DDP or a single
device). Read from torch's ``_fully_shard/_fsdp_param.py`` (``_init_sharded_param``) and ``_fsdp_common.py``
(``_chunk_with_empty``): the parameter is split with ``torch.chunk(param, S, dim=0)``, so with
``c = ceil(dim0 / S)`` rank r owns rows ``[r c, min((r + 1) c, dim0))`` -- possibly fewer than c, possibly none;
but every rank *allocates* ``c * prod(other dims)`` elements (``padded_sharded_param_size`` is the size of chunk 0,
"0th always padded"), and the rank-local tensor (``p.to_local()``) is a narrow view of that padded storage. So the
shards are uneven as views but padded as allocations. Hence:

* parameters: ``ceil(dim0 / S) * prod(rest)`` elements of the master dtype on every rank (rank-local views are uneven);
* gradients: the reduce-scatter output buffer of each FSDP group holds ``ceil(dim0 / S) * prod(rest)`` elements per
  parameter (``_fsdp_collectives.foreach_reduce`` sizes it from ``_get_dim0_padded_size``); the sharded gradients are
  views into it, cast to the master dtype. Frozen parameters get none;
* optimizer states: ``torch.optim.AdamW`` creates ``exp_avg`` / ``exp_avg_sq`` with ``zeros_like(param)``, i.e. the
  *uneven* rank-local size, in the master dtype, plus a 4-byte fp32 ``step`` per parameter tensor that torch keeps on
  the CPU unless the optimizer is fused or capturable (reported as host memory). Frozen parameters get none.

Rank 0 always owns a full chunk, so its numbers are the per-GPU maximum, which is what the table reports. bf16 mixed
precision (``MixedPrecisionPolicy(bf16, reduce fp32)``) keeps fp32 sharded master parameters, fp32 gradients and fp32
optimizer states (16 bytes per trainable parameter, divided by S); ``trainer.precision=bf16-true`` halves all three.
CPU offload moves sharded parameters, gradients and optimizer states to host memory. A GRPO reference model
(``beta > 0``) is a frozen deep copy sharded the same way: parameters only. DDP and a single device hold everything
unsharded; DDP adds gradient buckets (``gradient_as_bucket_view=False``, Lightning's default) of the gradient size.
FSDP1 (``fsdp1``) flattens each unit into one FlatParameter padded to a multiple of S: approximated as
``ceil(numel / S)`` per unit. ``tests/training/test_planner.py`` checks the FSDP2 numbers for equality, per rank,
against the tensors of a real 2-rank run (``tests/training/_fsdp_measure.py``: sizes chosen so that dim 0 does not
divide, frozen parts, fp32 and bf16 policies) and against a plain single-process AdamW step.

FSDP working buffers (estimate)
===============================
During forward and backward the root's parameters are all-gathered (unsharded, in bf16 under the bf16 policy) for
the whole pass (rszoo passes ``reshard_after_forward`` explicitly, so the root reshards after forward and gathers again
for backward; it is counted once); units are gathered one at a time with one prefetched, plus the flat all-gather
staging buffer of one unit: ``root + 3 x largest unit``. ``reshard_after_forward=False`` keeps every unit gathered
from forward to backward instead. In backward, a unit's unsharded gradients (gather dtype) and its reduce-scatter
input (reduce dtype, fp32 under bf16 mixed precision) exist together, and the root's unsharded gradients live through
the whole backward. All unsharded sizes are padded to a multiple of S along dim 0.

Activation model (estimate)
===========================
The per-tensor inventory below is what autograd saves in transformers 5.x's Qwen2.5-VL / Qwen3-VL modules (read from
the modelling code, then checked against ``torch.autograd.graph.saved_tensors_hooks`` on the tiny presets in bf16:
the SFT forward + loss within 0.5 % for Qwen2.5-VL and 1 % for Qwen3-VL, a padded micro-batch of 2 within 3 %, the
GRPO log-prob forward within 1.5 %; see ``tests/training/test_planner.py``). Those are CPU runs; on GPUs the kernels
differ (e.g. LayerNorm statistics are fp32), which the inventory follows where known.
Bytes per token (c = compute-dtype bytes, 2 for bf16; h hidden, I MLP width, d head dim, nq / nkv query / key-value
heads):

* attention is flash / SDPA style: q, k, v, the output and an fp32 log-sum-exp per head are saved, **no L^2 term**.
  GQA stays native (k, v at nkv heads) unless SDPA gets a mask (padding in a micro-batch > 1, or a KV-cache forward)
  and transformers repeats k, v to nq heads (``repeat_kv``); ``flash_attention_2`` never repeats. ``eager`` attention
  adds ``(4 + c) * nq * L_q * L_k`` per layer (the fp32 softmax and its bf16 copy);
* Qwen2 decoder layer (RMSNorm, GQA attention with rope, SwiGLU MLP):
  2 RMSNorms x ``(4 + 2c) h + 4`` (fp32 upcast, rsqrt, normalised bf16, scaled output)
  + ``c (nq d + 2 nkv d + nq d) + 4 nq`` (q, k, v, output, LSE) + ``4 c I`` (gate, SiLU, up, product);
  Qwen3 adds the q/k RMSNorms ``(4 + c) n d + 4 n`` for n = nq and nkv;
* vision block per patch: Qwen2.5-VL (RMSNorm, fused qkv, window attention, SwiGLU with bias) 2 x ``(4 + 2c) h + 4``
  + ``c (q + k + fused qkv output 3h + output + proj input) + 4 heads`` + ``4 c I``; Qwen3-VL (LayerNorm, GELU MLP)
  2 x ``(2c h + 8)`` + the same attention + ``2 c I``. ``flash_attention_2`` saves one output copy instead of two;
* outside the units: the patch-embedding input (``c * C * T * p^2`` per patch), vision rope cos/sin, the merger(s),
  token ids and masks, text rope cos/sin, the final norm;
* visual tokens come from ``smart_resize`` with the model's ``min_pixels`` / ``max_pixels`` (default: a square image
  at the full ``max_pixels`` budget, the worst case), ``patches = tokens * merge^2``;
* logits / loss: the loss upcasts the bf16 logits to fp32 (``B x L x vocab``, 152k for Qwen), log-softmax keeps its
  fp32 output for backward (4 bytes x vocab per token, for every micro-batch token), and the peak adds either the
  forward copies (c + 4 bytes) or the backward gradients (2 x 4 bytes) per token x vocab;
* activation checkpointing (composable, non-reentrant, on the same units) keeps each unit's input (``c h`` per token)
  and recomputes one unit at a time in backward: ``inputs + largest unit``. In GRPO the checkpoint also keeps the
  KV-cache object it was called with alive (k, v of G x (prompt + completion) tokens per layer);
* **fudge term, stated**: the backward of a unit needs the gradients of its activations next to them; we add the
  activations of the largest unit once more ("backward working set"), with or without checkpointing;
* GRPO: per prompt, the prompt forward (vision tower + prompt tokens) and the completion forward of G rollouts over
  the repeated KV cache (k, v at G x (prompt + completion) tokens), plus fp32 log-softmax of G x completion x vocab;
  every prompt of the micro-batch stays in the graph until backward. The rollout phase (no grad) holds the KV cache
  of G x (prompt + completion) tokens and the prompt logits; the peak is the larger of the phases;
* a fixed reserve (default 1 GiB) stands for the CUDA context, NCCL buffers and cuBLAS workspaces. Allocator
  fragmentation is not modelled: a total above 90 % of the GPU is reported as "tight".

Under DDP with ``bf16-mixed`` (autocast) the residual stream stays fp32, so the bf16 inventory is a lower estimate
there; the bf16 weight copies autocast keeps for backward are counted. Everything except the model states is an
estimate and is labelled so in the output.

Example:
    >>> from rszoo.training.planner import parse_memory, shard_rows
    >>> parse_memory("80GiB") == 80 * 2**30
    True
    >>> [shard_rows(5, 3, r) for r in range(3)]  # torch.chunk: rows 2, 2, 1
    [2, 2, 1]
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable
from typing import Any

__all__ = [
    "Architecture",
    "DTypes",
    "GiB",
    "MemoryPlan",
    "ModelStates",
    "NetworkSummary",
    "ParamRecord",
    "local_shard_numel",
    "model_states",
    "padded_shard_numel",
    "parse_memory",
    "plan_memory",
    "resolve_dtypes",
    "shard_rows",
    "summarize_network",
    "visual_tokens",
]

GiB = 2**30
STRATEGIES = ("auto", "ddp", "fsdp2", "fsdp1")
TRAINER_PRECISIONS = ("32-true", "32", "bf16-mixed", "bf16-true", "16-mixed", "16-true")
OPTIMIZERS = {"adamw": 2, "adam": 2, "sgd": 1}  # state tensors per parameter (SGD: the momentum buffer)
ROOT = ""  # the FSDP group name of parameters owned by the sharding root rather than by a unit
TIGHT = 0.9  # above this share of the GPU memory the verdict is "tight"

_UNITS = {
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}


def parse_memory(text: str) -> int:
    """Bytes in a memory size such as ``80GiB``, ``80GB`` (10^9), ``81920MiB`` or ``24 GiB``.

    Raises:
        ValueError: for a missing or unknown unit, or a non-positive size.

    Example:
        >>> parse_memory("81920MiB") == parse_memory("80GiB")
        True
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]+)\s*", str(text))
    if not match or match.group(2).upper() not in _UNITS:
        raise ValueError(
            f"memory size {text!r}: expected a number and a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), "
            "e.g. 80GiB or 81920MiB"
        )
    value = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if value <= 0:
        raise ValueError(f"memory size {text!r} must be positive")
    return int(value)


# -- sharding arithmetic (exact for FSDP2) ----------------------------------------------------------------------------
def shard_rows(dim0: int, shard_size: int, rank: int) -> int:
    """Rows of a dim-0 of ``dim0`` that ``torch.chunk(param, shard_size)`` gives to ``rank`` (FSDP2's split).

    Example:
        >>> [shard_rows(4, 3, r) for r in range(3)]  # chunk size 2: the last rank gets nothing
        [2, 2, 0]
    """
    if shard_size < 1 or not 0 <= rank < shard_size:
        raise ValueError(f"need shard_size >= 1 and 0 <= rank < shard_size, got {shard_size}, {rank}")
    chunk = math.ceil(dim0 / shard_size)
    return max(0, min(chunk, dim0 - rank * chunk))


def _dim0_rest(shape: tuple[int, ...]) -> tuple[int, int]:
    if not shape:  # a 0-d parameter is sharded as one row
        return 1, 1
    return shape[0], math.prod(shape[1:])


def local_shard_numel(shape: tuple[int, ...], shard_size: int, rank: int) -> int:
    """Elements of ``p.to_local()`` on ``rank`` for a parameter of ``shape`` sharded by FSDP2 (uneven, unpadded)."""
    dim0, rest = _dim0_rest(tuple(shape))
    return shard_rows(dim0, shard_size, rank) * rest


def padded_shard_numel(shape: tuple[int, ...], shard_size: int) -> int:
    """Elements every rank allocates for a parameter sharded by FSDP2: ``ceil(dim0 / S) * prod(other dims)``.

    Example:
        >>> padded_shard_numel((5, 3), 2)
        9
    """
    dim0, rest = _dim0_rest(tuple(shape))
    return math.ceil(dim0 / shard_size) * rest


def _padded_unsharded_numel(shape: tuple[int, ...], shard_size: int) -> int:
    return padded_shard_numel(shape, shard_size) * shard_size


# -- the network ------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ParamRecord:
    """One parameter: name, shape, FSDP group (owning unit's module path, ``""`` for the root), freezable part."""

    name: str
    shape: tuple[int, ...]
    group: str
    part: str
    requires_grad: bool = True

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclasses.dataclass(frozen=True)
class Architecture:
    """The sizes the activation model needs, read from a Qwen-VL ``hf_config``."""

    family: str
    vocab: int
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    qk_norm: bool
    vision_depth: int
    vision_hidden: int
    vision_intermediate: int
    vision_heads: int
    vision_mlp: str  # "swiglu" (Qwen2.5-VL) or "gelu" (Qwen3-VL)
    vision_norm: str  # "rms" or "layer"
    patch_size: int
    temporal_patch_size: int
    in_channels: int
    merge: int
    deepstack: int
    attn_implementation: str
    min_pixels: int
    max_pixels: int

    @classmethod
    def from_config(cls, config: Any) -> Architecture:
        """From a :class:`rszoo.models.vlm.config.VLMConfig` (its resolved ``hf_config``)."""
        hf = getattr(config, "hf_config", None)
        if not isinstance(hf, dict) or hf.get("model_type") not in ("qwen2_5_vl", "qwen3_vl"):
            raise ValueError(
                f"the activation model covers Qwen-VL networks (hf_config.model_type qwen2_5_vl or qwen3_vl); "
                f"got {type(config).__name__} with model_type {hf.get('model_type') if isinstance(hf, dict) else None!r}"
            )
        text, vision = hf["text_config"], hf["vision_config"]
        qwen3 = hf["model_type"] == "qwen3_vl"
        heads = int(text["num_attention_heads"])
        return cls(
            family=hf["model_type"],
            vocab=int(text["vocab_size"]),
            hidden=int(text["hidden_size"]),
            intermediate=int(text["intermediate_size"]),
            layers=int(text["num_hidden_layers"]),
            heads=heads,
            kv_heads=int(text.get("num_key_value_heads") or heads),
            head_dim=int(text.get("head_dim") or int(text["hidden_size"]) // heads),
            qk_norm=qwen3,
            vision_depth=int(vision["depth"]),
            vision_hidden=int(vision["hidden_size"]),
            vision_intermediate=int(vision["intermediate_size"]),
            vision_heads=int(vision["num_heads"]),
            vision_mlp="gelu" if qwen3 else "swiglu",
            vision_norm="layer" if qwen3 else "rms",
            patch_size=int(vision["patch_size"]),
            temporal_patch_size=int(vision.get("temporal_patch_size", 2)),
            in_channels=int(vision.get("in_channels", 3)),
            merge=int(vision.get("spatial_merge_size", 2)),
            deepstack=len(vision.get("deepstack_visual_indexes") or []) if qwen3 else 0,
            attn_implementation=str(getattr(config, "attn_implementation", "sdpa")),
            min_pixels=int(config.min_pixels),
            max_pixels=int(config.max_pixels),
        )


@dataclasses.dataclass(frozen=True)
class NetworkSummary:
    """A network reduced to what the planner needs: parameter records (with FSDP groups) and its architecture."""

    name: str
    records: tuple[ParamRecord, ...]
    buffer_bytes: int
    architecture: Architecture | None

    @property
    def num_parameters(self) -> int:
        return sum(r.numel for r in self.records)

    def groups(self) -> dict[str, list[ParamRecord]]:
        """Records per FSDP group (units by module path, the root under ``""``), in network order."""
        out: dict[str, list[ParamRecord]] = {}
        for record in self.records:
            out.setdefault(record.group, []).append(record)
        return out


def summarize_network(network_or_config: Any, **overrides: Any) -> NetworkSummary:
    """Walk a network's parameters with their FSDP group and freezable part.

    Args:
        network_or_config: a built network (anything with ``fsdp_units()``, ``sharding_root()``,
            ``freeze_groups()``), a :class:`rszoo.config.ModelConfig`, or a preset name; configs and names are built
            on the meta device (instant, nothing allocated).
        overrides: config field overrides for a preset name (e.g. ``max_pixels``).
    """
    import torch

    network = network_or_config
    if isinstance(network, NetworkSummary):
        return network
    if isinstance(network, str):
        import rszoo

        with torch.device("meta"):
            network = rszoo.create_model(network, **overrides)
    elif not isinstance(network, torch.nn.Module):
        with torch.device("meta"):
            network = network.network_class()(network)
    for method in ("fsdp_units", "sharding_root"):
        if not hasattr(network, method):
            raise ValueError(
                f"{type(network).__name__} has no {method}(); the planner needs rszoo's network contract"
            )
    root = network.sharding_root()
    unit_types = network.fsdp_units()
    units = [name for name, module in root.named_modules() if type(module) in unit_types]
    part_of: dict[int, str] = {}
    if hasattr(network, "freeze_groups"):
        for part, modules in network.freeze_groups().items():
            for module in modules:
                for p in module.parameters():
                    part_of.setdefault(id(p), part)
    root_ids = {id(p) for p in root.parameters()}
    records = []
    for name, param in root.named_parameters():  # tied weights appear once, as FSDP sees them
        owner = max((u for u in units if name.startswith(u + ".")), key=len, default=ROOT)
        records.append(
            ParamRecord(name, tuple(param.shape), owner, part_of.get(id(param), ""), param.requires_grad)
        )
    for name, param in network.named_parameters():  # outside the root: not managed by FSDP, replicated
        if id(param) not in root_ids:
            records.append(
                ParamRecord(
                    name, tuple(param.shape), "<unmanaged>", part_of.get(id(param), ""), param.requires_grad
                )
            )
    buffer_bytes = sum(b.numel() * b.element_size() for b in network.buffers())
    config = getattr(network, "config", None)
    try:
        architecture = Architecture.from_config(config) if config is not None else None
    except ValueError:
        architecture = None
    name = getattr(config, "name", "") or type(network).__name__
    return NetworkSummary(name, tuple(records), buffer_bytes, architecture)


def _trainable(records: Iterable[ParamRecord], freeze: dict[str, bool] | None) -> dict[str, bool]:
    frozen = {part for part, on in (freeze or {}).items() if on}
    return {r.name: r.requires_grad and r.part not in frozen for r in records}


def _check_freeze(summary: NetworkSummary, freeze: dict[str, bool] | None) -> dict[str, bool]:
    parts = {r.part for r in summary.records if r.part}
    unknown = sorted(set(freeze or {}) - parts)
    if unknown:
        raise ValueError(f"freeze: unknown part(s) {unknown}; this network has {sorted(parts)}")
    trainable = _trainable(summary.records, freeze)
    mixed = sorted(
        group
        for group, recs in summary.groups().items()
        if group not in (ROOT, "<unmanaged>") and len({trainable[r.name] for r in recs}) > 1
    )
    if mixed:
        raise ValueError(
            f"freeze: sharding units with partly frozen parameters {mixed[:5]}; freeze whole parts "
            "(model.freeze.vision_tower / projector / language_model / embeddings)"
        )
    if not any(trainable.values()):
        raise ValueError("freeze: every parameter is frozen; unfreeze at least one part in model.freeze")
    return trainable


# -- precision ----------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class DTypes:
    """Bytes per element of each tensor family under a strategy and precision."""

    master: int  # sharded / replicated parameters and optimizer states
    grad: int  # (sharded) gradients
    compute: int  # activations
    gather: int  # all-gathered (unsharded) parameters and their unsharded gradients
    reduce: int  # reduce-scatter / all-reduce buffers
    autocast: bool  # DDP / single device under *-mixed: autocast keeps bf16 weight copies


def resolve_dtypes(
    strategy: str, mixed_precision: str = "bf16", trainer_precision: str = "32-true"
) -> DTypes:
    """Element sizes for a recipe's ``cluster.strategy``, ``cluster.fsdp.mixed_precision`` and ``trainer.precision``.

    Example:
        >>> resolve_dtypes("fsdp2", "bf16", "32-true")
        DTypes(master=4, grad=4, compute=2, gather=2, reduce=4, autocast=False)
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"cluster.strategy must be one of {STRATEGIES}, got {strategy!r}")
    if str(trainer_precision) not in TRAINER_PRECISIONS:
        raise ValueError(f"trainer.precision must be one of {TRAINER_PRECISIONS}, got {trainer_precision!r}")
    if mixed_precision not in ("bf16", "fp32"):
        raise ValueError(f"cluster.fsdp.mixed_precision must be 'bf16' or 'fp32', got {mixed_precision!r}")
    half_true = str(trainer_precision) in ("bf16-true", "16-true")
    half_mixed = str(trainer_precision) in ("bf16-mixed", "16-mixed")
    master = 2 if half_true else 4
    if strategy == "fsdp2":  # MixedPrecisionPolicy(bf16, reduce fp32) from cluster.fsdp.mixed_precision
        policy_bf16 = mixed_precision == "bf16"
        compute = 2 if policy_bf16 or half_true or half_mixed else 4
        gather = 2 if policy_bf16 else master
        return DTypes(master, master, compute, gather, 4 if policy_bf16 else master, False)
    compute = 2 if half_true or half_mixed else 4
    if strategy == "fsdp1":  # Lightning's FSDP plugin: MixedPrecision(param=reduce=bf16) under *-mixed
        return DTypes(master, master, compute, compute, compute, False)
    return DTypes(master, master, compute, master, master, half_mixed)


# -- model states -----------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ModelStates:
    """Parameters, gradients and optimizer states of one rank: allocated bytes and rank-local element counts."""

    parameter_bytes: int
    gradient_bytes: int
    optimizer_bytes: int
    optimizer_step_bytes: int  # AdamW's fp32 ``step`` scalars (on the CPU for non-fused AdamW)
    parameter_local_numel: int  # sum of p.to_local().numel()
    gradient_local_numel: int
    optimizer_local_numel: int  # sum over moment tensors of their numel
    trainable_local_numel: int


def model_states(
    summary: NetworkSummary | Iterable[ParamRecord],
    *,
    shard_size: int,
    rank: int = 0,
    dtypes: DTypes | None = None,
    freeze: dict[str, bool] | None = None,
    optimizer: str = "adamw",
    flat_units: bool = False,
) -> ModelStates:
    """Exact model-state memory of ``rank`` when every parameter is sharded on dim 0 over ``shard_size`` ranks.

    ``shard_size=1`` is DDP / a single device. ``flat_units=True`` approximates FSDP1 (one flat, padded
    parameter per group). Frozen parameters (``freeze`` parts, or ``requires_grad=False``) have no gradient and no
    optimizer state.
    """
    dtypes = dtypes or DTypes(4, 4, 4, 4, 4, False)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
    records = summary.records if isinstance(summary, NetworkSummary) else tuple(summary)
    trainable = _trainable(records, freeze)
    n_states = OPTIMIZERS[optimizer]
    param_alloc = param_local = grad_alloc = grad_local = train_local = steps = 0
    if flat_units:
        groups: dict[str, list[ParamRecord]] = {}
        for r in records:
            groups.setdefault(r.group, []).append(r)
        for recs in groups.values():
            numel = sum(r.numel for r in recs)
            shard = math.ceil(numel / shard_size)
            param_alloc += shard
            param_local += shard
            if any(trainable[r.name] for r in recs):  # FSDP1 allocates the whole flat gradient
                grad_alloc += shard
                grad_local += shard
            train_numel = sum(r.numel for r in recs if trainable[r.name])
            train_local += math.ceil(train_numel / shard_size)
            steps += sum(1 for r in recs if trainable[r.name])
    else:
        for r in records:
            padded = padded_shard_numel(r.shape, shard_size)
            local = local_shard_numel(r.shape, shard_size, rank)
            param_alloc += padded
            param_local += local
            if trainable[r.name]:
                grad_alloc += padded
                grad_local += local
                train_local += local
                steps += 1
    step_bytes = 4 * steps if optimizer in ("adamw", "adam") else 0
    return ModelStates(
        parameter_bytes=param_alloc * dtypes.master,
        gradient_bytes=grad_alloc * dtypes.grad,
        optimizer_bytes=n_states * train_local * dtypes.master,
        optimizer_step_bytes=step_bytes,
        parameter_local_numel=param_local,
        gradient_local_numel=grad_local,
        optimizer_local_numel=n_states * train_local,
        trainable_local_numel=train_local,
    )


def _fsdp_buffers(
    summary: NetworkSummary,
    trainable: dict[str, bool],
    shard_size: int,
    dtypes: DTypes,
    reshard_after_forward: bool,
    with_grads: bool = True,
) -> int:
    """All-gather / reduce-scatter working set at the backward peak (see the module docstring)."""
    gather = dtypes.gather
    root_params = root_grads = 0
    unit_params: list[int] = []
    unit_grad_cost: list[int] = []
    for group, recs in summary.groups().items():
        if group == "<unmanaged>":
            continue
        unsharded = sum(_padded_unsharded_numel(r.shape, shard_size) for r in recs)
        train = sum(_padded_unsharded_numel(r.shape, shard_size) for r in recs if trainable[r.name])
        if group == ROOT:
            root_params = unsharded * gather
            root_grads = train * gather
        else:
            unit_params.append(unsharded * gather)
            unit_grad_cost.append(train * (gather + dtypes.reduce))
    largest = max(unit_params, default=0)
    units_live = 3 * largest if reshard_after_forward else sum(unit_params) + largest
    grads = (root_grads + max(unit_grad_cost, default=0)) if with_grads else 0
    return root_params + units_live + grads


# -- visual tokens ----------------------------------------------------------------------------------------------------
def visual_tokens(
    arch: Architecture,
    image_size: tuple[int, int] | None = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
) -> tuple[int, int]:
    """``(merged visual tokens, vision patches)`` of one image after ``smart_resize``.

    ``image_size`` is ``(width, height)`` in pixels; None means the largest image the ``max_pixels`` budget allows
    (a square of side ``sqrt(max_pixels)``), the worst case.
    """
    from rszoo.data.resize import smart_resize

    factor = arch.patch_size * arch.merge
    lo = arch.min_pixels if min_pixels is None else min_pixels
    hi = arch.max_pixels if max_pixels is None else max_pixels
    width, height = image_size if image_size is not None else (math.isqrt(hi),) * 2
    h, w = smart_resize(height, width, factor=factor, min_pixels=lo, max_pixels=hi)
    patches = (h // arch.patch_size) * (w // arch.patch_size)
    return patches // (arch.merge**2), patches


# -- activations ------------------------------------------------------------------------------------------------------
def _norm_bytes(c: int, width: int) -> int:
    """Saved bytes per row of a Qwen RMSNorm: fp32 upcast + rsqrt + normalised (c) + scaled output (c)."""
    return (4 + 2 * c) * width + 4


def _decoder_layer(
    arch: Architecture, c: int, q_tokens: int, kv_tokens: int, kv_repeated: bool, scores: int = 0
) -> int:
    """Saved bytes of one decoder layer: ``q_tokens`` queries, ``kv_tokens`` saved keys, ``scores`` query-key pairs."""
    nq, nkv, d = arch.heads, arch.kv_heads, arch.head_dim
    per_token = 2 * _norm_bytes(c, arch.hidden) + c * 2 * nq * d + 4 * nq + 4 * c * arch.intermediate
    if arch.qk_norm:
        per_token += (4 + c) * nq * d + 4 * nq + (4 + c) * nkv * d + 4 * nkv
    kv_heads = nq if kv_repeated else nkv
    total = per_token * q_tokens + 2 * c * kv_heads * d * kv_tokens
    if arch.attn_implementation == "eager":  # fp32 softmax + its bf16 copy, per head and query-key pair
        total += (4 + c) * nq * scores
    return total


def _vision_block(arch: Architecture, c: int, patches: int) -> int:
    h, heads = arch.vision_hidden, arch.vision_heads
    outputs = 1 if arch.attn_implementation == "flash_attention_2" else 2  # sdpa: chunk outputs + proj input
    attn = c * (h + h + 3 * h + outputs * h) + 4 * heads
    if arch.vision_norm == "rms":
        norms = 2 * _norm_bytes(c, h)
    else:  # LayerNorm: input + fp32 mean/rstd + output
        norms = 2 * (2 * c * h + 8)
    mlp = (4 if arch.vision_mlp == "swiglu" else 2) * c * arch.vision_intermediate
    return (norms + attn + mlp) * patches


def _vision_outside_units(arch: Architecture, c: int, patches: int) -> int:
    h = arch.vision_hidden
    head_dim = h // arch.vision_heads
    pixels = c * arch.in_channels * arch.temporal_patch_size * arch.patch_size**2
    rope = 2 * 4 * head_dim
    if arch.vision_norm == "rms":  # Qwen2.5-VL merger (RMSNorm, fc1, GELU, fc2) + window indices
        merger = (4 + 4 * c) * h + 4 + 4
    else:  # Qwen3-VL merger and DeepStack mergers (LayerNorm, fc1, GELU, fc2) + position-embedding interpolation
        merger = (4 * c * h + 8) + arch.deepstack * (4 * c * h + 2) + 48
    return (pixels + rope + merger) * patches


def _text_outside_units(arch: Architecture, c: int, tokens: int) -> int:
    ids_and_masks = 8 + 1
    rope = 2 * c * arch.head_dim
    return (ids_and_masks + rope + _norm_bytes(c, arch.hidden)) * tokens


@dataclasses.dataclass(frozen=True)
class _Pass:
    """One forward pass kept for backward: query tokens, saved key tokens, vision patches, KV repeated or not."""

    q_tokens: int
    kv_tokens: int
    patches: int
    kv_repeated: bool
    scores: int  # query-key pairs per head (only eager attention materialises them)
    kv_retained: int = 0  # KV-cache tokens an activation checkpoint keeps alive (it holds the cache object)


def _activations(arch: Architecture, c: int, passes: list[_Pass]) -> dict[str, int]:
    full = inputs = outside = 0
    largest_unit = 0
    for p in passes:
        layer = _decoder_layer(arch, c, p.q_tokens, p.kv_tokens, p.kv_repeated, p.scores)
        block = _vision_block(arch, c, p.patches) if p.patches else 0
        largest_unit = max(largest_unit, layer, block)
        full += arch.layers * layer + arch.vision_depth * block
        inputs += (
            arch.layers * c * arch.hidden * p.q_tokens
            + arch.vision_depth * c * arch.vision_hidden * p.patches
        )
        inputs += arch.layers * 2 * c * arch.kv_heads * arch.head_dim * p.kv_retained
        outside += _text_outside_units(arch, c, p.q_tokens)
        if p.patches:
            outside += _vision_outside_units(arch, c, p.patches)
    return {
        "full": outside + full,
        "checkpointed": outside + inputs + largest_unit,  # + one unit recomputed in backward
        "workspace": largest_unit,  # the stated fudge: one unit's activation gradients in backward
        "saved_full": outside + full,
        "largest_unit": largest_unit,
    }


# -- the plan ---------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class MemoryPlan:
    """Per-GPU memory of one training configuration (bytes), the verdict and what to change.

    ``gpu`` holds the terms that make up ``total`` (in order); ``activations_full`` / ``activations_checkpointed``
    are both given whatever the setting; ``host`` is CPU memory per rank (offloaded states, AdamW step counters).
    """

    model: str
    settings: dict[str, Any]
    gpu: dict[str, int]
    host: dict[str, int]
    activations_full: int
    activations_checkpointed: int
    phases: dict[str, int]
    peak_phase: str
    total: int
    gpu_memory: int
    notes: list[str]
    advice: list[str] = dataclasses.field(default_factory=list)

    @property
    def fits(self) -> bool:
        return self.total <= self.gpu_memory

    @property
    def verdict(self) -> str:
        if not self.fits:
            return "does not fit"
        return "tight" if self.total > TIGHT * self.gpu_memory else "fits"

    @property
    def dominant(self) -> tuple[str, int]:
        """The largest term of the total (the reserve excluded): a model state or a term of the peak phase."""
        keep = {
            "parameters",
            "gradients",
            "optimizer_states",
            "reference_model",
            *PHASE_TERMS[self.peak_phase],
        }
        terms = {k: v for k, v in self.gpu.items() if k in keep}
        name = max(terms, key=terms.__getitem__)
        return name, terms[name]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``rszoo plan --json``, benchmark results)."""
        return {
            "model": self.model,
            "settings": self.settings,
            "gpu_bytes": self.gpu,
            "host_bytes": self.host,
            "activations_full_bytes": self.activations_full,
            "activations_checkpointed_bytes": self.activations_checkpointed,
            "phases_bytes": self.phases,
            "peak_phase": self.peak_phase,
            "total_bytes": self.total,
            "gpu_memory_bytes": self.gpu_memory,
            "fits": self.fits,
            "verdict": self.verdict,
            "dominant": self.dominant[0],
            "notes": self.notes,
            "advice": self.advice,
        }


PHASE_TERMS = {
    "forward/backward": ("comm_buffers", "activations", "logits"),
    "optimizer step": ("optimizer_step",),
    "rollout": ("rollout",),
}
LABELS = {
    "parameters": "parameters (sharded master)",
    "gradients": "gradients",
    "optimizer_states": "optimizer states",
    "reference_model": "GRPO reference model",
    "comm_buffers": "FSDP all-gather/reduce-scatter buffers",
    "activations": "activations",
    "logits": "logits + loss buffers",
    "rollout": "rollout phase (KV cache, logits)",
    "optimizer_step": "optimizer step temporaries",
    "reserve": "reserve (CUDA context, NCCL)",
}


def plan_memory(
    network_or_config: Any,
    *,
    world_size: int = 1,
    devices_per_node: int | None = None,
    strategy: str = "fsdp2",
    mixed_precision: str = "bf16",
    trainer_precision: str = "32-true",
    activation_checkpointing: bool = True,
    cpu_offload: bool = False,
    reshard_after_forward: bool = True,
    hsdp: bool = False,
    freeze: dict[str, bool] | None = None,
    optimizer: str = "adamw",
    stage: str = "sft",
    micro_batch: int = 1,
    seq_len: int = 4096,
    image_size: tuple[int, int] | None = None,
    images_per_sample: int = 1,
    vision_tokens: int | None = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    num_generations: int = 8,
    completion_len: int = 256,
    prompt_text_tokens: int = 128,
    reference_model: bool = False,
    accumulate_grad_batches: int = 1,
    gpu_memory: int = 80 * GiB,
    reserve: int = GiB,
) -> MemoryPlan:
    """Plan per-GPU memory for training ``network_or_config`` (see the module docstring for the model).

    Args:
        network_or_config: a network, a model config, a preset name, or a :class:`NetworkSummary` (fastest when
            planning many variants of one network).
        world_size: GPUs in total (nodes x GPUs per node).
        devices_per_node: GPUs per node (HSDP shards within a node); defaults to ``world_size``.
        strategy: ``auto``, ``ddp``, ``fsdp2`` or ``fsdp1`` (the recipe's ``cluster.strategy``).
        mixed_precision, activation_checkpointing, cpu_offload, reshard_after_forward, hsdp: the recipe's
            ``cluster.fsdp`` options (for ``auto`` / ``ddp`` only ``activation_checkpointing`` is not applied by
            rszoo, so it is ignored there).
        trainer_precision: the recipe's ``trainer.precision``.
        freeze: ``{part: True}`` for frozen parts (``vision_tower``, ``projector``, ``language_model``,
            ``embeddings``).
        optimizer: ``adamw`` (rszoo's), ``adam`` or ``sgd`` (momentum).
        stage: ``sft`` (chat SFT) or ``grpo``.
        micro_batch: samples (SFT) or prompts (GRPO) per GPU per step (``data.batch_size``).
        seq_len: SFT tokens per sample, visual tokens included (``stage_args.max_length``).
        image_size: ``(width, height)`` of the images; None = the worst case the ``max_pixels`` budget allows.
        images_per_sample: images per sample / prompt.
        vision_tokens: merged visual tokens per image, overriding ``image_size``.
        min_pixels, max_pixels: the smart_resize budget (default: the model config's).
        num_generations, completion_len, prompt_text_tokens, reference_model: GRPO's G, ``max_completion_length``,
            text tokens of a prompt, and whether a frozen reference model exists (``beta > 0``).
        accumulate_grad_batches: only for the global-batch arithmetic.
        gpu_memory: bytes per GPU (default A800 80 GB = 80 GiB).
        reserve: fixed bytes for the CUDA context, NCCL and workspaces.

    Raises:
        ValueError: for bad arguments, naming the argument and what is allowed.
    """
    _check_positive(
        world_size=world_size,
        micro_batch=micro_batch,
        seq_len=seq_len,
        num_generations=num_generations,
        completion_len=completion_len,
        accumulate_grad_batches=accumulate_grad_batches,
        gpu_memory=gpu_memory,
    )
    if stage not in ("sft", "grpo"):
        raise ValueError(f"stage must be 'sft' or 'grpo', got {stage!r}")
    if not isinstance(images_per_sample, int) or images_per_sample < 0:
        raise ValueError(f"images_per_sample must be an integer >= 0, got {images_per_sample!r}")
    devices_per_node = world_size if devices_per_node is None else devices_per_node
    if devices_per_node < 1 or world_size % devices_per_node:
        raise ValueError(
            f"world_size ({world_size}) must be a multiple of devices_per_node ({devices_per_node})"
        )
    nodes = world_size // devices_per_node
    summary = summarize_network(network_or_config)
    arch = summary.architecture
    if arch is None:
        raise ValueError(
            f"{summary.name}: the activation model covers Qwen-VL networks only; use model_states() for the "
            "parameter / gradient / optimizer part"
        )
    dtypes = resolve_dtypes(strategy, mixed_precision, trainer_precision)
    trainable = _check_freeze(summary, freeze)
    sharded = strategy in ("fsdp2", "fsdp1")
    data_parallel_ddp = strategy == "ddp" or (strategy == "auto" and world_size > 1)
    if sharded:
        shard_size = devices_per_node if hsdp else world_size
    else:
        shard_size = 1
    checkpointing = activation_checkpointing and sharded
    offload = cpu_offload and strategy == "fsdp2"
    notes: list[str] = []
    if activation_checkpointing and not sharded:
        notes.append(
            f"strategy {strategy!r}: rszoo applies activation checkpointing only under fsdp2/fsdp1; "
            "activations are planned without it"
        )
    if cpu_offload and strategy != "fsdp2":
        notes.append("cluster.fsdp.cpu_offload applies to fsdp2 only; ignored")
    if strategy == "fsdp1":
        notes.append("fsdp1: flat-parameter padding approximated (the exact rule is for fsdp2)")

    states = model_states(
        summary,
        shard_size=shard_size,
        dtypes=dtypes,
        freeze=freeze,
        optimizer=optimizer,
        flat_units=strategy == "fsdp1",
    )
    ref_states = (
        model_states(summary, shard_size=shard_size, dtypes=dtypes, freeze={p: True for p in _parts(summary)})
        if stage == "grpo" and reference_model
        else None
    )
    c = dtypes.compute
    if vision_tokens is not None:
        tokens_per_image, patches_per_image = vision_tokens, vision_tokens * arch.merge**2
    else:
        tokens_per_image, patches_per_image = visual_tokens(arch, image_size, min_pixels, max_pixels)
    work = _workload(
        arch, c, stage, micro_batch, seq_len, tokens_per_image * images_per_sample,
        patches_per_image * images_per_sample, num_generations, completion_len, prompt_text_tokens,
    )  # fmt: skip
    passes, logits_saved, logits, rollout = (
        work["passes"],
        work["logits_saved"],
        work["logits"],
        work["rollout"],
    )
    if stage == "sft" and tokens_per_image * images_per_sample >= seq_len:
        notes.append(
            f"{images_per_sample} image(s) give {tokens_per_image * images_per_sample} visual tokens >= "
            f"stage_args.max_length={seq_len}: such samples are rejected; pass --image-size for your data, lower "
            "model.overrides.max_pixels or raise stage_args.max_length"
        )
    acts = _activations(arch, c, passes)
    act_full = acts["full"] + acts["workspace"]
    act_ckpt = acts["checkpointed"] + acts["workspace"]
    activations = act_ckpt if checkpointing else act_full

    gpu: dict[str, int] = {}
    host: dict[str, int] = {}
    if offload:
        host["parameters"] = states.parameter_bytes
        host["gradients"] = states.gradient_bytes
        host["optimizer_states"] = states.optimizer_bytes
        gpu["parameters"] = gpu["gradients"] = gpu["optimizer_states"] = 0
    else:
        gpu["parameters"] = states.parameter_bytes + summary.buffer_bytes
        gpu["gradients"] = states.gradient_bytes
        gpu["optimizer_states"] = states.optimizer_bytes
    if states.optimizer_step_bytes:
        host["optimizer_step_counters"] = states.optimizer_step_bytes
    if ref_states is not None:
        if offload:
            host["reference_model"] = ref_states.parameter_bytes
            gpu["reference_model"] = 0
        else:
            gpu["reference_model"] = ref_states.parameter_bytes + summary.buffer_bytes
    if sharded:
        comm = _fsdp_buffers(summary, trainable, shard_size, dtypes, reshard_after_forward)
        comm_no_grad = _fsdp_buffers(
            summary, trainable, shard_size, dtypes, reshard_after_forward, with_grads=False
        )
    else:
        train_numel = sum(r.numel for r in summary.records if trainable[r.name])
        comm = (train_numel * dtypes.master if data_parallel_ddp else 0) + (
            summary.num_parameters * 2 if dtypes.autocast else 0
        )
        comm_no_grad = summary.num_parameters * 2 if dtypes.autocast else 0
        if dtypes.autocast:
            notes.append(
                "autocast (bf16-mixed without FSDP): bf16 weight copies counted in the buffers; the residual "
                "stream stays fp32, so activations are a lower estimate"
            )
    step_temp = 0 if offload else states.trainable_local_numel * dtypes.master
    phases = {
        "forward/backward": comm + activations + logits,
        "optimizer step": step_temp,
    }
    if stage == "grpo":
        phases["rollout"] = comm_no_grad + rollout + acts["largest_unit"]
    peak_phase = max(phases, key=phases.__getitem__)
    gpu["comm_buffers"] = comm
    gpu["activations"] = activations
    gpu["logits"] = logits
    if stage == "grpo":
        gpu["rollout"] = phases["rollout"]
    gpu["optimizer_step"] = step_temp
    gpu["reserve"] = reserve
    static = sum(
        v for k, v in gpu.items() if k in ("parameters", "gradients", "optimizer_states", "reference_model")
    )
    total = static + phases[peak_phase] + reserve
    global_batch = micro_batch * accumulate_grad_batches * world_size
    batch_text = (
        f"{micro_batch} {'per GPU' if stage == 'sft' else 'prompts per GPU'} x {accumulate_grad_batches} "
    )
    batch_text += f"accumulation x {world_size} GPUs = {global_batch} "
    if stage == "sft":
        batch_text += "samples per optimizer step"
    else:
        batch_text += (
            f"prompts x {num_generations} generations = {global_batch * num_generations} completions per step"
        )
    settings = {
        "stage": stage,
        "strategy": strategy,
        "world_size": world_size,
        "devices_per_node": devices_per_node,
        "nodes": nodes,
        "shard_size": shard_size,
        "hsdp": bool(hsdp and sharded),
        "mixed_precision": mixed_precision,
        "trainer_precision": trainer_precision,
        "dtype_bytes": dataclasses.asdict(dtypes),
        "activation_checkpointing": checkpointing,
        "cpu_offload": offload,
        "reshard_after_forward": reshard_after_forward,
        "freeze": {k: v for k, v in (freeze or {}).items() if v},
        "optimizer": optimizer,
        "micro_batch": micro_batch,
        "accumulate_grad_batches": accumulate_grad_batches,
        "global_batch": global_batch,
        "batch_arithmetic": batch_text,
        "seq_len": seq_len,
        "tokens_per_micro_batch": work["tokens"],
        "visual_tokens_per_image": tokens_per_image,
        "vision_patches_per_image": patches_per_image,
        "images_per_sample": images_per_sample,
        "image_size": list(image_size) if image_size else None,
        "max_pixels": arch.max_pixels if max_pixels is None else max_pixels,
        "attn_implementation": arch.attn_implementation,
        "num_parameters": summary.num_parameters,
        "trainable_parameters": sum(r.numel for r in summary.records if trainable[r.name]),
        "logits_saved_bytes": logits_saved,
        "activations_saved_bytes": acts["saved_full"],
    }
    if stage == "grpo":
        settings.update(
            num_generations=num_generations,
            completion_len=completion_len,
            prompt_tokens=tokens_per_image * images_per_sample + prompt_text_tokens,
            reference_model=reference_model,
        )
    return MemoryPlan(
        model=summary.name,
        settings=settings,
        gpu=gpu,
        host=host,
        activations_full=act_full,
        activations_checkpointed=act_ckpt,
        phases=phases,
        peak_phase=peak_phase,
        total=total,
        gpu_memory=gpu_memory,
        notes=notes,
    )


def _workload(
    arch: Architecture,
    c: int,
    stage: str,
    micro_batch: int,
    seq_len: int,
    image_tokens: int,
    image_patches: int,
    generations: int,
    completion_len: int,
    prompt_text_tokens: int,
) -> dict[str, Any]:
    """The forward passes kept for backward, the logits terms and the rollout-phase transient of one micro-batch."""
    V = arch.vocab
    if stage == "sft":
        tokens = micro_batch * seq_len
        repeated = (
            arch.attn_implementation != "flash_attention_2" and micro_batch > 1
        )  # padding mask -> repeat_kv
        passes = [_Pass(tokens, tokens, micro_batch * image_patches, repeated, micro_batch * seq_len**2)]
        loss_tokens = micro_batch * (seq_len - 1)
        saved = 4 * V * loss_tokens  # fp32 log-softmax output
        peak = max((c + 4) * V * loss_tokens, 8 * V * loss_tokens)  # forward copies or backward gradients
        return {
            "passes": passes,
            "logits_saved": saved,
            "logits": saved + peak,
            "rollout": 0,
            "tokens": tokens,
        }
    G, T = generations, completion_len
    prompt = image_tokens + prompt_text_tokens
    keys = G * (prompt + T - 1)  # the prompt's KV cache repeated G times, then extended by the completions
    repeated = arch.attn_implementation != "flash_attention_2"  # a KV-cache forward under SDPA has a mask
    per_prompt = [
        _Pass(prompt, prompt, image_patches, False, prompt**2),
        _Pass(G * (T - 1), keys, 0, repeated, (T - 1) * keys, kv_retained=keys),
    ]
    saved = 4 * V * G * T * micro_batch
    # one group's forward: the bf16 prompt logits, bf16 completion logits + their concatenation, fp32 copy, /T
    peak = max(c * prompt * V + (2 * c + 8) * G * T * V, 8 * G * T * V)
    kv_cache = arch.layers * 2 * c * arch.kv_heads * arch.head_dim * G * (prompt + T)
    rollout = kv_cache + c * prompt * V + (2 * c + 12) * G * T * V
    tokens = micro_batch * (prompt + G * T)
    return {
        "passes": per_prompt * micro_batch,
        "logits_saved": saved,
        "logits": saved + peak,
        "rollout": rollout,
        "tokens": tokens,
    }


def _parts(summary: NetworkSummary) -> list[str]:
    return sorted({r.part for r in summary.records if r.part})


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
