"""The training mixture: a map-style dataset over all subsets and a resumable weighted sampler.

:class:`MixtureDataset` holds every subset's unified records (offline-processed once at construction) and builds the
chat sample of a record on access (online processing). Index ``i`` in ``[0, len)`` addresses record ``i`` of the
concatenated subsets. The sampler yields :class:`MixtureKey` s ``(index, epoch, occurrence)`` instead of bare
indices, so the augmentation of a sample is a pure function of ``(seed, epoch, index, occurrence)`` -- the same in
every DataLoader worker and after a resume -- and a record drawn twice in one epoch gets two different augmentations.
A bare ``int`` index gives the sample at epoch 0, occurrence 0.

:class:`WeightedMixtureSampler` draws each epoch globally (identically on every rank) from ``(seed, epoch)``:

* **weighted** mixing: ``samples_per_epoch`` subset choices, each subset with probability ``weight / sum(weights)``;
  within a subset, records come from successive random permutations (every record once before any repeats), and the
  permutation round is the record's ``occurrence``;
* **static** mixing (``static:`` in the recipe): the reference's fixed list (``name%P`` / ``name*K``), shuffled.

Ranks take every ``num_replicas``-th sample of the epoch (padded like ``DistributedSampler``); ``state_dict(consumed)``
/ ``load_state_dict`` resume mid-epoch exactly (same interface as :class:`rszoo.training.data.ResumableSampler`).

**Length-aware batching** (``group_by_length=True``): the epoch's draw is cut into mega-batches of
``megabatch_mult x batch_size x num_replicas`` samples; each is sorted by estimated token length (the image tokens
after the sample's own resize -- ``resized_width x resized_height / factor^2`` -- plus text tokens estimated without a
tokenizer: one per digit, one per four other characters) and split into chunks of ``batch_size x num_replicas``,
whose order is shuffled. A rank's micro-batch then holds samples of similar length, so mixed image sizes waste little
padding (``benchmarks/rscovlm/bench_length_batching.py`` measures it with the real tokenizer). Exact resumption with
length grouping needs the same world size and batch size.

Example:
    >>> from rszoo.data.engine import build_mixture, mixture_sampler_factory   # doctest: +SKIP
    >>> data = build_mixture("recipes/rscovlm/data/tiny_synth.yaml", seed=0, min_pixels=56 * 56,
    ...                      max_pixels=448 * 448, overrides={"root": "data/synth"})   # doctest: +SKIP
    >>> factory = mixture_sampler_factory(data, batch_size=4, seed=0, group_by_length=True)   # doctest: +SKIP
    >>> TaskDataModule(data, batch_size=4, sampler_factory=factory)   # doctest: +SKIP
"""

from __future__ import annotations

import bisect
import math
import random
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from torch.utils.data import Dataset, Sampler

from rszoo.data.engine.offline import OfflineReport, process_source
from rszoo.data.engine.online import build_sample, sample_seed
from rszoo.data.engine.recipe import DataRecipe, DataRecipeError, load_data_recipe, static_selection
from rszoo.data.resize import smart_resize
from rszoo.data.sampling import ResumablePosition

__all__ = [
    "MixtureDataset",
    "MixtureKey",
    "WeightedMixtureSampler",
    "build_mixture",
    "estimate_tokens",
    "mixture_sampler_factory",
]

_DIGIT = re.compile(r"\d")
# Qwen chat template: "<|im_start|>role\n" ... "<|im_end|>\n" around each message; the default system message
_TURN_OVERHEAD = 5
_DEFAULT_SYSTEM_TOKENS = 10


class MixtureKey(NamedTuple):
    """What the sampler yields: a record ``index``, the ``epoch`` and the record's ``occurrence`` in that epoch."""

    index: int
    epoch: int = 0
    occurrence: int = 0


def _text_tokens(text: str) -> int:
    digits = len(_DIGIT.findall(text))
    return digits + math.ceil((len(text) - digits) / 4)


