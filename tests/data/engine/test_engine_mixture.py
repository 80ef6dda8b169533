"""MixtureDataset and WeightedMixtureSampler: weighted frequencies, exact mid-epoch resumption, disjoint rank
coverage, static mixing, length-aware batching and determinism."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import chisquare
from torch.utils.data import DataLoader

from rszoo.data.engine.mixture import (
    MixtureDataset,
    MixtureKey,
    WeightedMixtureSampler,
    build_mixture,
    estimate_tokens,
    mixture_sampler_factory,
)
from rszoo.data.engine.recipe import DataRecipeError, load_data_recipe
from rszoo.recipes import RECIPES_DIR

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "engine"
EXAMPLE = str(RECIPES_DIR / "rscovlm" / "data" / "example_five_subsets.yaml")
PIXELS = {"min_pixels": 56 * 56, "max_pixels": 448 * 448}


@pytest.fixture(scope="module")
def mixture() -> MixtureDataset:
    return build_mixture(EXAMPLE, seed=3, overrides={"root": str(FIX)}, **PIXELS)


def test_dataset_layout_and_keys(mixture):
    assert mixture.subset_names == [
        "dota_det",
        "refgeo_grounding",
        "rsvqa_lr",
        "lrsvqa_zoom",
        "geochat_instruct",
    ]
    assert mixture.subset_sizes == [2, 3, 3, 3, 4] and len(mixture) == 15
    assert mixture.locate(0) == (0, 0) and mixture.locate(2) == (1, 0) and mixture.locate(14) == (4, 3)
    assert mixture.reports["dota_det"].degenerate_dropped == 1
    row = mixture[MixtureKey(5, 2, 1)]
    assert (
        set(row) == {"id", "task", "subset", "messages"}
        and row["subset"] == "rsvqa_lr"
        and row["task"] == "vqa"
    )
    assert mixture[5] == mixture.sample(5, 0, 0)
    with pytest.raises(IndexError):
        mixture.locate(15)


def test_weighted_frequencies_converge_to_the_weights(mixture):
    n = 20000
    sampler = WeightedMixtureSampler(mixture, seed=11, samples_per_epoch=n)
    keys = sampler.epoch_draw(0)
    counts = np.bincount([mixture.locate(k.index)[0] for k in keys], minlength=5)
    p = np.array(mixture.weights) / sum(mixture.weights)  # 3, 2, 1, 1, 1
    assert chisquare(counts, n * p).pvalue > 1e-3
    assert np.all(np.abs(counts - n * p) < 4 * np.sqrt(n * p * (1 - p)))
    # within a subset: each record once per round before any repeats; rounds are the occurrences
    for s, size in enumerate(mixture.subset_sizes):
        mine = [k for k in keys if mixture.locate(k.index)[0] == s]
        per_item = Counter(k.index for k in mine)
        assert max(per_item.values()) - min(per_item.values()) <= 1 and len(per_item) == size
        for index in per_item:
            assert sorted(k.occurrence for k in mine if k.index == index) == list(range(per_item[index]))


def test_zero_weight_subsets_are_never_drawn():
    data = build_mixture(
        EXAMPLE, seed=0, overrides={"root": str(FIX), "subsets.dota_det.weight": 0}, **PIXELS
    )
    keys = WeightedMixtureSampler(data, seed=0, samples_per_epoch=500).epoch_draw(0)
    assert all(data.locate(k.index)[0] != 0 for k in keys)


def test_draws_are_deterministic_per_seed_and_epoch(mixture):
    a = WeightedMixtureSampler(mixture, seed=5, samples_per_epoch=300)
    b = WeightedMixtureSampler(mixture, seed=5, samples_per_epoch=300)
    assert a.epoch_draw(1) == b.epoch_draw(1) and a.epoch_draw(1) != a.epoch_draw(2)
    assert a.epoch_draw(1) != WeightedMixtureSampler(mixture, seed=6, samples_per_epoch=300).epoch_draw(1)
    assert all(k.epoch == 1 for k in a.epoch_draw(1))


@pytest.mark.parametrize(("replicas", "group"), [(1, False), (2, False), (2, True)])
def test_resuming_after_k_samples_continues_exactly(mixture, replicas, group):
    def make():
        return [
            WeightedMixtureSampler(
                mixture,
                seed=9,
                samples_per_epoch=61,
                num_replicas=replicas,
                rank=r,
                batch_size=2,
                group_by_length=group,
            )
            for r in range(replicas)
        ]

    full = make()
    for s in full:
        s.set_epoch(2)
    orders = [list(s) for s in full]
    for consumed in (0, 6, 17, len(orders[0])):
        resumed = make()
        for s, original in zip(resumed, full):
            state = original.state_dict(consumed)
            assert set(state) == {"epoch", "consumed_global", "seed", "size"}
            assert state == {"epoch": 2, "consumed_global": consumed * replicas, "seed": 9, "size": 61}
            s.load_state_dict(state)
        assert [list(s) for s in resumed] == [o[consumed:] for o in orders]
        for s in resumed:  # the next epoch starts from the beginning again
            s.set_epoch(3)
        assert [list(s) for s in resumed] == [list(s) for s in _at_epoch(make(), 3)]


def _at_epoch(samplers, epoch):
    for s in samplers:
        s.set_epoch(epoch)
    return samplers


def test_resume_state_is_checked(mixture):
    sampler = WeightedMixtureSampler(mixture, seed=1, samples_per_epoch=40)
    with pytest.raises(ValueError, match="checkpoint was made with 50 samples per epoch and seed 1"):
        sampler.load_state_dict({"epoch": 0, "consumed_global": 4, "seed": 1, "size": 50})
    two = WeightedMixtureSampler(mixture, seed=1, samples_per_epoch=40, num_replicas=2)
    with pytest.raises(ValueError, match="does not split evenly"):
        two.load_state_dict({"epoch": 0, "consumed_global": 5, "seed": 1, "size": 40})


@pytest.mark.parametrize("group", [False, True])
def test_two_ranks_get_disjoint_complete_coverage(mixture, group):
    size = 101
    ranks = [
        WeightedMixtureSampler(
            mixture,
            seed=4,
            samples_per_epoch=size,
            num_replicas=2,
            rank=r,
            batch_size=3,
            group_by_length=group,
        )
        for r in range(2)
    ]
    r0, r1 = (list(s) for s in ranks)
    order = list(ranks[0].epoch_order(0))
    assert len(r0) == len(r1) == len(ranks[0]) == 51
    padded = order + order[: 2 * 51 - size]
    assert r0 == padded[0::2] and r1 == padded[1::2]  # disjoint positions, together the whole epoch (+1 pad)
    assert Counter(r0) + Counter(r1) == Counter(order) + Counter(order[:1])
    assert Counter(order) == Counter(ranks[0].epoch_draw(0))  # grouping only reorders


def test_static_mixing_reproduces_the_reference_list():
    data = build_mixture(
        EXAMPLE,
        seed=0,
        overrides={
            "root": str(FIX),
            "samples_per_epoch": None,
            "static": ["dota_det*2", "refgeo_grounding%67", "geochat_instruct"],
        },
        **PIXELS,
    )
    plan = data.static_plan()
    # refgeo has 3 records after offline processing: int(3 * 0.67) = 2, chosen by random.Random(42).sample
    import random

    refgeo = [data.offsets[1] + i for i in random.Random(42).sample(range(3), 2)]
    assert [(k.index, k.occurrence) for k in plan] == [(0, 0), (1, 0), (0, 1), (1, 1)] + [
        (i, 0) for i in refgeo
    ] + [(data.offsets[4] + i, 0) for i in range(4)]
    sampler = WeightedMixtureSampler(data, seed=2)
    assert sampler.size == len(plan) == 10
    epoch0 = list(sampler)
    assert sorted((k.index, k.occurrence) for k in epoch0) == sorted((k.index, k.occurrence) for k in plan)
    sampler.set_epoch(1)
    assert list(sampler) != epoch0 and Counter(k.index for k in sampler) == Counter(k.index for k in plan)
    with pytest.raises(ValueError, match="samples_per_epoch cannot be set with a static mixing recipe"):
        WeightedMixtureSampler(data, seed=2, samples_per_epoch=5)


def _padding_fraction(lengths: list[int], batch: int) -> float:
    padded = total = 0
    for i in range(0, len(lengths), batch):
        chunk = lengths[i : i + batch]
        padded += max(chunk) * len(chunk)
        total += sum(chunk)
    return (padded - total) / padded


def test_length_grouping_reduces_padding(mixture):
    kwargs = {"seed": 0, "samples_per_epoch": 400, "batch_size": 4}
    plain = WeightedMixtureSampler(mixture, **kwargs)
    grouped = WeightedMixtureSampler(mixture, group_by_length=True, megabatch_mult=20, **kwargs)
    lengths_plain = [mixture.estimate_tokens(k) for k in plain]
    keys_grouped = list(grouped)
    lengths_grouped = [mixture.estimate_tokens(k) for k in keys_grouped]
    assert sorted(lengths_plain) == sorted(lengths_grouped)  # the same samples, reordered
    random_pad, grouped_pad = _padding_fraction(lengths_plain, 4), _padding_fraction(lengths_grouped, 4)
    assert grouped_pad < 0.5 * random_pad, (random_pad, grouped_pad)
    # mega-batches of 80 samples: sorted by length inside, whole batches of 4 shuffled
    first = lengths_grouped[:80]
    batches = [first[i : i + 4] for i in range(0, 80, 4)]
    assert all(b == sorted(b, reverse=True) for b in batches)
    assert [b[0] for b in batches] != sorted((b[0] for b in batches), reverse=True)


def test_token_estimate():
    row = {
        "messages": [
            {"role": "system", "content": "abcdefgh"},
            {
                "role": "user",
                "content": [{"type": "image", "image": "x", "resized_width": 112, "resized_height": 56}],
            },
            {"role": "assistant", "content": "12,34 ship\n"},
        ]
    }
    # 3 turns x 5 + system 2 + image (112 * 56 / 784 = 8) + 2 markers + 4 digits + ceil(7 / 4)
    assert estimate_tokens(row) == 15 + 2 + 8 + 2 + 4 + math.ceil(7 / 4)


def test_same_seed_same_samples_through_a_dataloader(mixture):
    def run(seed):
        data = build_mixture(
            EXAMPLE, seed=seed, overrides={"root": str(FIX), "online.prob_synonym": 0.5}, **PIXELS
        )
        sampler = mixture_sampler_factory(data, batch_size=3, seed=seed, samples_per_epoch=30)(1, 0)
        loader = DataLoader(data, batch_size=3, sampler=sampler, collate_fn=list)
        return [json.dumps(row) for batch in loader for row in batch]

    first, again, other = run(0), run(0), run(1)
    assert first == again and len(first) == 30 and first != other


def test_factory_defaults_and_errors(mixture):
    factory = mixture_sampler_factory(mixture, batch_size=2, seed=1)
    sampler = factory(4, 3)
    assert (sampler.num_replicas, sampler.rank, sampler.size, len(sampler)) == (4, 3, 20000, 5000)
    with pytest.raises(ValueError, match=r"rank must be in \[0, num_replicas=2\)"):
        WeightedMixtureSampler(mixture, num_replicas=2, rank=2)
    recipe = load_data_recipe(
        EXAMPLE, {"root": str(FIX), "subsets.dota_det.source.labels": str(FIX / "classification")}
    )
    with pytest.raises(DataRecipeError, match="subset 'dota_det' has no records after offline processing"):
        MixtureDataset(recipe, **PIXELS)
