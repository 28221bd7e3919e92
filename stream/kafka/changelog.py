"""Writes to a Faust table whose changelog records go out with the batch producer, a partition batch at a time.

``table[key] = value`` sends the key's changelog record through Faust's ``Topic.send_soon``: a ``FutureMessage``, the
producer buffer's queue and an aiokafka ``send`` per write. That is fine for one write per event. The aggregate agent
writes one key per aggregation key of a micro-batch, though: with 500 sources that is one changelog send per event,
about a quarter of the worker's CPU per event in its profile (docs/benchmarks.md, issue 9).

:class:`TableWriter` does what ``Table.__setitem__`` does for a plain (not windowed) table, with the send deferred:
the value goes into the table's store at once (so later reads in the same event see it), and the changelog record
(key and value serialized by the changelog topic itself, to the current event's partition, as Faust's
``Table.on_key_set`` sends it) is kept until :meth:`TableWriter.take` hands the records to ``stream.delivery``, which
sends them with the event's other outputs before the agent lets the event go (so before its offset can be
committed). Recovery reads these records as it reads Faust's own. :meth:`TableWriter.delivered` then records the
changelog offsets a persistent store keeps (RocksDB: where its recovery starts), as Faust's ``_on_changelog_sent``
does for each record.
"""

from __future__ import annotations

from typing import Any, Protocol

import faust
from faust.streams import current_event
from faust.types import TP

from stream.delivery import Outgoing


class DeliveredOffsets(Protocol):
    """What :meth:`TableWriter.delivered` needs of the sender: the last offset it delivered to a partition."""

    def delivered_offset(self, topic: str, partition: int) -> int | None: ...


class TableWriter:
    """Sets keys of ``table`` while an event is current and collects their changelog records."""

    def __init__(self, table: faust.TableT) -> None:
        if table.use_partitioner:
            # Its changelog partition would be the producer's choice, not the event's: Faust's own path handles that.
            raise ValueError(f"{table.name}: TableWriter writes tables whose changelog follows the event's partition")
        self.table = table
        self._pending: list[Outgoing] = []

    def set(self, key: Any, value: Any) -> None:
        """``table[key] = value``, with the changelog record kept for :meth:`take`. Only while an event is current
        (as for Faust's own writes): the record goes to that event's partition."""
        event = current_event()
        if event is None:
            raise RuntimeError("a table can be changed only while an event is current")
        partition = event.message.partition
        table = self.table
        table.data[key] = value  # the store, as ManagedUserDict.__setitem__ does after Table.on_key_set
        table.app.sensors.on_table_set(table, key, value)  # Faust's monitor counts table writes (its /stats)
        topic = table.changelog_topic
        key_bytes, _ = topic.prepare_key(key, table.key_serializer)
        value_bytes, _ = topic.prepare_value(value, table.value_serializer)
        self._pending.append(Outgoing(topic.get_topic_name(), value_bytes, key=key_bytes, partition=partition))

    def take(self) -> list[Outgoing]:
        """The changelog records written since the last call, to be delivered before the event is let go."""
        pending, self._pending = self._pending, []
        return pending

    def delivered(self, records: list[Outgoing], sender: DeliveredOffsets) -> None:
        """After ``records`` (what :meth:`take` returned) were delivered: note, per partition they went to, the last
        changelog offset the store now holds (a no-op for the memory store)."""
        topic = self.table.changelog_topic.get_topic_name()
        for partition in {record.partition for record in records}:
            offset = sender.delivered_offset(topic, partition)
            if offset is not None:
                self.table.data.set_persisted_offset(TP(topic, partition), offset)
