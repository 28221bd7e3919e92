"""Command-line helpers around the topics: replay a jsonl file into a topic, print a topic as records arrive.

Plain aiokafka clients (no Faust app), so they work against any Kafka the worker uses.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stream.kafka.connection import KafkaConnection, client_options
from stream.kafka.refusals import start_client


async def produce_file(broker: str | KafkaConnection, topic: str, path: Path, rate: float | None = None) -> int:
    """Send each non-empty line of ``path`` as one record (bytes as they are); at most ``rate`` records/s if given."""
    with path.open("rb") as handle:
        values = [line.rstrip(b"\r\n") for line in handle if line.strip()]
    return await send_values(broker, topic, values, rate)


# Deliveries are checked (and the finished ones forgotten) once per this many records, not per record: a scan per record
# would go over every pending future each time while the broker lags behind the sender.
_CHECK_EVERY = 1_000


class NotDelivered(RuntimeError):
    """Records were handed to the producer but the broker never acknowledged them (aiokafka's ``flush`` does not
    raise: each record's failure is only in its own delivery future)."""

    def __init__(self, topic: str, failed: list[int], sent: int, cause: BaseException) -> None:
        shown = ", ".join(str(i + 1) for i in failed[:10]) + (", ..." if len(failed) > 10 else "")
        super().__init__(
            f"{len(failed)} of {sent} records sent to {topic} were not delivered (record {shown}, counting from 1): "
            f"{cause!r}"
        )
        self.topic, self.failed, self.sent = topic, failed, sent


async def send_values(
    broker: str | KafkaConnection, topic: str, values: Iterable[bytes], rate: float | None = None
) -> int:
    """Send ``values`` as records (no key), at most ``rate`` records/s if given; returns how many were sent, each one
    acknowledged by the broker. Raises :class:`NotDelivered` as soon as one delivery is known to have failed (the
    records not yet handed over are then not sent), or at the end, naming the failed records."""
    producer = AIOKafkaProducer(**client_options(broker), acks="all", linger_ms=5)
    await start_client(producer, broker)
    pending: list[tuple[int, asyncio.Future]] = []  # (index, delivery) not yet known to be delivered
    sent = 0
    started = time.monotonic()
    try:
        for value in values:
            pending.append((sent, await producer.send(topic, value)))
            sent += 1
            if sent % _CHECK_EVERY == 0:
                pending = _undelivered(topic, pending, sent)
            if rate:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        await producer.flush()
        _undelivered(topic, pending, sent)
    finally:
        await producer.stop()
    return sent


def _undelivered(topic: str, pending: list[tuple[int, asyncio.Future]], sent: int) -> list[tuple[int, asyncio.Future]]:
    """The deliveries still in flight; raises :class:`NotDelivered` if any finished with an error."""
    failed = [(i, error) for i, future in pending if future.done() and (error := _error(future)) is not None]
    if failed:
        raise NotDelivered(topic, [i for i, _ in failed], sent, failed[0][1])
    return [(i, future) for i, future in pending if not future.done()]


def _error(future: asyncio.Future) -> BaseException | None:
    return asyncio.CancelledError() if future.cancelled() else future.exception()


async def tail_topic(
    broker: str | KafkaConnection,
    topic: str,
    *,
    from_beginning: bool = False,
    limit: int | None = None,
    idle_timeout: float | None = None,
    write: Callable[[bytes], None] | None = None,
) -> int:
    """Print (or pass to ``write``) each record's value as it arrives; stop after ``limit`` records or when nothing
    arrived for ``idle_timeout`` seconds. Returns how many were seen."""
    write = write or (lambda value: (sys.stdout.buffer.write(value + b"\n"), sys.stdout.flush()))
    consumer = AIOKafkaConsumer(
        topic,
        **client_options(broker),
        group_id=None,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
    )
    await start_client(consumer, broker)
    seen = 0
    try:
        while limit is None or seen < limit:
            batch = await consumer.getmany(timeout_ms=int((idle_timeout or 1.0) * 1000))
            records = [record for records in batch.values() for record in records]
            if not records and idle_timeout is not None:
                break
            for record in records:
                write(record.value or b"")
                seen += 1
                if limit is not None and seen >= limit:
                    break
    finally:
        await consumer.stop()
    return seen


async def collect_records(
    broker: str | KafkaConnection,
    topic: str,
    *,
    expected: int | None = None,
    timeout: float = 60.0,
    settle: float = 0.0,
) -> list[tuple[bytes | None, bytes, int]]:
    """Read ``topic`` from the beginning until ``expected`` records arrived (then ``settle`` seconds more, to catch
    extras such as duplicates) or ``timeout`` passed. Returns ``(key, value, timestamp_ms)`` tuples in arrival order."""
    consumer = AIOKafkaConsumer(
        topic,
        **client_options(broker),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await start_client(consumer, broker)
    records: list[tuple[bytes | None, bytes, int]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            records.extend((r.key, r.value, r.timestamp) for rs in batch.values() for r in rs)
            if expected is not None and len(records) >= expected:
                deadline = min(deadline, time.monotonic() + settle)
                if settle <= 0:
                    break
    finally:
        await consumer.stop()
    return records
