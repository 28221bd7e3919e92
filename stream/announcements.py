"""Model announcements on ``emotion.models``: a promoted (or rolled-back) version that every worker swaps in.

``announce_current`` is what ``emostream train --register``, ``models promote/rollback`` and the trainer call
after the registry's ``current`` pointer moved. Every worker follows the topic with its own group-less consumer, so
each one sees every announcement (a consumer group would hand each message to one worker only).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from models.registry import VersionInfo
from stream.kafka.connection import KafkaConnection, client_options
from stream.kafka.refusals import start_client

log = structlog.get_logger(__name__)


MAX_ANNOUNCEMENT_BYTES = 64 * 1024  # an announcement is a few hundred bytes; larger records are not decoded


async def _handle(record: Any, on_announcement: Callable[[Any], Awaitable[Any]]) -> None:
    """Decode one announcement and pass it on; whatever the record holds, the follower goes on (the topic is open
    to anyone who can write to it, so a bad record is logged, never fatal)."""
    raw = record.value or b""
    if len(raw) > MAX_ANNOUNCEMENT_BYTES:
        log.error("model announcement ignored: too large", size=len(raw), offset=record.offset)
        return
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError:
        log.error("model announcement ignored: not JSON", raw=raw[:200], offset=record.offset)
        return
    try:
        await on_announcement(message)
    except Exception:
        log.exception("model announcement failed", offset=record.offset)


def announcement(info: VersionInfo) -> dict[str, Any]:
    """The record announcing ``info``: version, path, labels and headline metrics."""
    summary = info.to_dict()
    metrics = {key: summary[key] for key in ("test_accuracy", "test_macro_f1", "validation_macro_f1")}
    return {"version": info.version, "path": str(info.path), "labels": info.labels, "metrics": metrics}


async def announce(broker: str | KafkaConnection, topic: str, info: VersionInfo, timeout: float = 10.0) -> None:
    """Publish the announcement of ``info`` (raises if the broker cannot be reached within ``timeout`` seconds)."""
    producer = AIOKafkaProducer(**client_options(broker), acks="all")
    try:
        await asyncio.wait_for(start_client(producer, broker), timeout)
        value = orjson.dumps(announcement(info))
        await asyncio.wait_for(producer.send_and_wait(topic, value, key=info.version.encode(), partition=0), timeout)
    finally:
        await producer.stop()


async def ensure_topic(broker: str | KafkaConnection, topic: str) -> None:
    """Create the announcements topic with one partition (one total order of versions) unless it exists."""
    admin = AIOKafkaAdminClient(**client_options(broker))
    await start_client(admin, broker)
    try:
        if topic not in await admin.list_topics():
            await admin.create_topics([NewTopic(topic, 1, 1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        await admin.close()


async def follow(
    broker: str | KafkaConnection,
    topic: str,
    on_announcement: Callable[[Any], Awaitable[Any]],
    on_ready: Callable[[], Awaitable[Any]] | None = None,
) -> None:
    """Call ``on_announcement`` with every announcement published from now on, decoded (runs until cancelled; a
    record that is not JSON, or that ``on_announcement`` fails on, is logged and skipped).

    ``on_ready`` runs once the consumer is positioned at the end of the topic: anything announced before that moment
    is not replayed, so it is the place to catch up with the registry.
    """
    await ensure_topic(broker, topic)
    consumer = AIOKafkaConsumer(
        **client_options(broker),
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=200,
    )
    await start_client(consumer, broker)
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_end(partition)
        log.info("following model announcements", topic=topic, offset=await consumer.position(partition))
        if on_ready is not None:
            await on_ready()
        while True:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    await _handle(record, on_announcement)
    finally:
        await consumer.stop()


async def announce_current(broker: str | KafkaConnection, topic: str, info: VersionInfo, previous: str | None) -> bool:
    """Announce ``info`` if it became the current version (it is current, and ``previous``, the version current before,
    was another one). The registry change stands whatever happens here: a broker that is away or refuses is logged,
    and workers pick ``current`` up when they restart. Returns whether it was announced."""
    if not info.is_current or previous is None or previous == info.version:
        return False  # nothing changed for running workers (none run without a model)
    try:
        await announce(broker, topic, info, timeout=5)
    except Exception as exc:
        log.warning(
            "not announced: running workers keep their model until they restart",
            version=info.version,
            topic=topic,
            error=repr(exc),
        )
        return False
    log.info("announced", version=info.version, topic=topic)
    return True
