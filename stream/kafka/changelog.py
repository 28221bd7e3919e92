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

Keys and values are serialized as the changelog topic's schema would. For a JSON table (the app's: no model types), a
string key and a dict value made of JSON's own types (all a key state holds) are encoded with plain ``orjson.dumps``,
which gives the bytes Faust's json codec gives them at under half the cost: the codec's options (non-string keys
allowed, datetimes in UTC) take orjson's slower path, and the schema and codec registry add their own layers
(docs/benchmarks.md). A value plain orjson refuses (a non-string key inside, another type) takes Faust's path.
"""

from __future__ import annotations

from typing import Any, Protocol

import faust
import orjson
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
        topic = table.changelog_topic
        # Whether plain orjson may write what Faust's json codec would (see the module docstring).
        serialization = (table.key_serializer, table.value_serializer, topic.key_type, topic.value_type)
        self._plain_json = serialization == ("json", "json", None, None)

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
        key_bytes, value_bytes = self.serialized(key, value)
        self._pending.append(
            Outgoing(table.changelog_topic.get_topic_name(), value_bytes, key=key_bytes, partition=partition)
        )

    def serialized(self, key: Any, value: Any) -> tuple[bytes, bytes]:
        """The changelog record's key and value, as the changelog topic's schema serializes them."""
        if self._plain_json and type(key) is str and type(value) is dict:
            try:
                # Datetimes passed through to the error: Faust's codec writes them in its own way.
                return orjson.dumps(key), orjson.dumps(value, option=orjson.OPT_PASSTHROUGH_DATETIME)
            except TypeError:  # more than JSON's own types (a non-string key inside, say)
                pass
        table = self.table
        topic = table.changelog_topic
        return topic.prepare_key(key, table.key_serializer)[0], topic.prepare_value(value, table.value_serializer)[0]

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
