"""The worker's Kafka consumer (``stream.kafka.consumer``): each of its changes to Faust's, on the pinned Faust.
``tests/unit/stream/kafka/test_upstream.py`` shows the upstream behaviour each one exists for."""

from __future__ import annotations

import pytest

from emostream.settings import Settings
from stream.app import create_app


async def test_the_worker_consumer_uses_the_configured_fetch_wait(tmp_path):
    app = create_app(Settings(broker_url="kafka://127.0.0.1:9", fetch_wait=0.25, state_dir=tmp_path))
    consumer = app.consumer._thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == 250
    finally:
        await consumer.stop()


def commit_offset_after(tmp_path, *, acked: list[int], pending: list[int], committed: int | None) -> int | None:
    """The offset the worker's consumer would commit for a partition with these records acknowledged and pending
    (called from a test running on an event loop, as the app needs)."""
    from faust.types import TP
    from faust.types.tuples import Message

    app = create_app(Settings(broker_url="kafka://127.0.0.1:9", state_dir=tmp_path))
    consumer = app.consumer
    tp = TP("emostream-aggregation-input", 0)  # a topic read as Faust events (the input is read in batches)
    # Kept referenced, as the events in flight keep them in a worker: Faust tracks unacknowledged messages weakly.
    messages = [Message(tp.topic, 0, offset, 0.0, 0, None, None, b"{}", None, tp=tp) for offset in pending]
    for message in messages:
        consumer.track_message(message)
    consumer._acked[tp] = list(acked)
    consumer._acked_index[tp] = set(acked)
    consumer._committed_offset[tp] = committed
    return consumer._new_offset(tp)


@pytest.mark.parametrize(
    ("acked", "pending", "committed", "expected"),
    [
        ([0, 1, 2, 3], [], None, 4),  # everything acknowledged
        ([2, 3, 4], [0, 1], None, None),  # an earlier batch still in flight, no commit yet (Faust would commit 5)
        ([6, 7, 8], [5], 5, None),  # one pending record right at the committed offset (Faust would commit 9)
        ([0, 1, 3, 4], [2], None, 2),  # up to the pending record, not past it
    ],
)
async def test_a_commit_never_passes_a_record_still_in_flight(tmp_path, acked, pending, committed, expected):
    assert commit_offset_after(tmp_path, acked=acked, pending=pending, committed=committed) == expected


async def test_a_fetch_reads_the_partitions_active_when_it_started_and_an_empty_set_reads_none(tmp_path, monkeypatch):
    """Faust passes its live set of active partitions, which the main thread changes while the consumer thread waits
    for records; aiokafka reads an empty set as every partition (docs/notes.md: the restarted worker that received
    nothing). The worker's consumer thread hands aiokafka a frozen copy, and an empty set fetches nothing."""
    from faust.transport.drivers import aiokafka as faust_aiokafka
    from faust.types import TP

    seen = []

    async def fetch(self, active_partitions, timeout):
        seen.append(active_partitions)
        return {}

    monkeypatch.setattr(faust_aiokafka.AIOKafkaConsumerThread, "getmany", fetch)

    app = create_app(Settings(broker_url="kafka://127.0.0.1:9", state_dir=tmp_path))
    thread = app.consumer._thread
    live = {TP("emotion.texts", 0), TP("emotion.texts", 1)}
    assert await thread.getmany(live, 1.0) == {}
    live.clear()  # what a pause on the main thread does to Faust's set
    assert seen[0] == frozenset({TP("emotion.texts", 0), TP("emotion.texts", 1)})
    assert await thread.getmany(set(), 1.0) == {}
    assert len(seen) == 1  # an empty set never reaches aiokafka


async def test_a_batch_topic_commits_from_its_micro_batches_not_from_acknowledgements(tmp_path):
    from faust.types import TP

    app = create_app(Settings(broker_url="kafka://127.0.0.1:9", state_dir=tmp_path))
    tp = TP(next(iter(app.batch_topics)), 1)
    spans = [app.batch_input.offsets.open(tp, first, last) for first, last in [(0, 9), (10, 19)]]
    spans[1].done = True
    assert app.consumer._new_offset(tp) is None  # the earlier batch is still in flight
    spans[0].done = True
    assert app.consumer._new_offset(tp) == 20


