"""Newly labelled examples on ``emotion.feedback``: validation, and the training snapshot rebuilt from the topic.

Record: ``{"id"?, "text", "label" | "labels", "source"?, "annotator"?}``. The topic is the source of truth: the trainer
reads it from the beginning for every cycle and keeps the latest label per id (or per text when there is no id), so a
restart loses nothing and a corrected label replaces the old one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from models.data import LabelledTexts
from stream.kafka.connection import KafkaConnection, client_options
from stream.kafka.refusals import start_client
from stream.schemas import DeadLetter, InputLimits, decode_text_object


@dataclass(frozen=True)
class FeedbackExample:
    """One labelled example and where it was read."""

    key: str
    text: str
    label: str
    partition: int
    offset: int


def parse_feedback(
    raw: bytes | None, *, topic: str, partition: int, offset: int, limits: InputLimits
) -> FeedbackExample | DeadLetter:
    """Validate one feedback record (one label: the served models are single-label)."""

    def dead(error: str, reason: str) -> DeadLetter:
        return DeadLetter(error, reason, raw, topic, partition, offset)

    decoded = decode_text_object(raw, dead, limits)
    if isinstance(decoded, DeadLetter):
        return decoded
    value, text = decoded
    labels = value.get("labels", [value["label"]] if "label" in value else [])
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x.strip() for x in labels):
        return dead("invalid_label", "'label' must be a non-empty string (or 'labels' a list of them)")
    if len(set(labels)) > 1:
        return dead("several_labels", "several labels on one text: the served model is single-label")
    example_id = value.get("id")
    key = f"id:{example_id}" if isinstance(example_id, str | int) and str(example_id) else f"text:{text.strip()}"
    return FeedbackExample(key, text.strip(), labels[0].strip(), partition, offset)


def snapshot(examples: list[FeedbackExample]) -> LabelledTexts:
    """The training snapshot: the latest label per id (or text), labels sorted by name."""
    latest: dict[str, FeedbackExample] = {}
    for example in sorted(examples, key=lambda e: (e.offset, e.partition)):
        latest[example.key] = example
    labels = tuple(sorted({e.label for e in latest.values()}))
    position = {name: i for i, name in enumerate(labels)}
    rows = list(latest.values())
    return LabelledTexts([e.text for e in rows], [(position[e.label],) for e in rows], labels, False, "feedback")


@dataclass(frozen=True)
class TopicContents:
    """Every record of a topic as ``(partition, offset, value)``, and per partition the offset after the last one."""

    records: list[tuple[int, int, bytes | None]]
    ends: dict[int, int]


async def read_topic(broker: str | KafkaConnection, topic: str, timeout: float = 30.0) -> TopicContents:
    """Every record currently in ``topic``, read from the beginning to the end."""
    consumer = AIOKafkaConsumer(
        **client_options(broker), group_id=None, enable_auto_commit=False, fetch_max_wait_ms=100
    )
    await start_client(consumer, broker)
    try:
        if topic not in await consumer.topics():  # also refreshes the metadata that partitions_for_topic reads
            return TopicContents([], {})
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not partitions:
            return TopicContents([], {})
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[tuple[int, int, bytes | None]] = []
        deadline = time.monotonic() + timeout
        # Until every partition reached its end offset and a fetch came back empty: Tansu 0.6 (the embedded broker)
        # reports an end offset of 1 for a partition that holds many records, so the end offsets alone would stop the
        # reading early.
        fetched = True
        while fetched or [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} took more than {timeout:.0f} s")
            batch = await consumer.getmany(timeout_ms=200)
            fetched = any(batch.values())
            records.extend((r.partition, r.offset, r.value) for rs in batch.values() for r in rs)
        read_ends = {tp.partition: end for tp, end in ends.items()}
        for partition, offset, _ in records:
            read_ends[partition] = max(read_ends[partition], offset + 1)
        return TopicContents(records, read_ends)
    finally:
        await consumer.stop()
