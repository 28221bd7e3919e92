"""The upstream behaviours that ``stream.kafka`` works around, reproduced on the pinned Faust itself.

Each test calls Faust's own method (not our override) and asserts the behaviour our override exists for. When one of
these fails after moving the pin, upstream has changed there: read the new code, and drop or adapt the override
(``stream/kafka/compat.py`` says how to move the pin).
"""

from __future__ import annotations

import asyncio

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.tuples import Message

from emostream.settings import Settings
from stream.app import create_app

TEXTS = TP("emotion.texts", 0)


def _app(tmp_path):
    return create_app(Settings(broker_url="kafka://127.0.0.1:9", state_dir=tmp_path))


def test_faust_still_hard_codes_the_fetch_wait(tmp_path):
    """Change 1: Faust builds the worker's aiokafka consumer with fetch_max_wait_ms=1500, whatever the settings."""

    async def build() -> int:
        app = _app(tmp_path)
        thread = app.consumer._thread
        consumer = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer(thread, app.transport)
        try:
            return consumer._fetch_max_wait_ms
        finally:
            await consumer.stop()

    assert asyncio.run(build()) == 1500


def test_faust_still_commits_past_a_batch_in_flight(tmp_path):
    """Change 4 (faust-streaming PR #707): offsets 0 and 1 still in flight, 2-4 acknowledged, nothing committed yet:
    Faust commits 5, so a crash now loses 0 and 1."""

    async def offset() -> int | None:
        consumer = _app(tmp_path).consumer
        for pending in (0, 1):
            consumer.track_message(Message(TEXTS.topic, 0, pending, 0.0, 0, None, None, b"{}", None, tp=TEXTS))
        consumer._acked[TEXTS] = [2, 3, 4]
        consumer._acked_index[TEXTS] = {2, 3, 4}
        consumer._committed_offset[TEXTS] = None
        return faust_aiokafka.Consumer._new_offset(consumer, TEXTS)

    assert asyncio.run(offset()) == 5


def test_faust_still_hands_its_live_partition_set_to_the_fetcher(tmp_path):
    """Change 5: Faust passes the very set it keeps changing on the main thread to aiokafka's ``fetched_records``
    (which reads an empty set as every partition), not a copy."""
    handed = []

    class Fetcher:
        _closed = False

        class _subscriptions:  # the attribute name Faust reads
            @staticmethod
            def fetch_context():
                import contextlib

                return contextlib.nullcontext()

        async def fetched_records(self, partitions, timeout, max_records):
            handed.append(partitions)
            return {}

    class Consumer:
        _closed = False
        _fetcher = Fetcher()

    async def fetch() -> None:
        thread = _app(tmp_path).consumer._thread
        thread.consumer._flow_active = True  # what resume_flow() sets
        live = {TEXTS}
        await faust_aiokafka.AIOKafkaConsumerThread._fetch_records(thread, Consumer(), live, timeout=0.1)
        assert handed[0] is live

    asyncio.run(fetch())


def test_faust_still_installs_a_terminal_spinner(tmp_path):
    """``stream.kafka.worker.Worker``: Faust's worker comes with a spinner that turns on every log record."""

    async def spinner() -> object:
        app = _app(tmp_path)
        worker = faust.Worker(app, loglevel="warn", loop=asyncio.get_running_loop())
        return worker.spinner

    assert asyncio.run(spinner()) is not None
