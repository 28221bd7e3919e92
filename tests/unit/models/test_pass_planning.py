"""Forward passes planned by cost: every text once, runs of the length order, and no grouping cheaper."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from models.pass_planning import full_passes, overhead_in_tokens, plan_passes


def cost(passes, lengths, overhead):
    return sum(overhead + len(p) * max(lengths[i] for i in p) for p in passes)


def set_partitions(items):
    """Every way to split ``items`` into non-empty groups."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for partition in set_partitions(rest):
        yield [[first], *partition]
        for i in range(len(partition)):
            yield [*partition[:i], [first, *partition[i]], *partition[i + 1 :]]


def test_full_passes_are_chunks_of_the_length_order():
    passes = full_passes([3, 10, 1, 7, 7], 2)
    assert [p.tolist() for p in passes] == [[1, 3], [4, 0], [2]]


def test_a_plan_covers_each_text_once_in_runs_of_the_length_order():
    rng = random.Random(1)
    lengths = [rng.randint(3, 66) for _ in range(300)]
    passes = plan_passes(lengths, 32, 20.0)
    assert sorted(np.concatenate(passes).tolist()) == list(range(300))
    assert all(1 <= len(p) <= 32 for p in passes)
    flat = [lengths[i] for p in passes for i in p]
    assert flat == sorted(lengths, reverse=True)  # longest first, each pass a run of the sorted lengths
    assert plan_passes([], 32, 20.0) == []


@pytest.mark.parametrize("seed", range(12))
def test_no_grouping_of_the_texts_costs_less_than_the_plan(seed):
    rng = random.Random(seed)
    lengths = [rng.randint(1, 40) for _ in range(rng.randint(1, 7))]
    most, overhead = rng.randint(1, 4), rng.choice([0.0, 3.0, 15.0, 60.0])
    planned = cost(plan_passes(lengths, most, overhead), lengths, overhead)
    allowed = (g for g in set_partitions(list(range(len(lengths)))) if all(len(p) <= most for p in g))
    assert planned == min(cost(g, lengths, overhead) for g in allowed)


def test_the_overhead_decides_between_padding_and_passes():
    lengths = [20] * 8 + [80] * 8
    cheap = plan_passes(lengths, 32, 10.0)  # padding eight short texts to 80 costs 480 tokens: worth another pass
    assert [sorted(p.tolist()) for p in cheap] == [list(range(8, 16)), list(range(8))]
    dear = plan_passes(lengths, 32, 500.0)  # a pass costs more than that padding
    assert [len(p) for p in dear] == [16]
    assert [p.tolist() for p in plan_passes(lengths, 32, 32 * 80)] == [p.tolist() for p in full_passes(lengths, 32)]


def test_full_passes_are_within_one_overhead_of_the_plan_when_it_is_skipped():
    rng = random.Random(3)
    for _ in range(20):
        lengths = [rng.randint(1, 30) for _ in range(rng.randint(1, 9))]
        most = rng.randint(1, 4)
        overhead = most * max(lengths)  # the plan returns full passes from here on
        search = [list(g) for g in itertools.islice(set_partitions(list(range(len(lengths)))), 5000)]
        best = min(cost(g, lengths, overhead) for g in search if all(len(p) <= most for p in g))
        assert cost(full_passes(lengths, most), lengths, overhead) <= best + overhead


def test_overhead_in_tokens_from_two_timed_passes():
    # 0.5 ms a token and 10 ms for a pass of one 16-token text: 8 ms of it is overhead, 16 tokens' worth.
    assert overhead_in_tokens(0.010, 0.010 + 7 * 16 * 0.0005, 8, 16, ceiling=4096) == pytest.approx(4.0)
    assert overhead_in_tokens(0.010, 0.009, 8, 16, ceiling=4096) == 4096  # no cost per token seen: never cut
    assert overhead_in_tokens(1.0, 1.0 + 1e-9, 8, 16, ceiling=4096) == 4096  # capped
    assert overhead_in_tokens(0.001, 0.1, 8, 16, ceiling=4096) == 0.0  # never below nothing
    with pytest.raises(ValueError, match="passes of one and of several"):
        overhead_in_tokens(0.01, 0.02, 1, 16, ceiling=4096)
    with pytest.raises(ValueError, match="at least one text"):
        plan_passes([3], 0, 1.0)
