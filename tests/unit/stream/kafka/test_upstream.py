"""The upstream behaviours that ``stream.kafka`` works around, reproduced on the pinned Faust itself.

Each test calls Faust's own method (not our override) and asserts the behaviour our override exists for. When one of
these fails after moving the pin, upstream has changed there: read the new code, and drop or adapt the override
(``stream/kafka/compat.py`` says how to move the pin).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.tuples import Message

from emostream.settings import Settings
from stream.app import create_app

TEXTS = TP("emotion.texts", 0)


def _app(tmp_path):
    return create_app(Settings(broker_url="kafka://127.0.0.1:9", state_dir=tmp_path))


async def test_faust_still_hard_codes_the_fetch_wait(tmp_path):
    """Change 1: Faust builds the worker's aiokafka consumer with fetch_max_wait_ms=1500, whatever the settings."""
    app = _app(tmp_path)
    consumer = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer(app.consumer._thread, app.transport)
    try:
        assert consumer._fetch_max_wait_ms == 1500
    finally:
        await consumer.stop()


async def test_faust_still_commits_past_a_batch_in_flight(tmp_path):
    """Change 4 (faust-streaming PR #707): offsets 0 and 1 still in flight, 2-4 acknowledged, nothing committed yet:
    Faust commits 5, so a crash now loses 0 and 1."""
    consumer = _app(tmp_path).consumer
    in_flight = [Message(TEXTS.topic, 0, offset, 0.0, 0, None, None, b"{}", None, tp=TEXTS) for offset in (0, 1)]
    for message in in_flight:  # kept referenced: Faust tracks unacknowledged messages weakly
        consumer.track_message(message)
    consumer._acked[TEXTS] = [2, 3, 4]
    consumer._acked_index[TEXTS] = {2, 3, 4}
    consumer._committed_offset[TEXTS] = None
    assert faust_aiokafka.Consumer._new_offset(consumer, TEXTS) == 5


async def end_of_recovery(app, resume_partitions=None, resume_flow=None) -> list[tuple[str, bool]]:
    """Run the end of Faust's recovery (``Recovery._resume_streams``) for an assignment of one input and one changelog
    partition; per step (the seek to the committed offsets, the clearing of the stream queues, and after the flow is
    resumed), whether the input partition was already fetchable (among the consumer's active partitions). Faust's
    ``resume_partitions`` and ``resume_flow`` stand in for the consumer's own when given."""
    consumer = app.consumer
    texts = TP(next(iter(app.batch_topics)), 0)
    changelog = TP(next(iter(app.tables.changelog_topics)), 0)
    consumer.assignment = lambda: {texts, changelog}  # what the group gave this worker
    if resume_partitions is not None:
        consumer.resume_partitions = functools.partial(resume_partitions, consumer)
    if resume_flow is not None:
        consumer.resume_flow = functools.partial(resume_flow, consumer)
    steps = []

    def fetchable() -> bool:
        return texts in consumer._get_active_partitions()

    async def seek() -> None:  # no broker here: the seek itself is aiokafka's
        steps.append(("seek", fetchable()))

    clear_queues = app.flow_control.resume  # Faust clears every stream queue when it resumes the flow control

    def clear() -> None:
        steps.append(("clear queues", fetchable()))
        clear_queues()

    async def fetcher_running() -> None:
        pass

    consumer.perform_seek, app.flow_control.resume, app._fetcher.maybe_start = seek, clear, fetcher_running
    app.on_rebalance_start()
    await app.tables.recovery._resume_streams(generation_id=app.consumer_generation_id)
    return [*steps, ("flow resumed", fetchable())]


async def test_faust_still_resumes_input_partitions_before_it_seeks_them_and_clears_the_queues(tmp_path):
    """Changes 2 and 3 (faust-streaming issue #596): at the end of a recovery Faust makes the input partitions
    fetchable, then seeks them, then clears the stream queues: its fetcher runs throughout, so records fetched in
    between are dropped by the clearing with the consumer's position already past them."""
    steps = await end_of_recovery(
        _app(tmp_path),
        resume_partitions=faust_aiokafka.Consumer.resume_partitions,
        resume_flow=faust_aiokafka.Consumer.resume_flow,
    )
    assert steps == [("seek", True), ("clear queues", True), ("flow resumed", True)]


