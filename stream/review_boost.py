"""More review for a drifting source: every worker follows ``emotion.drift`` and, for a while after a source drifted,
sends a share of that source's predictions for review whatever their margin, so annotators see the new traffic first.

The aggregate that detects drift lives on the worker that owns the source's aggregation key, while the source's events
are classified by whichever worker reads their input partition: hence a topic every worker follows on its own (as
model announcements are), not local state. Off unless ``EMOSTREAM_DRIFT_REVIEW_RATE`` is set.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.kafka.connection import KafkaConnection, client_options
from stream.kafka.refusals import start_client

log = structlog.get_logger(__name__)


@dataclass
class ReviewBoosts:
    """Sources under extra review, each until a wall-clock time (ms). Pure bookkeeping."""

    rate: float  # share of a boosted source's predictions sent for review, whatever their margin
    duration_ms: int  # how long a drift report boosts its source
    until: dict[str, int] = field(default_factory=dict)

    def on_drift(self, report: Any, now_ms: int) -> str | None:
        """Boost the source of a drift report (a decoded ``emotion.drift`` record); the source, or None when the
        record is not a report."""
        source = report.get("source") if isinstance(report, dict) else None
        if not isinstance(source, str) or not self.rate:
            return None
        self.until[source] = max(self.until.get(source, 0), now_ms + self.duration_ms)
        return source

    def active(self, now_ms: int) -> dict[str, float]:
        """Source -> extra review rate, for the sources boosted at ``now_ms`` (expired ones are forgotten)."""
        for source in [s for s, until in self.until.items() if until <= now_ms]:
            del self.until[source]
        return {source: self.rate for source in self.until}


async def follow_drift(broker: str | KafkaConnection, topic: str, boosts: ReviewBoosts) -> None:
    """Feed every drift report published from now on to ``boosts`` (runs until cancelled; a record that is not a
    report is skipped)."""
    consumer = AIOKafkaConsumer(
        **client_options(broker), group_id=None, enable_auto_commit=False, fetch_max_wait_ms=200
    )
    await start_client(consumer, broker)
    try:
        await consumer.topics()  # fetches the cluster's metadata (the worker created the topic before it started)
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            log.warning("drift reports not followed: no such topic", topic=topic)
            return
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        log.info("following drift reports for review", topic=topic, partitions=len(partitions))
        while True:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    try:
                        report = orjson.loads(record.value or b"")
                    except orjson.JSONDecodeError:
                        continue
                    source = boosts.on_drift(report, int(time.time() * 1000))
                    if source is not None:
                        log.info("more review for a drifting source", source=source, rate=boosts.rate)
    finally:
        await consumer.stop()