def estimate_tokens(sample: Mapping[str, Any], factor: int = 28) -> int:
    """Estimated token count of a messages row under a Qwen-VL chat template, without a tokenizer.

    Image parts count ``resized_width * resized_height / factor^2`` tokens (+2 vision markers); text counts one token
    per digit (Qwen tokenises numbers digit by digit) plus one per four other characters; each message adds the
    chat-template overhead and a default system message is counted when there is none.

    Example:
        >>> estimate_tokens({"messages": [{"role": "user", "content": [
        ...     {"type": "image", "image": "a.png", "resized_width": 56, "resized_height": 56},
        ...     {"type": "text", "text": "abcd"}]}, {"role": "assistant", "content": "12"}]})
        29
    """
    messages = sample["messages"]
    total = 0 if messages and messages[0]["role"] == "system" else _DEFAULT_SYSTEM_TOKENS
    for message in messages:
        total += _TURN_OVERHEAD
        content = message["content"]
        if isinstance(content, str):
            total += _text_tokens(content)
            continue
        for part in content:
            if part.get("type") == "image":
                w, h = part.get("resized_width"), part.get("resized_height")
                total += (int(w) * int(h)) // (factor * factor) + 2 if w and h else 2
            elif part.get("type") == "text":
                total += _text_tokens(part["text"])
    return total


