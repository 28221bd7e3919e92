"""Which texts of a batch go through the model together: forward passes planned by what they cost.

A batch is sorted by token length (longest first) and cut into forward passes, each padded to its own longest text.
On a CPU a pass costs about a fixed overhead (the modules' Python calls, the weights read once per pass, int8's per-call
quantization of its input) plus its padded tokens, so the cheapest cut is where the two balance: :func:`plan_passes`
finds it exactly (a dynamic programme over the sorted lengths). For the int8 MiniLM on one thread the overhead is worth
20-40 tokens, about a text, and the plan costs up to 29% less CPU per text than the rule before it
(``bench/pass_planning.py``); for a 1-layer model the overhead is worth about a thousand tokens and the plan is full
passes.
On a GPU a pass costs mostly its overhead (docs/benchmarks.md): :func:`full_passes`.

:func:`overhead_in_tokens` turns two timed passes into that overhead, so that a worker's plan fits its model and its
machine; everything else plans with a fixed overhead, so that the same texts always score the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# What one more pass of the int8 MiniLM costs on one thread of the 2-core machine (timed at 15-42 tokens): every
# classifier plans with it unless it times its own (``EmotionClassifier.time_pass_overhead``; the worker does).
FIXED_OVERHEAD_TOKENS = 24.0


def full_passes(lengths: Sequence[int], most: int) -> list[np.ndarray]:
    """Index arrays of ``most`` texts each (the last may hold fewer), longest texts first."""
    return _chunks(_longest_first(lengths), most)


def plan_passes(lengths: Sequence[int], most: int, overhead_tokens: float) -> list[np.ndarray]:
    """Index arrays, one per forward pass and together covering every text once, that minimise the plan's cost: per
    pass ``overhead_tokens`` plus its padded tokens (texts x its longest), with at most ``most`` texts a pass.

    Each pass is a run of the texts sorted by length, longest first: the cheapest plan is always one of those (the unit
    tests check it against every grouping of small batches). The longest texts come first, as in :func:`full_passes`."""
    if most < 1:
        raise ValueError("a pass holds at least one text")
    order = _longest_first(lengths)
    if not len(order):
        return []
    sorted_lengths = np.asarray(lengths, dtype=np.int64)[order].tolist()
    if overhead_tokens >= most * sorted_lengths[0]:
        # Full passes pad at most `most * longest` tokens in all (their waste telescopes down the sorted lengths), so
        # they cost at most one pass's overhead more than the best plan: the search (6 us a text) is skipped.
        return _chunks(order, most)
    count = len(sorted_lengths)
    # best[j]: the cheapest plan for the j longest texts; start[j]: where its last pass starts. A pass i..j-1 is padded
    # to sorted_lengths[i], its first (and longest) text.
    best = [0.0] * (count + 1)
    start = [0] * (count + 1)
    for end in range(1, count + 1):
        cheapest, cut = float("inf"), 0
        for first in range(max(0, end - most), end):
            cost = best[first] + (end - first) * sorted_lengths[first]
            if cost < cheapest:
                cheapest, cut = cost, first
        best[end], start[end] = cheapest + overhead_tokens, cut
    bounds = []
    end = count
    while end:
        bounds.append((start[end], end))
        end = start[end]
    return [order[first:end] for first, end in reversed(bounds)]


def _longest_first(lengths: Sequence[int]) -> np.ndarray:
    return np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")


def _chunks(order: np.ndarray, most: int) -> list[np.ndarray]:
    return [order[start : start + most] for start in range(0, len(order), most)]


def overhead_in_tokens(one_pass: float, many_pass: float, texts: int, length: int, *, ceiling: float) -> float:
    """A pass's fixed cost in tokens, from the time of a pass of one text of ``length`` tokens (``one_pass``) and of
    ``texts`` such texts (``many_pass``): the extra texts give the cost of a token, the rest of the one-text pass is the
    overhead. ``ceiling`` when the timings do not show a token costing anything (a model so small its passes are all
    overhead, or a noisy measurement): then passes are never cut short."""
    if texts < 2 or length < 1:
        raise ValueError("timing needs passes of one and of several texts, at least one token long")
    per_token = (many_pass - one_pass) / ((texts - 1) * length)
    if per_token <= 0:
        return ceiling
    return float(min(ceiling, max(0.0, one_pass / per_token - length)))
