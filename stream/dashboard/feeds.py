"""The dashboard's own consumers of the public topics, like any downstream user's (no consumer group, nothing
committed), and the probe that tells the page whether Kafka is there.

Two consumers: the live one reads the input texts and the labelled events from their ends (the feed and the rate are
about now; a topic created after the dashboard started is read whole); the history one reads windows, dead letters,
drift reports and model announcements from the start (what the charts and counts are made of). Neither creates a
topic by reading it, and both look for topics that appear later every few seconds. A broker that goes away is noticed
by the probe within a few seconds; the consumers keep retrying by themselves, and should one fail, it is started
again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from emostream.settings import Settings
from stream.dashboard.state import DashboardState
from stream.kafka.connection import KafkaConnection, client_options
from stream.kafka.refusals import BrokerRefused, check_brokers, start_client

log = structlog.get_logger(__name__)

PROBE_EVERY_S = 2.0
PROBE_TIMEOUT_S = 3.0
RETRY_S = 2.0
METADATA_MAX_AGE_MS = 5000  # how soon a topic created after the dashboard started is read


@dataclass(frozen=True)
class DashboardTopics:
    texts: str
    labelled: str
    aggregates: str
    dead_letters: str
    drift: str
    models: str

    @classmethod
    def of(cls, settings: Settings) -> DashboardTopics:
        return cls(
            settings.topic_texts,
            settings.topic_labelled,
            settings.topic_aggregates,
            settings.topic_dlq,
            settings.topic_drift,
            settings.topic_models,
        )


class DashboardFeeds:
    """Keeps ``state`` up to date from the topics until cancelled."""

    def __init__(self, connection: KafkaConnection, topics: DashboardTopics, state: DashboardState) -> None:
        self.connection = connection
        self.topics = topics
        self.state = state

    async def run(self) -> None:
        live = {self.topics.texts: self.state.add_texts, self.topics.labelled: self._add_labelled}
        history = {
            self.topics.aggregates: self.state.add_aggregates,
            self.topics.dead_letters: self.state.add_dead_letters,
            self.topics.drift: self.state.add_drift,
            self.topics.models: self.state.add_models,
        }
        await asyncio.gather(
            self._probe_forever(),
            self._consume_forever("live", live, from_start=False),
            self._consume_forever("history", history, from_start=True, on_start=self.state.clear_history),
        )

    def _add_labelled(self, values: list[bytes | None]) -> None:
        self.state.add_labelled(values, time.time())

    async def _probe_forever(self) -> None:
        while True:
            try:
                await check_brokers(self.connection, timeout=PROBE_TIMEOUT_S)
            except BrokerRefused as refused:
                if self.state.connected or self.state.problem is None:
                    log.warning("Kafka unreachable: showing the last state, retrying", reason=str(refused))
                self.state.set_connection(False, str(refused))
            else:
                if not self.state.connected:
                    log.info("Kafka reachable", brokers=self.connection.url)
                self.state.set_connection(True)
            await asyncio.sleep(PROBE_EVERY_S)

    async def _consume_forever(
        self,
        name: str,
        handlers: dict[str, Callable[[list[bytes | None]], None]],
        *,
        from_start: bool,
        on_start: Callable[[], None] | None = None,
    ) -> None:
        while True:
            consumer = AIOKafkaConsumer(
                **client_options(self.connection),
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",  # where a kept position is gone (the topic was recreated)
                metadata_max_age_ms=METADATA_MAX_AGE_MS,
                fetch_max_wait_ms=250,
            )
            admin = AIOKafkaAdminClient(**client_options(self.connection))
            try:
                await start_client(consumer, self.connection)
                await start_client(admin, self.connection)
                if on_start is not None:
                    on_start()  # read again from the start: what was counted before would count twice
                await self._read(consumer, admin, handlers, from_start=from_start)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the page shows the last state meanwhile; the probe says why
                log.warning("dashboard consumer failed: starting it again", consumer=name, error=repr(exc))
            finally:
                await consumer.stop()
                await admin.close()
            await asyncio.sleep(RETRY_S)

    async def _read(
        self,
        consumer: AIOKafkaConsumer,
        admin: AIOKafkaAdminClient,
        handlers: dict[str, Callable[[list[bytes | None]], None]],
        *,
        from_start: bool,
    ) -> None:
        """Read the partitions of the topics of ``handlers`` that exist, looking again every few seconds: a consumer
        subscribed to a missing topic fails to start (nothing may create it by asking), a topic created later is read
        from its start (nothing of it is missed), and one that a broker restart took away is dropped until it is back.
        Partitions already read keep their place; those there at the first look start at their end unless
        ``from_start``."""
        order = list(handlers)
        assigned: set[TopicPartition] = set()
        first_look, looked = True, float("-inf")
        while True:
            if time.monotonic() - looked > METADATA_MAX_AGE_MS / 1000:
                looked = time.monotonic()
                partitions = {  # every topic's metadata (asking for all creates none)
                    TopicPartition(topic["topic"], partition["partition"])
                    for topic in await admin.describe_topics()
                    if topic["topic"] in handlers and not topic["error_code"]
                    for partition in topic["partitions"]
                }
                if partitions != assigned:
                    positions = {tp: await consumer.position(tp) for tp in assigned & partitions}
                    consumer.assign(sorted(partitions))
                    for tp in partitions:
                        if tp in positions:
                            consumer.seek(tp, positions[tp])
                        elif first_look and not from_start:
                            await consumer.seek_to_end(tp)
                        else:
                            await consumer.seek_to_beginning(tp)
                    assigned = partitions
                first_look = False
            if not assigned:
                await asyncio.sleep(0.5)
                continue
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            # in the handlers' order: input texts before the labels that name them
            for partition, records in sorted(batches.items(), key=lambda item: order.index(item[0].topic)):
                handlers[partition.topic]([record.value for record in records])
