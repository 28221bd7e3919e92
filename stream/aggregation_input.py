"""The aggregation input's wire format: a micro-batch's entries, one record per partition of the aggregation topic.

The classify path groups a batch's labelled events by aggregation key (``stream.labelling.aggregation_input``: each
source, and ``*``). The aggregate agent is a Faust agent, so every record it reads costs Faust's per-event path
(fetch hand-over, stream, conductor, acks), tens of microseconds each; one record per key made that per-event again
as soon as a batch held many sources (500 sources: one record per event, the worker's CPU per event up twelvefold,
docs/benchmarks.md). So the keys are packed: one unkeyed record per partition, sent to that partition explicitly,
holding ``[key, entries]`` for every key that lives there. Each key still lives in the partition Kafka's default
partitioner gives it (``stream.kafka.partitioning``), so its table state and changelog stay where keyed records put
them, and state written before the change is found again.

Record kinds on the topic:

- packed (unkeyed): ``[[key, [[label, score, ts, id, source], ...]], ...]``, what this module writes;
- keyed (the record key is the aggregation key): ``[[label, score, ts, id, source], ...]``, what workers before the
  packed format wrote, still read so that a topic holding both is aggregated in full;
- a window tick (``stream.ticks``): a JSON object.

Workers from before the packed format cannot read it: the aggregate agent of one raises on a packed record (it has
no key to decode), and Faust skips that record once the agent restarts, so its events would be missing from that
worker's windows. Upgrade by stopping every worker before starting the new version (README); the new one reads what
the old ones left on the topic.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

# A packed record is split past this size: a partition batch of records stays well under Kafka's usual 1 MiB limit
# (a single key's entries go in one record whatever their size, as they did keyed).
PACKED_MAX_BYTES = 256 * 1024


def packed_records(by_key: dict[str, list[list]], partitions: Sequence[int]) -> list[tuple[int, bytes]]:
    """``by_key``'s entries as packed records, each with the partition to send it to (``partitions[i]`` is the
    partition of the ``i``-th key of ``by_key``); at most one record per partition unless one grows past
    ``PACKED_MAX_BYTES``."""
    parts: dict[int, list[bytes]] = {}
    sizes: dict[int, int] = {}
    records: list[tuple[int, bytes]] = []
    for (key, entries), partition in zip(by_key.items(), partitions, strict=True):
        item = orjson.dumps([key, entries])
        pending = parts.setdefault(partition, [])
        if pending and sizes[partition] + len(item) > PACKED_MAX_BYTES:
            records.append((partition, _joined(pending)))
            pending.clear()
            sizes[partition] = 0
        pending.append(item)
        sizes[partition] = sizes.get(partition, 0) + len(item) + 1
    records += [(partition, _joined(items)) for partition, items in parts.items() if items]
    return records


def read_entries(key: bytes | None, value: bytes) -> list[tuple[str, list]]:
    """The ``(aggregation key, entries)`` pairs of a record that is not a tick: a packed record's, or the one of a
    keyed record (the earlier format)."""
    decoded = orjson.loads(value)
    if key is None:
        return [(name, entries) for name, entries in decoded]
    return [(key.decode(), decoded)]


def _joined(items: list[bytes]) -> bytes:
    return b"[" + b",".join(items) + b"]"
