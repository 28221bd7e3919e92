"""Faust's Kafka transport with eight changes to the worker's consumer; everything else is Faust's own.

1. The fetch wait is a setting (``EMOSTREAM_FETCH_WAIT``). faust-streaming 0.15 hard-codes ``fetch_max_wait_ms=1500``.
   A fetch is one request for all assigned partitions and aiokafka keeps one in flight per broker, so a fetch that the
   broker holds (nothing new on the partitions it asks for) delays every partition behind it. Apache Kafka answers a
   held fetch as soon as data arrives; the embedded Tansu broker holds it for the full wait, which showed up as
   seconds of stalls between micro-batches and ~800 ms of median latency. Upstream: not reported; Faust exposes
   other fetch settings (e.g. ``broker_max_poll_records``) but not this one.

Changes 2 and 3 close a hole in Faust's recovery that skipped input records (found with a worker SIGKILLed and
restarted mid-stream: about one run in ten lost records). At the end of a recovery Faust (a) marks the stream
partitions active again, (b) seeks them to their committed offsets, (c) clears every stream's queue
(``flow_control.resume()``) and (d) resumes the flow. Its fetcher runs throughout, so records handed to the streams
between (a) and (c) were dropped by (c) with the consumer's position already past them; only a seek after (c) could
bring them back. Faust's gap tracking then either stalled the committed offset at the hole for good or, when the
records on both sides were acknowledged, committed past it.

2. Stream partitions are held back from (a) until (d), so nothing reaches the queues before they are cleared; the
   position stays where the seek put it. Upstream: faust-streaming issue #596 (a race in recovery leaves gaps in
   acknowledged offsets), open; #216/PR #217 and PR #253 fixed the same order problem in other recovery paths.
3. Partitions without a committed offset go back to the beginning in (b). aiokafka's ``seek_to_committed`` leaves
   such a partition where it is (a new consumer group, or a worker killed before its first commit), which loses
   whatever this worker had read from it before a rebalance. With ``auto_offset_reset=earliest`` (what the worker
   uses) the beginning is where such a partition starts anyway: this can only re-read, never skip. Upstream: not
   reported (aiokafka documents ``seek_to_committed`` as leaving such partitions alone).

4. A commit never passes a record that is still being processed. Faust commits the first run of consecutive
   acknowledged offsets of a partition, and checks the head of that run only loosely: it commits past one missing
   offset, or past any number when the partition has no commit yet. With one actor, records are acknowledged in order
   and that is harmless; with several micro-batches in flight (``EMOSTREAM_BATCHES_IN_FLIGHT``) a later batch is often
   acknowledged before an earlier one, and a worker killed then lost the earlier one (the SIGKILL test, about one run in
   three). Acknowledged offsets above the lowest pending record are now held back until that record is acknowledged.
   Upstream: faust-streaming PR #707 (never commit past an in-flight message) is the same fix, still open.

5. Each fetch reads a fixed set of partitions. Faust hands the consumer thread its *live* set of active partitions,
   and aiokafka's ``fetched_records`` waits (up to a second) for records of the partitions in it, reading an empty set
   as "every assigned partition". When the main thread emptied the set during that wait (the changelog partitions
   paused at the end of a recovery, the stream partitions still held back after the seek of change 2), the thread
   drained every partition, stream partitions included, and Faust dropped those records as not active, with the
   consumer's position already past them: the restarted worker that "received nothing at all" (docs/notes.md; 2 of 6
   SIGKILL restarts in ``bench/chaos.py``, healed only by the stall guard; 0 of 20 since). A frozen copy of the set is
   passed instead, and an empty one fetches nothing. Upstream: faust-streaming PR #239 made the set live; issue #629
   (partitions that never fetch after a rebalance) may be the same family; not reported yet.

7. Records of a batch topic (the input texts, ``WorkerApp.batch_input``) skip Faust's per-event path: each fetch's
   records of such a partition go to a :class:`stream.kafka.batches.BatchInput` in one call, as aiokafka returned them,
   and their offsets are committed from its :class:`~stream.kafka.batches.OffsetTracker` (one span per micro-batch)
   instead of per-record acknowledgements. The rest of Faust's consumer stays as it is: the group, the assignment, the
   flow control and recovery, the commit loop (the producer is flushed before every commit), and every other topic
   (the aggregation input, the changelogs) still goes through Faust's events. Records are handed over only while the
   flow is on and the consumer generation is the one they were fetched in, and only from the offset Faust's own
   read-offset bookkeeping would accept; the others are dropped as Faust drops them (the seek that follows a stopped
   flow or a rebalance reads them again). Per event, Faust's path cost about four times what the rest of the worker
   did (docs/benchmarks.md, issue 9). Upstream: Faust has no batch consumption below ``Stream.take_events``, which
   still builds one event per record.

8. A revocation commits what was processed before it is forgotten. Faust's consumer forgets the revoked partitions'
   acknowledgements first and only then (``App._on_partitions_revoked``) stops the flow, waits for the events in
   flight and commits, so nothing processed since the last periodic commit (up to ``broker_commit_interval``) is
   committed, and the partition's next owner reads it again. For the aggregate agent that means counting it twice:
   its state, changelogged, already holds those records (the two-worker window test: 436 events counted in a window
   of 312). The same steps now run first, and Faust's own find nothing left. Upstream: faust-streaming issue #502
   (messages processed twice after a rebalance), open.

9. Recovery reads each changelog partition to its real end. Faust takes the changelog's highwater from ListOffsets
   (``end_offsets``), and Tansu 0.6, the embedded broker, answers the first offset of the partition's last record
   batch plus one: the other records of that batch were never recovered, and a key whose last write was among them
   came back older (an aggregate missing events after a rebalance or a restart). The end is now confirmed by one
   fetch from just before it, whose response carries the partition's high watermark, right on Tansu too; on Apache
   Kafka both agree and the fetch changes nothing. Other partitions' ends are left as listed (the stall guard
   corrects its own from its fetches: ``stream.kafka.stall_guard.fetched_end``). Upstream: a Tansu bug, not Faust's
   (docs/notes.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from time import monotonic
from typing import Any

import aiokafka
from aiokafka import TopicPartition
from faust.transport.consumer import ensure_TP, ensure_TPset
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from stream.kafka.batches import BatchInput
from stream.kafka.compat import require_attributes

PROBE_FETCH_WAIT_MS = 10  # how long the broker may hold the fetch that confirms end offsets (change 9)


async def confirmed_ends(probe: aiokafka.AIOKafkaConsumer, ends: Mapping[TP, int], timeout: float) -> dict[TP, int]:
    """Change 9: ``ends`` (from ListOffsets) checked against the high watermark of a fetch from just before each end,
    with ``probe``, a started consumer without a group; the later of the two per partition."""
    partitions = {TopicPartition(tp.topic, tp.partition): tp for tp in ends}
    probe.assign(list(partitions))
    for partition, tp in partitions.items():
        probe.seek(partition, max(ends[tp] - 1, 0))
    deadline = monotonic() + timeout
    while unknown := [partition for partition in partitions if probe.highwater(partition) is None]:
        if monotonic() > deadline:
            raise TimeoutError(f"no fetch answered for {unknown} within {timeout:.0f} s")
        await probe.getmany(*unknown, timeout_ms=100)
    return {tp: max(ends[tp], probe.highwater(partition)) for partition, tp in partitions.items()}


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """The worker's consumer thread: Faust's, with the app's ``fetch_max_wait_ms``, a fixed set of partitions per
    fetch (change 5) and changelog ends confirmed by a fetch (change 9)."""

    async def getmany(self, active_partitions: set[TP] | None, timeout: float) -> Mapping[TP, list]:
        if active_partitions is None:  # a client-only app: every partition, as Faust means it
            return await super().getmany(None, timeout)
        partitions = frozenset(active_partitions)
        if not partitions:
            return {}  # aiokafka would read an empty set as "every assigned partition"
        return await super().getmany(partitions, timeout)  # type: ignore[arg-type]

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        ends = await super()._highwaters(partitions)
        changelogs = self.app.tables.changelog_topics
        # A recovery's changelog partitions only: the stall guard asks for the input's ends every few seconds, and a
        # new client each time is not worth it there (it takes its last fetch's high watermark when that is later).
        listed = {tp: end for tp, end in ends.items() if tp.topic in changelogs}
        if self.consumer.in_transaction or not listed:
            return ends
        probe = self._create_client_consumer(self.transport)
        require_attributes(probe, ["_fetch_max_wait_ms"], "changelog ends confirmed by a fetch")  # as for the worker's
        probe._fetch_max_wait_ms = PROBE_FETCH_WAIT_MS  # read at start; an empty partition answers after the wait
        try:
            await probe.start()
            return {**ends, **await confirmed_ends(probe, listed, timeout=self.app.conf.broker_request_timeout)}
        except Exception as exc:  # the ends as the broker listed them: what Faust would have used
            self.log.warning("could not confirm the end offsets of %r by a fetch, kept as listed: %r", listed, exc)
            return ends
        finally:
            await probe.stop()

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        require_attributes(consumer, ["_fetch_max_wait_ms"], "the fetch wait setting")
        # aiokafka reads this when the consumer starts (it builds its Fetcher then); Faust offers no setting for it.
        consumer._fetch_max_wait_ms = self.app.fetch_max_wait_ms
        return consumer

    async def seek_to_committed(self) -> Mapping[Any, int | None]:
        committed = await super().seek_to_committed()
        if self.app.conf.consumer_auto_offset_reset == "earliest":
            changelogs = self.app.tables.changelog_topics  # positioned by Faust's recovery, never committed
            uncommitted = [tp for tp, offset in committed.items() if not offset and tp.topic not in changelogs]
            if uncommitted:
                await self.seek_to_beginning(*uncommitted)
        return committed


class Consumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer running :class:`ConsumerThread`; stream partitions resume only with the flow."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        require_attributes(
            self,
            ["_unacked_messages", "_acked", "_acked_index", "_committed_offset", "_read_offset", "_paused_partitions"],
            "no commit past a record in flight, and the stall guard's log line",
        )
        require_attributes(self, ["_buffered_partitions", "_wait_next_records"], "batch topics")
        self._held_back: set[TP] = set()

    @property
    def _batches(self) -> tuple[frozenset[str], BatchInput | None]:
        """The batch topics and their queue (``WorkerApp.take_in_batches``), looked up when needed: the consumer may
        be built before the agents are registered."""
        return getattr(self.app, "batch_topics", frozenset()), getattr(self.app, "batch_input", None)

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:
        generation = self.app.consumer_generation_id
        records, active = await super()._wait_next_records(timeout)
        topics, batches = self._batches
        if not records or batches is None:
            return records, active
        handing_over = self.flow_active and not self.should_stop and self.app.consumer_generation_id == generation
        read_offset, inbound = self._read_offset, self.app.monitor.stream_inbound_time
        for fetched_tp in [tp for tp in records if tp.topic in topics]:
            fetched = records.pop(fetched_tp)  # never through Faust's events, handed over or not
            tp = ensure_TP(fetched_tp)  # aiokafka's TopicPartition: Faust's sets must hold its own TP
            if not handing_over or (active is not None and tp not in active):
                continue
            last_read = read_offset[tp]
            if last_read is not None and fetched[0].offset < last_read:  # what Faust's _drain_messages drops
                fetched = [record for record in fetched if record.offset >= last_read]
            if fetched:
                self._acked.setdefault(tp, [])  # listed, so that Faust's commit loop asks _new_offset about it
                read_offset[tp] = fetched[-1].offset
                inbound[tp] = monotonic()  # Faust's idle-stream check (verify_event_path) reads it
                batches.put(tp, fetched)
        return records, active

    def forget_buffered(self, tps: set[TP]) -> None:
        """The batch input dropped the queued records of ``tps``: they no longer count as a full buffer (the next
        assignment decides what is fetched)."""
        self._buffered_partitions.difference_update(tps)

    def stop_flow(self) -> None:
        super().stop_flow()
        batches = self._batches[1]
        if batches is not None:
            batches.clear()  # as Faust clears its stream queues: read again after the seek that follows

    async def wait_empty(self) -> None:
        batches = self._batches[1]
        if batches is not None:
            await batches.wait_idle()  # micro-batches in flight finish before the last commit
        await super().wait_empty()

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        if revoked and not self.app.should_stop:
            await self.finish_in_flight()  # change 8
        batches = self._batches[1]
        if batches is not None:
            batches.offsets.forget(revoked)  # Faust forgets their acknowledgements at this point too
        await super().on_partitions_revoked(revoked)

    async def finish_in_flight(self) -> None:
        """Change 8: stop the flow, drop what is queued and not started, wait for what is being processed and commit
        it (the producer flushed first): the steps of Faust's ``App._on_partitions_revoked``, taken before the revoked
        partitions' acknowledgements are forgotten rather than after. Faust's own steps then find nothing left."""
        assignment = self.assignment()
        if not assignment:
            return
        self.stop_flow()
        self.app.flow_control.suspend()
        self.pause_partitions(assignment)
        self.app.flow_control.clear()
        if self.app.conf.stream_wait_empty:
            await self.wait_empty()  # commits once nothing is in flight
        else:
            await self.commit()

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def resume_partitions(self, tps: Iterable[TP]) -> None:
        tps = ensure_TPset(tps)
        streams = {tp for tp in tps if not self._is_changelog_tp(tp)}
        self._held_back |= streams
        super().resume_partitions(tps - streams)

    def pause_partitions(self, tps: Iterable[TP]) -> None:
        tps = ensure_TPset(tps)
        self._held_back -= tps
        super().pause_partitions(tps)

    def _new_offset(self, tp: TP) -> int | None:
        topics, batches = self._batches
        if batches is not None and tp.topic in topics:
            return batches.offsets.committable(tp)
        pending = [message.offset for message in self._unacked_messages if message.tp == tp and not message.acked]
        if not pending:
            return super()._new_offset(tp)
        first_pending = min(pending)
        acked = self._acked[tp]
        later = [offset for offset in acked if offset > first_pending]
        acked[:] = [offset for offset in acked if offset < first_pending]
        try:
            return super()._new_offset(tp)
        finally:
            acked.extend(later)  # committed once the pending record is acknowledged

    def committed_offsets(self, tps: Iterable[TP]) -> dict[TP, int | None]:
        """The offsets this worker last committed (or found committed) for ``tps``; None where there is none."""
        return {tp: self._committed_offset.get(tp) for tp in tps}

    def fetch_again(self, tps: Iterable[TP]) -> list[TP]:
        """The stall guard's second answer: those of ``tps`` that are assigned but out of the set of partitions the
        fetcher reads (paused, held back or marked full) while the flow is on are put back in it; returns them. A seek
        cannot help a partition that is never fetched (faust-streaming issue #629 describes partitions that never fetch
        again after a rebalance; change 5 closed the one such hole we found). Harmless where nothing is wrong: a
        partition marked full is read again and its queue may run over its bound once."""
        if not self.flow_active:
            return []
        assigned, active = self.assignment(), self._get_active_partitions()
        unread = [tp for tp in tps if tp in assigned and tp not in active]
        if unread:
            self._held_back.difference_update(unread)
            self._buffered_partitions.difference_update(unread)
            super().resume_partitions(unread)  # Faust's own: into the fetch set, out of the paused set
        return unread

    def flow_state(self, tps: Iterable[TP]) -> dict[str, Any]:
        """For a log line about ``tps``: the offset Faust last handed to the streams (records below it are dropped as
        already read), and which of them are paused or held back, and whether the flow is on."""
        tps = list(tps)
        return {
            "read": [self._read_offset.get(tp) for tp in tps],
            "paused": sorted(f"{tp.topic}:{tp.partition}" for tp in self._paused_partitions & set(tps)),
            "held_back": sorted(f"{tp.topic}:{tp.partition}" for tp in self._held_back & set(tps)),
            "flow_active": self.flow_active,
        }

    def resume_flow(self) -> None:
        super().resume_flow()
        held, self._held_back = self._held_back & self.assignment(), set()
        if held:
            super().resume_partitions(held)


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with :class:`Consumer`."""

    Consumer = Consumer
