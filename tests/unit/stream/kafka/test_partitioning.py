"""The batch partitioner chooses what Kafka's (and aiokafka's) default partitioner chooses, key by key."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner, murmur2

from stream.kafka.partitioning import murmur2_many, partitions_for_keys


def random_keys(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randrange(0, 41)) for _ in range(count)]


def test_murmur2_matches_aiokafka_for_every_length_and_byte():
    keys = [*random_keys(3000, seed=1), b"", b"a", b"ab", b"abc", b"abcd", b"\xff" * 9, b"\x00" * 7]
    assert murmur2_many(keys).tolist() == [murmur2(key) for key in keys]


def test_keys_of_one_length_and_event_ids():
    ids = [f"tp-{i}".encode() for i in range(1000)] + [str(i).encode() for i in range(300)]
    assert murmur2_many(ids).tolist() == [murmur2(key) for key in ids]


def test_partitions_are_the_default_partitioners():
    keys = random_keys(2000, seed=2)
    for partitions in ([0], [0, 1, 2, 3], [2, 5, 7], list(range(12))):
        expected = [DefaultPartitioner()(key, partitions, partitions) for key in keys]
        assert partitions_for_keys(keys, partitions) == expected


def test_no_keys_no_partitions():
    assert partitions_for_keys([], [0, 1]) == []
