"""Input records taken in micro-batches straight from Faust's consumer, and the offsets that are then safe to commit.

Faust hands a stream one event at a time: per record a ``Message``, a task pair in ``Consumer._drain_messages``
(``wait_first``), a conductor callback, a queue put, an ``Event``, sensors and an acknowledgement. On the classify path
that costed more than the model on a GPU (docs/benchmarks.md, issue 9). Here the consumer hands over each fetch's
records of a batch topic in one call (:meth:`BatchInput.put`, from ``stream.kafka.consumer``), the classify actors
take micro-batches of raw aiokafka records (:meth:`BatchInput.take`) and report each one done; the offsets to commit
come from :class:`OffsetTracker`, one span per partition and micro-batch instead of one entry per record.

At least once, as with Faust's own acknowledgements: a partition's offset is committed only up to the first record of
the earliest micro-batch not yet done, so batches may finish in any order. Records still queued when the flow stops
(a rebalance, shutdown) are dropped without being committed, as Faust clears its stream queues; the seek to the
committed offsets that follows reads them again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

Partition = TypeVar("Partition", bound=Hashable)


@dataclass(eq=False)
class Span:
    """The offsets ``first``..``last`` of one partition in one micro-batch."""

    first: int
    last: int
    done: bool = False


class OffsetTracker(Generic[Partition]):
    """Per partition, the spans of micro-batches in the order they were taken, and the offset up to which all are
    done. Pure bookkeeping, no I/O."""

    def __init__(self) -> None:
        self._spans: dict[Partition, deque[Span]] = {}

    def open(self, partition: Partition, first: int, last: int) -> Span:
        """A micro-batch took ``first``..``last`` of ``partition`` (after every earlier span of it)."""
        span = Span(first, last)
        self._spans.setdefault(partition, deque()).append(span)
        return span

    def committable(self, partition: Partition) -> int | None:
        """The offset to commit for ``partition`` (the one after the last record of the leading run of done spans),
        or None when no span finished since the last call. Done spans are forgotten once returned."""
        spans = self._spans.get(partition)
        offset = None
        while spans and spans[0].done:
            offset = spans.popleft().last + 1
        return offset

    def forget(self, partitions: Iterable[Partition]) -> None:
        """The partitions are gone (revoked): spans still open there will never be committed by this worker."""
        for partition in partitions:
            self._spans.pop(partition, None)

    def partitions(self) -> list[Partition]:
        """The partitions with spans (done or not)."""
        return list(self._spans)


@dataclass(eq=False)
class RecordBatch:
    """One micro-batch: the records (aiokafka ``ConsumerRecord``: ``value``, ``topic``, ``partition``, ``offset``,
    ``timestamp``) in the order they were fetched, and the span each partition has in it."""

    records: list[Any]
    spans: list[Span] = field(default_factory=list)


class BatchInput(Generic[Partition]):
    """The queue between the consumer and the classify actors, bounded per partition.

    ``on_full(partition)`` is called when a partition has ``max_queued`` records waiting (the consumer stops fetching
    it) and ``on_drained(partition)`` when it is below again; ``on_cleared(partitions)`` when :meth:`clear` dropped
    the records of partitions that were full.
    """

    def __init__(
        self,
        max_queued: int,
        *,
        on_full: Callable[[Partition], None] = lambda partition: None,
        on_drained: Callable[[Partition], None] = lambda partition: None,
        on_cleared: Callable[[set[Partition]], None] = lambda partitions: None,
    ) -> None:
        if max_queued < 1:
            raise ValueError("max_queued must be at least 1")
        self.max_queued = max_queued
        self.offsets: OffsetTracker[Partition] = OffsetTracker()
        self._on_full, self._on_drained, self._on_cleared = on_full, on_drained, on_cleared
        self._chunks: deque[tuple[Partition, list[Any]]] = deque()  # (partition, records) in fetch order
        self._queued: dict[Partition, int] = {}
        self._full: set[Partition] = set()
        self._count = 0
        self._in_flight = 0
        # Set (and replaced by a fresh one) whenever records arrive or a batch is done: put() and done() are plain
        # calls (the consumer calls put from its fetch loop), and setting an event wakes its waiters without a task.
        self._changed = asyncio.Event()

    @property
    def queued(self) -> int:
        """Records waiting for an actor."""
        return self._count

    @property
    def in_flight(self) -> int:
        """Micro-batches taken and not yet done."""
        return self._in_flight

    def put(self, partition: Partition, records: Sequence[Any]) -> None:
        """Queue one fetch's records of ``partition`` (in offset order). Called by the consumer, on the event loop."""
        if not records:
            return
        self._chunks.append((partition, list(records)))
        queued = self._queued.get(partition, 0) + len(records)
        self._queued[partition] = queued
        self._count += len(records)
        if queued >= self.max_queued and partition not in self._full:
            self._full.add(partition)
            self._on_full(partition)
        self._notify()

    async def take(self, max_records: int, within: float) -> RecordBatch:
        """The next micro-batch: waits for a first record, then up to ``within`` seconds for ``max_records``."""
        loop = asyncio.get_running_loop()
        while True:
            while not self._count:
                await self._changed.wait()
            deadline = loop.time() + within
            while self._count < max_records and (left := deadline - loop.time()) > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), left)
            if self._count:  # unless the queue was cleared meanwhile
                return self._pop(max_records)

    def done(self, batch: RecordBatch) -> None:
        """Every output of ``batch`` is delivered: its offsets may be committed."""
        for span in batch.spans:
            span.done = True
        self._in_flight -= 1
        self._notify()

    def clear(self) -> int:
        """Drop the records no actor has taken (the flow stopped; they will be read again). Returns how many."""
        dropped = self._count
        self._chunks.clear()
        self._queued.clear()
        self._count = 0
        if self._full:
            cleared, self._full = self._full, set()
            self._on_cleared(cleared)
        return dropped

    async def wait_idle(self) -> None:
        """Wait until no micro-batch is in flight."""
        while self._in_flight:
            await self._changed.wait()

    def _pop(self, max_records: int) -> RecordBatch:
        records: list[Any] = []
        ranges: dict[Partition, list[int]] = {}  # partition -> [first, last] in this batch
        while self._chunks and len(records) < max_records:
            partition, chunk = self._chunks[0]
            room = max_records - len(records)
            if len(chunk) > room:
                taken, self._chunks[0] = chunk[:room], (partition, chunk[room:])
            else:
                taken = chunk
                self._chunks.popleft()
            records += taken
            bounds = ranges.setdefault(partition, [taken[0].offset, taken[-1].offset])
            bounds[1] = taken[-1].offset
            self._queued[partition] -= len(taken)
        self._count -= len(records)
        for partition in ranges:
            if partition in self._full and self._queued[partition] < self.max_queued:
                self._full.discard(partition)
                self._on_drained(partition)
        self._in_flight += 1
        return RecordBatch(records, [self.offsets.open(p, first, last) for p, (first, last) in ranges.items()])

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