class MixtureDataset(Dataset):
    """All subsets of a data recipe as one map-style dataset; samples are built online.

    Args:
        recipe: a :class:`~rszoo.data.engine.recipe.DataRecipe` or a recipe path.
        seed: the augmentation seed.
        min_pixels / max_pixels: the dynamic-resolution bounds (the paper: 224x224 and 1008x1008); they must equal
            the model processor's, which then leaves the ``resized_width``/``resized_height`` images untouched.
        factor: patch size x merge size (28 for Qwen2.5-VL, 32 for Qwen3-VL).
        overrides: recipe overrides (used when ``recipe`` is a path).

    Raises:
        DataRecipeError: a subset with a positive weight has no records after offline processing.
    """

    def __init__(
        self,
        recipe: DataRecipe | str | Path,
        seed: int = 0,
        *,
        min_pixels: int = 224 * 224,
        max_pixels: int = 1008 * 1008,
        factor: int = 28,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(recipe, DataRecipe):
            recipe = load_data_recipe(recipe, overrides)
        smart_resize(factor, factor, factor, min_pixels, max_pixels)  # validates the bounds
        self.recipe, self.seed = recipe, int(seed)
        self.min_pixels, self.max_pixels, self.factor = int(min_pixels), int(max_pixels), int(factor)
        self.records: list[list[Any]] = []
        self.reports: dict[str, OfflineReport] = {}
        for spec in recipe.subsets:
            records, report = process_source(spec.name, spec.task, spec.source, recipe.offline, factor)
            self.records.append(records)
            self.reports[spec.name] = report
        used = set(self._static_names()) if recipe.static is not None else None
        for spec, records in zip(recipe.subsets, self.records):
            needed = spec.name in used if used is not None else spec.weight > 0
            if needed and not records:
                raise DataRecipeError(
                    f"{recipe.path or 'recipe'}: subset {spec.name!r} has no records after offline processing "
                    f"({self.reports[spec.name].summary()}); fix its source or give it weight 0"
                )
        self.offsets = [0]
        for records in self.records:
            self.offsets.append(self.offsets[-1] + len(records))
        self.epoch = 0

    def _static_names(self) -> list[str]:
        from rszoo.data.engine.recipe import parse_static_entry

        names = [parse_static_entry(e)[0] for e in self.recipe.static or []]
        return self.recipe.names if "all" in names else names

    # -- structure -----------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.offsets[-1]

    @property
    def subset_names(self) -> list[str]:
        return self.recipe.names

    @property
    def subset_sizes(self) -> list[int]:
        return [len(r) for r in self.records]

    @property
    def weights(self) -> list[float]:
        return [s.weight for s in self.recipe.subsets]

    def locate(self, index: int) -> tuple[int, int]:
        """``(subset number, record number in the subset)`` of a global index."""
        if not 0 <= index < len(self):
            raise IndexError(f"mixture index {index} out of range [0, {len(self)})")
        s = bisect.bisect_right(self.offsets, index) - 1
        return s, index - self.offsets[s]

    def record(self, index: int) -> Any:
        """The unified record behind a global index."""
        s, i = self.locate(index)
        return self.records[s][i]

    def static_plan(self) -> list[MixtureKey] | None:
        """The static epoch (before shuffling) as keys of epoch 0, or None for weighted mixing."""
        if self.recipe.static is None:
            return None
        sizes = dict(zip(self.recipe.names, self.subset_sizes))
        position = {name: self.offsets[k] for k, name in enumerate(self.recipe.names)}
        return [
            MixtureKey(position[name] + i, 0, occ)
            for name, i, occ in static_selection(self.recipe, sizes, self.seed)
        ]

    def set_epoch(self, epoch: int) -> None:
        """The epoch used for bare ``int`` indices."""
        self.epoch = int(epoch)

    # -- samples --------------------------------------------------------------------------------------------------------
    def sample(self, index: int, epoch: int = 0, occurrence: int = 0) -> dict[str, Any]:
        """The messages row of record ``index`` for ``(epoch, occurrence)`` (deterministic)."""
        s, i = self.locate(index)
        spec = self.recipe.subsets[s]
        rng = random.Random(sample_seed(self.seed, epoch, index, occurrence))
        return build_sample(
            self.records[s][i],
            spec.task,
            rng=rng,
            options=spec.online,
            prompts=spec.prompts,
            subset=spec.name,
            min_pixels=self.min_pixels,
            max_pixels=self.max_pixels,
            factor=self.factor,
        )

    def __getitem__(self, key: int | MixtureKey | tuple[int, int, int]) -> dict[str, Any]:
        if isinstance(key, tuple):
            return self.sample(*key)
        return self.sample(int(key), self.epoch, 0)

    def estimate_tokens(self, key: int | MixtureKey | tuple[int, int, int]) -> int:
        """:func:`estimate_tokens` of the sample ``key`` (its images are never opened)."""
        return estimate_tokens(self[key], self.factor)


def _entropy(*values: int) -> list[int]:
    """Non-negative 32-bit words for numpy's SeedSequence from any integers (negative seeds allowed)."""
    words = []
    for v in values:
        v = int(v) % (1 << 64)
        words += [v & 0xFFFFFFFF, v >> 32]
    return words


class WeightedMixtureSampler(ResumablePosition, Sampler[MixtureKey]):
    """A resumable sampler over a :class:`MixtureDataset` (weighted or static mixing; see the module docstring).

    Args:
        dataset: the mixture.
        seed: the draw seed (independent of the dataset's augmentation seed).
        samples_per_epoch: weighted mixing: draws per epoch (default: the recipe's ``samples_per_epoch``, else the
            number of records); static mixing fixes it (giving another value is an error).
        num_replicas / rank: distributed sharding (every rank computes the same global draw).
        batch_size: per-device micro-batch size (used by length grouping).
        group_by_length: length-aware batching.
        megabatch_mult: mega-batch size in global batches (length grouping).
    """

    def __init__(
        self,
        dataset: MixtureDataset,
        *,
        seed: int = 0,
        samples_per_epoch: int | None = None,
        num_replicas: int = 1,
        rank: int = 0,
        batch_size: int = 1,
        group_by_length: bool = False,
        megabatch_mult: int = 50,
    ) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, num_replicas={num_replicas}), got {rank}")
        if batch_size < 1 or megabatch_mult < 1:
            raise ValueError(
                f"batch_size and megabatch_mult must be >= 1, got {batch_size} and {megabatch_mult}"
            )
        self.dataset, self.seed = dataset, int(seed)
        self.num_replicas, self.rank, self.batch_size = num_replicas, rank, batch_size
        self.group_by_length, self.megabatch_mult = group_by_length, megabatch_mult
        self._plan = dataset.static_plan()
        if self._plan is not None:
            if samples_per_epoch is not None:
                raise ValueError(
                    "samples_per_epoch cannot be set with a static mixing recipe: the static list fixes the epoch "
                    f"({len(self._plan)} samples)"
                )
            self.size = len(self._plan)
        else:
            chosen = samples_per_epoch if samples_per_epoch is not None else dataset.recipe.samples_per_epoch
            self.size = int(chosen) if chosen is not None else len(dataset)
            if self.size < 1:
                raise ValueError(f"samples_per_epoch must be >= 1, got {self.size}")
            w = np.asarray(dataset.weights, dtype=np.float64)
            w = np.where(np.asarray(dataset.subset_sizes) > 0, w, 0.0)
            if w.sum() <= 0:
                raise ValueError("every subset with records has weight 0; nothing to sample")
            self._p = w / w.sum()
        self.epoch = 0
        self._skip = 0

    # -- the epoch --------------------------------------------------------------------------------------------------
    def epoch_draw(self, epoch: int) -> list[MixtureKey]:
        """The global draw of ``epoch`` before length grouping (identical on every rank)."""
        rng = np.random.default_rng(_entropy(self.seed, epoch, 0x6D6978))
        if self._plan is not None:
            return [
                MixtureKey(k.index, epoch, k.occurrence)
                for k in (self._plan[i] for i in rng.permutation(len(self._plan)))
            ]
        choice = rng.choice(len(self._p), size=self.size, p=self._p)
        out: list[MixtureKey | None] = [None] * self.size
        offsets, sizes = self.dataset.offsets, self.dataset.subset_sizes
        for s, n in enumerate(sizes):
            where = np.flatnonzero(choice == s)
            if not len(where):
                continue
            rounds = -(-len(where) // n)
            stream = np.concatenate([rng.permutation(n) for _ in range(rounds)])[: len(where)]
            for pos, (k, item) in enumerate(zip(where.tolist(), stream.tolist())):
                out[k] = MixtureKey(offsets[s] + item, epoch, pos // n)
        return out  # type: ignore[return-value]

    def _grouped(self, draw: list[MixtureKey], epoch: int) -> Iterator[MixtureKey]:
        chunk = self.batch_size * self.num_replicas
        mega = chunk * self.megabatch_mult
        rng = random.Random(sample_seed(self.seed, epoch, -1, 0x6C656E))
        for start in range(0, len(draw), mega):
            block = draw[start : start + mega]
            lengths = [self.dataset.estimate_tokens(k) for k in block]
            order = sorted(range(len(block)), key=lambda j: -lengths[j])
            chunks = [order[j : j + chunk] for j in range(0, len(order), chunk)]
            full = [c for c in chunks if len(c) == chunk]
            rng.shuffle(full)
            tail = [c for c in chunks if len(c) < chunk]
            for c in full + tail:  # a partial chunk only at the end of the epoch
                for j in c:
                    yield block[j]

    def epoch_order(self, epoch: int) -> Iterator[MixtureKey]:
        """The global order of ``epoch`` (after length grouping when enabled)."""
        draw = self.epoch_draw(epoch)
        return self._grouped(draw, epoch) if self.group_by_length else iter(draw)

    def _rank_order(self, epoch: int) -> Iterator[MixtureKey]:
        per_rank = -(-self.size // self.num_replicas)
        padded = per_rank * self.num_replicas
        head: list[MixtureKey] = []
        for pos, key in enumerate(self.epoch_order(epoch)):
            if len(head) < padded - self.size:
                head.append(key)
            if pos % self.num_replicas == self.rank:
                yield key
        for pos in range(self.size, padded):  # pad with the epoch's first samples, as DistributedSampler
            if pos % self.num_replicas == self.rank:
                yield head[pos - self.size]

    # -- Sampler interface (set_epoch / state_dict / load_state_dict: ResumablePosition) ---------------------------
    def __iter__(self) -> Iterator[MixtureKey]:
        skip, self._skip = self._skip, 0
        for k, key in enumerate(self._rank_order(self.epoch)):
            if k >= skip:
                yield key

    def __len__(self) -> int:
        return -(-self.size // self.num_replicas)


# --------------------------------------------------------------------------------------------------------------
# entry points for tasks
# --------------------------------------------------------------------------------------------------------------
def build_mixture(
    recipe_path: str,
    *,
    seed: int,
    min_pixels: int,
    max_pixels: int,
    factor: int = 28,
    overrides: Mapping[str, Any] | None = None,
) -> MixtureDataset:
    """Load, validate and process a data recipe into a :class:`MixtureDataset` (the RSCoVLM task's loader).

    Args:
        recipe_path: the data recipe YAML.
        seed: the augmentation seed.
        min_pixels / max_pixels / factor: dynamic-resolution bounds; use the model processor's values.
        overrides: recipe overrides, e.g. ``{"root": "/data/rs", "subsets.dota_det.weight": 3}``.
    """
    recipe = load_data_recipe(recipe_path, overrides)
    return MixtureDataset(recipe, seed, min_pixels=min_pixels, max_pixels=max_pixels, factor=factor)


def mixture_sampler_factory(
    dataset: MixtureDataset,
    *,
    batch_size: int,
    seed: int,
    samples_per_epoch: int | None = None,
    group_by_length: bool = False,
) -> Callable[[int, int], WeightedMixtureSampler]:
    """A ``(world_size, rank) -> sampler`` factory for :class:`rszoo.training.data.TaskDataModule`."""

    def factory(world_size: int, rank: int) -> WeightedMixtureSampler:
        return WeightedMixtureSampler(
            dataset,
            seed=seed,
            samples_per_epoch=samples_per_epoch,
            num_replicas=world_size,
            rank=rank,
            batch_size=batch_size,
            group_by_length=group_by_length,
        )

    return factory
