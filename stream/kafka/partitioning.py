"""Kafka's default partitioner for a whole micro-batch of keys at once.

A keyed record goes to ``murmur2(key) & 0x7fffffff`` modulo the topic's partition count, as every Kafka client's
default partitioner chooses it, so that one key always lands in one partition whoever produces it. aiokafka computes
murmur2 in pure Python, byte by byte: about 1.4 us per key, one of the largest per-event costs left in the worker
(docs/benchmarks.md). Here the keys of a batch are hashed together as rows of a numpy array (uint32 arithmetic wraps
as murmur2's does): about 0.12 us per key for a micro-batch of 512 (``bench/classify_steps.py``), with the same
result as ``aiokafka.partitioner.murmur2`` for every key (unit-tested against it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_SEED = 0x9747B28C
_M = np.uint32(0x5BD1E995)  # murmur2's mixing constant; uint32 so that products wrap at 32 bits


def murmur2_many(keys: Sequence[bytes]) -> np.ndarray:
    """murmur2 of each key, as Kafka's Java client and ``aiokafka.partitioner.murmur2`` compute it (uint32)."""
    count = len(keys)
    lengths = np.fromiter(map(len, keys), dtype=np.int64, count=count)
    width = max(4, -(-int(lengths.max(initial=0)) // 4) * 4)  # whole 4-byte words, zero-padded
    padded = b"".join([key.ljust(width, b"\0") for key in keys])
    words = np.frombuffer(padded, dtype=np.uint8).reshape(count, width).view("<u4")
    whole_words = lengths >> 2
    hashed = np.uint32(_SEED) ^ lengths.astype(np.uint32)
    for column in range(words.shape[1]):
        word = words[:, column] * _M
        word ^= word >> np.uint32(24)
        word *= _M
        # Only the key's whole words are mixed in this way; a shorter key keeps its hash for this column.
        hashed = np.where(whole_words > column, (hashed * _M) ^ word, hashed)
    # The last 1-3 bytes, zero-padded, are the next word's value: XOR it in and mix, for keys that have them.
    tail = words[np.arange(count), np.minimum(whole_words, words.shape[1] - 1)]
    hashed = np.where(lengths & 3, (hashed ^ tail) * _M, hashed)
    hashed ^= hashed >> np.uint32(13)
    hashed *= _M
    hashed ^= hashed >> np.uint32(15)
    return hashed


def partitions_for_keys(keys: Sequence[bytes], partitions: Sequence[int]) -> list[int]:
    """The partition of each key among ``partitions`` (the topic's, sorted by id), as Kafka's default partitioner
    (and aiokafka's ``DefaultPartitioner``) chooses it."""
    if not keys:
        return []
    indices = (murmur2_many(keys) & np.uint32(0x7FFFFFFF)) % len(partitions)
    return [partitions[index] for index in indices.tolist()]
