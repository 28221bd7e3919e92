"""Sending a micro-batch's output records a partition batch at a time, through the app's own aiokafka producer.

Faust's ``Topic.send`` costs a coroutine, a ``FutureMessage``, callbacks and a future per record, and aiokafka's
``send`` a size estimate and an accumulator append per record; for a micro-batch of hundreds of labelled events that
was about a fifth of the worker's event loop (docs/benchmarks.md, issue 9). Here the records are grouped by topic and
partition (a record's own ``partition`` if it names one, else the key's partition by Kafka's default murmur2
partitioner, as ``send`` would choose it, computed for all keys at once by ``stream.kafka.partitioning``; unkeyed
records of one call share one partition, as Kafka's sticky partitioner does), appended to aiokafka batch builders
and handed over with ``send_batch``: one future per partition batch.

Each record still gets its own outcome (``stream.delivery``): the records of a batch that fails are sent again one at
a time with ``send``, so a record the broker refuses (too large, a timestamp it rejects) is told apart from the rest,
which go through. The producer is Faust's, so Faust's flush before every offset commit covers these batches too.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from typing import Any

from aiokafka import AIOKafkaProducer

from stream.delivery import Outgoing
from stream.kafka.compat import require_attributes
from stream.kafka.partitioning import partitions_for_keys

# A record this large goes on its own: in a batch the broker would refuse the whole batch for it.
ALONE_ABOVE_BYTES = 256 * 1024

Failures = list[tuple[Outgoing, BaseException]]


def faust_producer(app: Any) -> Callable[[], AIOKafkaProducer]:
    """The aiokafka producer under a Faust app's producer, once the app has started it."""

    def producer() -> AIOKafkaProducer:
        return app.producer._ensure_producer()

    require_attributes(app.producer, ["_ensure_producer"], "micro-batch outputs sent through Faust's producer")
    return producer


class BatchSender:
    """A ``stream.delivery.Sender`` over an aiokafka producer (``producer()`` returns it once the app has started)."""

    def __init__(self, producer: Callable[[], AIOKafkaProducer]) -> None:
        self._producer = producer
        self._offsets: dict[tuple[str, int], int] = {}  # (topic, partition) -> the last offset delivered there

    async def send_all(self, records: list[Outgoing]) -> Failures:
        """Send ``records``; the ones that failed, with why."""
        producer = self._producer()
        alone: list[Outgoing] = []
        submitted: list[tuple[list[Outgoing], asyncio.Future]] = []
        try:
            groups = await self._by_partition(records, alone)
        except Exception as exc:  # no metadata (broker down, topic missing): the broker's failure, for every record
            return [(record, exc) for record in records]
        for (topic, partition), group in groups.items():
            for batch, members in self._batches(producer, group, alone):
                try:
                    submitted.append((members, await producer.send_batch(batch, topic, partition=partition)))
                except Exception:
                    alone += members
        for members, _ in await _failed(submitted, self._note_batch):
            alone += members  # which of them is at fault, if any, shows when each goes on its own
        return await self._send_each(producer, alone) if alone else []

    def delivered_offset(self, topic: str, partition: int) -> int | None:
        """The offset of the last record this sender delivered to ``topic``'s ``partition`` (None: none yet)."""
        return self._offsets.get((topic, partition))

    def _note_batch(self, members: list[Outgoing], metadata: Any) -> None:
        # A batch's metadata carries its first record's offset; its records follow it one by one.
        self._note(metadata.topic, metadata.partition, metadata.offset + len(members) - 1)

    def _note_record(self, record: Outgoing, metadata: Any) -> None:
        self._note(metadata.topic, metadata.partition, metadata.offset)

    def _note(self, topic: str, partition: int, offset: int) -> None:
        key = (topic, partition)
        if offset > self._offsets.get(key, -1):
            self._offsets[key] = offset

    async def partitions(self, topic: str) -> list[int]:
        """``topic``'s partitions, sorted (from the producer's metadata, fetched if it has none yet)."""
        return sorted(await self._producer().partitions_for(topic))

    async def _by_partition(
        self, records: list[Outgoing], alone: list[Outgoing]
    ) -> dict[tuple[str, int], list[Outgoing]]:
        by_topic: dict[str, list[Outgoing]] = {}
        for record in records:
            if len(record.value) + len(record.key or b"") > ALONE_ABOVE_BYTES:
                alone.append(record)
            else:
                by_topic.setdefault(record.topic, []).append(record)
        groups: dict[tuple[str, int], list[Outgoing]] = {}
        for topic, members in by_topic.items():
            known = await self.partitions(topic)
            unkeyed = random.choice(known)
            hashed = [record for record in members if record.partition is None and record.key is not None]
            keyed = iter(partitions_for_keys([record.key for record in hashed], known))
            for record in members:
                if record.partition is not None:
                    partition = record.partition
                elif record.key is None:
                    partition = unkeyed
                else:
                    partition = next(keyed)
                groups.setdefault((topic, partition), []).append(record)
        return groups

    @staticmethod
    def _batches(
        producer: AIOKafkaProducer, group: list[Outgoing], alone: list[Outgoing]
    ) -> Iterator[tuple[Any, list[Outgoing]]]:
        """Batch builders filled with ``group`` (a new one when one is full); a record a builder cannot take (say, a
        timestamp it cannot encode) goes to ``alone``."""
        batch, members = producer.create_batch(), []
        for record in group:
            appended = _append(batch, record)
            if appended is None and members:  # full: hand this one over and start the next
                yield batch, members
                batch, members = producer.create_batch(), []
                appended = _append(batch, record)
            if appended is None:
                alone.append(record)
            else:
                members.append(record)
        if members:
            yield batch, members

    async def _send_each(self, producer: AIOKafkaProducer, records: list[Outgoing]) -> Failures:
        failures: Failures = []
        sent: list[tuple[Outgoing, asyncio.Future]] = []
        for record in records:
            try:
                future = await producer.send(
                    record.topic,
                    record.value,
                    key=record.key,
                    partition=record.partition,
                    timestamp_ms=record.timestamp_ms,
                )
            except Exception as exc:  # refused before it left (size, timestamp encoding) or the producer is down
                failures.append((record, exc))
            else:
                sent.append((record, future))
        return failures + await _failed(sent, self._note_record)


def _append(batch: Any, record: Outgoing) -> Any:
    """Append ``record`` to an aiokafka batch builder: its metadata, or None if the builder is full or cannot encode
    the record (a timestamp out of range, say)."""
    try:
        return batch.append(timestamp=record.timestamp_ms, key=record.key, value=record.value)
    except Exception:
        return None


async def _failed(
    submitted: list[tuple[Any, asyncio.Future]], delivered: Callable[[Any, Any], None]
) -> list[tuple[Any, BaseException]]:
    """Wait for every future; each item whose future failed, with its exception (a cancellation is raised). For the
    others, ``delivered(item, metadata)``."""
    results = await asyncio.gather(*(future for _, future in submitted), return_exceptions=True)
    failed = []
    for (item, _), result in zip(submitted, results, strict=True):
        if isinstance(result, asyncio.CancelledError):
            raise result
        if isinstance(result, BaseException):
            failed.append((item, result))
        else:
            delivered(item, result)
    return failed