async def test_aiokafka_still_leaves_a_partition_without_a_commit_where_it_is():
    """Change 3: ``seek_to_committed`` seeks only the partitions that have a committed offset; one without (a new
    group, a worker killed before its first commit) stays wherever the consumer had read it to."""
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9", group_id="g", enable_auto_commit=False)
    never, committed_at_5 = TopicPartition("emotion.texts", 0), TopicPartition("emotion.texts", 1)
    consumer._subscription.assign_from_user({never, committed_at_5})
    committed = {never: None, committed_at_5: 5}
    seeks = []

    class Fetcher:  # where the seek lands; no broker here
        def seek_to(self, tp, offset):
            seeks.append((tp, offset))

    async def committed_offset(tp):  # what the group coordinator answers
        return committed[tp]

    consumer.committed, consumer._fetcher, consumer._closed = committed_offset, Fetcher(), True
    assert await AIOKafkaConsumer.seek_to_committed(consumer, never, committed_at_5) == committed
    assert seeks == [(committed_at_5, 5)]


async def test_faust_still_hands_its_live_partition_set_to_the_fetcher(tmp_path):
    """Change 5: Faust passes the very set it keeps changing on the main thread to aiokafka's ``fetched_records``
    (which reads an empty set as every partition), not a copy."""
    handed = []

    class Subscriptions:
        def fetch_context(self):
            return contextlib.nullcontext()

    class Fetcher:  # the three names Faust's _fetch_records reads of aiokafka's fetcher
        _closed = False
        _subscriptions = Subscriptions()

        async def fetched_records(self, partitions, timeout, max_records):
            handed.append(partitions)
            return {}

    class Consumer:
        _closed = False
        _fetcher = Fetcher()

    thread = _app(tmp_path).consumer._thread
    thread.consumer._flow_active = True  # what resume_flow() sets
    live = {TEXTS}
    await faust_aiokafka.AIOKafkaConsumerThread._fetch_records(thread, Consumer(), live, timeout=0.1)
    assert handed[0] is live


async def test_faust_still_installs_a_terminal_spinner(tmp_path):
    """``stream.kafka.worker.Worker``: Faust's worker comes with a spinner that turns on every log record."""
    worker = faust.Worker(_app(tmp_path), loglevel="warn", loop=asyncio.get_running_loop())
    assert worker.spinner is not None


def test_aiokafka_still_asks_for_metadata_with_topic_auto_creation_on():
    """Change 6 (``stream.kafka.metadata``): aiokafka's clients name their topics in metadata requests that let the
    broker create any that is missing."""
    from aiokafka.protocol.metadata import MetadataRequest, MetadataRequest_v5

    assert MetadataRequest(["emotion.labelled"]).build(MetadataRequest_v5).allow_auto_topic_creation is True


async def test_faust_still_forgets_the_acknowledgements_of_revoked_partitions_before_it_commits(tmp_path):
    """Change 8 (faust-streaming issue #502): Faust's consumer drops a revoked partition's acknowledged offsets, then
    calls the app's handler, whose wait for the streams ends in a commit: there is nothing left for it to commit."""
    consumer = _app(tmp_path).consumer
    tp = TP("emostream-aggregation-input", 0)
    consumer._acked[tp], consumer._acked_index[tp], consumer._committed_offset[tp] = [0, 1, 2], {0, 1, 2}, None
    seen_by_the_app = []

    async def apps_handler(revoked):
        seen_by_the_app.append(consumer._acked.get(tp))

    consumer._on_partitions_revoked = apps_handler
    await faust_aiokafka.Consumer.on_partitions_revoked(consumer, {tp})
    assert seen_by_the_app == [None]
