"""The worker's Faust app and worker classes: Faust's own, on the consumer of ``stream.kafka.consumer``, with a data
folder that may be nested, and without the terminal spinner."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import faust

from emostream.logs import RepeatFilter
from stream.kafka.batches import BatchInput
from stream.kafka.compat import check_installed, require_attributes
from stream.kafka.consumer import Transport
from stream.kafka.metadata import stop_auto_create


class WorkerApp(faust.App):
    """faust.App on the Kafka transport of ``stream.kafka.consumer`` (a configurable fetch wait, no input records lost
    at the end of a recovery, no commit past a batch still in flight), with a data folder that may be nested (Faust
    itself creates only its last level)."""

    def __init__(self, *args: Any, fetch_max_wait: float, **kwargs: Any) -> None:
        check_installed()  # before anything runs on internals that may have changed
        self.fetch_max_wait_ms = int(fetch_max_wait * 1000)
        # Awaited once before the app's services (the consumer among them) start: e.g. creating the topics it needs.
        self.before_start: list[Callable[[], Awaitable[None]]] = []
        self.batch_topics: frozenset[str] = frozenset()
        self.batch_input: BatchInput | None = None
        super().__init__(*args, **kwargs)

    def take_in_batches(self, topic: faust.TopicT, max_queued: int) -> BatchInput:
        """Consume ``topic`` in micro-batches of raw records instead of Faust events (change 7 of
        ``stream.kafka.consumer``): subscribed, assigned, paused and committed by Faust's consumer like an agent's
        topic, read by whoever takes from the returned queue (which must report each batch done)."""
        if self.batch_input is not None:
            raise RuntimeError("one batch topic per app")
        self.topics.add(topic)  # Faust's consumer subscribes to the topics its conductor holds
        self.batch_topics = frozenset([topic.get_topic_name()])
        self.batch_input = BatchInput(
            max_queued,
            on_full=lambda tp: self.consumer.on_buffer_full(tp),
            on_drained=lambda tp: self.consumer.on_buffer_drop(tp),
            on_cleared=lambda tps: self.consumer.forget_buffered(tps),
        )
        return self.batch_input

    def _new_transport(self) -> Transport:
        return Transport(self.conf.broker_consumer, self)

    async def on_first_start(self) -> None:
        Path(self.conf.datadir).parent.mkdir(parents=True, exist_ok=True)
        # When the worker starts, not when the app is built: importing stream.app (tests, tools) changes nothing.
        stop_auto_create()
        for step in self.before_start:
            await step()
        await super().on_first_start()


class Worker(faust.Worker):
    """faust.Worker without the terminal spinner, and with repeated library warnings held back (``RepeatFilter``).

    At log level ``warn`` and above Faust installs a spinner that turns on every log record, and sets the root logger to
    DEBUG for it, so every debug call in Faust and aiokafka (several per event) builds a record that is then thrown
    away: 17% of the event loop's samples in ``bench/stream_throughput.py``. Our own progress goes to structured logs.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        require_attributes(self, ["spinner"], "no terminal spinner")
        self.spinner = None

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        # A broker outage makes Faust and aiokafka log the same warning ~100 times a second: once per 10 s is enough.
        for handler in logger.handlers:
            handler.addFilter(RepeatFilter())