async def test_input_partitions_become_fetchable_only_once_the_queues_are_cleared(tmp_path):
    """Change 2: at the end of a recovery the input partition is held back through the seek and the clearing of the
    queues (nothing fetched then can be dropped with the position past it) and fetched once the flow resumes."""
    from .test_upstream import end_of_recovery

    app = create_app(Settings(broker_url="kafka://127.0.0.1:9", state_dir=tmp_path))
    assert await end_of_recovery(app) == [("seek", False), ("clear queues", False), ("flow resumed", True)]


async def test_input_partitions_never_committed_go_back_to_the_beginning(tmp_path, monkeypatch):
    """Change 3: after aiokafka's seek to the committed offsets, input partitions without one are sought to their
    beginning (the ``earliest`` reset the worker uses), which re-reads and never skips; changelog partitions (Faust's
    recovery positions them) and committed ones are left alone."""
    from faust.transport.drivers import aiokafka as faust_aiokafka
    from faust.types import TP

    app = create_app(Settings(broker_url="kafka://127.0.0.1:9", state_dir=tmp_path))
    texts = next(iter(app.batch_topics))
    changelog = next(iter(app.tables.changelog_topics))
    committed = {TP(texts, 0): None, TP(texts, 1): 7, TP(changelog, 0): None}

    async def aiokafkas_seek(self):
        return committed

    monkeypatch.setattr(faust_aiokafka.AIOKafkaConsumerThread, "seek_to_committed", aiokafkas_seek)
    to_beginning = []

    async def seek_to_beginning(*partitions):
        to_beginning.extend(partitions)

    thread = app.consumer._thread
    thread.seek_to_beginning = seek_to_beginning
    assert app.conf.consumer_auto_offset_reset == "earliest"
    assert await thread.seek_to_committed() == committed
    assert to_beginning == [TP(texts, 0)]


async def test_the_stall_guard_fetches_again_an_assigned_partition_left_out_of_the_fetch_set(tmp_path):
    """A partition that is assigned but neither fetched nor about to be (left paused, or held back with no flow
    resumption to follow) is put back in the fetch set; others, and anything while a rebalance stopped the flow, are
    left alone."""
    from faust.types import TP

    app = create_app(Settings(broker_url="kafka://127.0.0.1:9", state_dir=tmp_path))
    consumer = app.consumer
    texts = next(iter(app.batch_topics))
    fetched, paused, held_back, elsewhere = (TP(texts, partition) for partition in range(4))
    consumer.assignment = lambda: {fetched, paused, held_back}
    consumer._set_active_tps({fetched, paused, held_back})
    consumer.pause_partitions({paused, held_back})
    consumer.resume_partitions({held_back})  # an input partition resumed in a recovery waits for the flow to resume
    assert held_back not in consumer._get_active_partitions()

    consumer.stop_flow()  # a rebalance: the guard does not act then
    assert consumer.fetch_again([fetched, paused, held_back, elsewhere]) == []
    consumer.flow_active = True  # as after a resumption that did not put the two back
    assert sorted(consumer.fetch_again([fetched, paused, held_back, elsewhere])) == [paused, held_back]
    assert consumer._get_active_partitions() == {fetched, paused, held_back}
    assert not consumer._paused_partitions and not consumer.flow_state([held_back])["held_back"]


async def test_a_revocation_commits_what_was_processed_before_it_is_forgotten(tmp_path):
    """Change 8: acknowledged records of a partition being revoked are committed (after the producer is flushed)
    before Faust forgets them, so the partition's next owner does not process them again."""
    from faust.types import TP

    app = create_app(Settings(broker_url="kafka://127.0.0.1:9", state_dir=tmp_path))
    consumer = app.consumer
    tp = TP("emostream-aggregation-input", 0)
    consumer.assignment = lambda: {tp}  # the assignment being revoked (aiokafka keeps it until the rebalance ends)
    consumer._acked[tp], consumer._acked_index[tp], consumer._committed_offset[tp] = [0, 1, 2], {0, 1, 2}, None
    steps = []

    async def flush():
        steps.append("producer flushed")

    async def commit(offsets):  # no broker here: the commit request itself is aiokafka's
        steps.append(("committed", dict(offsets)))
        return True

    async def apps_handler(revoked):
        steps.append(("app's handler", consumer._acked.get(tp)))

    app.producer.flush, consumer._commit, consumer._on_partitions_revoked = flush, commit, apps_handler
    await consumer.on_partitions_revoked({tp})
    assert steps == ["producer flushed", ("committed", {tp: 3}), ("app's handler", None)]
    assert not consumer.flow_active  # stopped before the wait: nothing new starts while the partitions move
