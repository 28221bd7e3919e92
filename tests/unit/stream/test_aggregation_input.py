"""The aggregation input's wire format: packed records per partition, split by size, read back with the keyed one."""

from __future__ import annotations

import orjson

from stream.aggregation_input import PACKED_MAX_BYTES, packed_records, read_entries


def test_keys_are_packed_into_one_record_per_partition_in_order():
    by_key = {
        "chat": [["joy", 0.9, 1, "a", "chat"]],
        "web": [["fear", 0.5, 2, "b", "web"]],
        "*": [["x", 1, 3, "c", "d"]],
    }
    records = packed_records(by_key, [1, 3, 1])
    assert [(partition, orjson.loads(value)) for partition, value in records] == [
        (1, [["chat", by_key["chat"]], ["*", by_key["*"]]]),
        (3, [["web", by_key["web"]]]),
    ]


def test_a_partitions_record_is_split_before_it_outgrows_the_limit():
    entry = ["joy", 0.5, 1_700_000_000_000, "e" * 100, "s" * 100]
    by_key = {f"source-{i}": [entry] * 100 for i in range(30)}  # ~25 KiB a key, ~750 KiB in all
    records = packed_records(by_key, [0] * 30)
    assert len(records) > 1 and all(partition == 0 for partition, _ in records)
    assert all(len(value) <= PACKED_MAX_BYTES for _, value in records)
    read = [pair for _, value in records for pair in read_entries(None, value)]
    assert read == list(by_key.items())  # nothing lost or reordered


def test_one_keys_entries_stay_in_one_record_whatever_their_size():
    big = {"*": [["joy", 0.5, 1, "e" * 1000, "s"]] * 300}
    [(partition, value)] = packed_records(big, [2])
    assert partition == 2 and len(value) > PACKED_MAX_BYTES and read_entries(None, value) == list(big.items())


def test_a_keyed_record_of_the_earlier_format_reads_as_its_keys_entries():
    entries = [["joy", 0.9, 1_000, "a", "chat"]]
    assert read_entries(b"chat", orjson.dumps(entries)) == [("chat", entries)]
