"""The worker's agents: classify micro-batches of text events, and aggregate labelled events into windows.

Agents stay thin: decode and validate with ``stream.schemas``, predict through ``stream.serving``, count with
``stream.aggregation``, and send. Every output of a batch is delivered before the batch's offsets are acknowledged
(Faust commits acknowledged offsets only after flushing the producer), so a crash re-emits but never loses.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import asdict, dataclass

import faust
import orjson
import structlog

from emostream.settings import Settings
from stream.aggregation import WindowAggregator, empty_state
from stream.liveness import StallGuard
from stream.schemas import (
    ALL_SOURCES,
    DeadLetter,
    TextEvent,
    labelled_record,
    parse_text_event,
    review_record,
    score_margin,
)
from stream.serving import ModelServer
from stream.topics import Topics

log = structlog.get_logger(__name__)


@dataclass
class WorkerStats:
    """Counters since the worker started (served at ``/stats`` and logged per batch)."""

    events_in: int = 0
    labelled: int = 0
    dead_lettered: int = 0
    batches: int = 0
    windows_published: int = 0
    late_events: int = 0
    sent_for_review: int = 0

    def to_dict(self) -> dict[str, int]:
        """JSON-ready counters."""
        return asdict(self)


class Classifier:
    """Turns one micro-batch of input events into labelled records, dead letters and aggregation input."""

    def __init__(self, settings: Settings, topics: Topics, server: ModelServer, stats: WorkerStats) -> None:
        self.settings = settings
        self.topics = topics
        self.server = server
        self.stats = stats
        self.sampler = random.Random()  # samples low-margin predictions for review at EMOSTREAM_REVIEW_RATE

    async def handle(self, events: list[faust.EventT]) -> None:
        """Classify ``events`` and deliver every resulting record."""
        parsed = [(event, self.parse(event)) for event in events]
        good = [(event, p) for event, p in parsed if isinstance(p, TextEvent)]
        dead = [p for _, p in parsed if isinstance(p, DeadLetter)]
        pending, version, inference_ms = [], None, 0.0
        if good:
            started = time.perf_counter()
            try:
                predictions, version = await self.server.predict([p.text for _, p in good])
            except Exception as exc:
                # Faust acknowledges a batch even when the agent raises: dead-letter it rather than lose it.
                log.exception("inference failed: dead-lettering the batch", size=len(good))
                dead += [self.inference_failed(event, exc) for event, _ in good]
                good, predictions = [], []
            inference_ms = (time.perf_counter() - started) * 1000
            processed_at = int(time.time() * 1000)
            records = [
                labelled_record(text_event, prediction.to_dict(), version, processed_at)
                for (_, text_event), prediction in zip(good, predictions, strict=True)
            ]
            pending += await self.send_labelled(records)
            pending += await self.send_for_review([event for _, event in good], records)
        pending += [await self.topics.dlq.send(value=orjson.dumps(d.to_record())) for d in dead]
        await asyncio.gather(*pending)  # delivered before this batch's offsets are acknowledged
        self.stats.events_in += len(events)
        self.stats.labelled += len(good)
        self.stats.dead_lettered += len(dead)
        self.stats.batches += 1
        for letter in dead:
            log.warning(
                "dead letter",
                error=letter.error,
                reason=letter.reason,
                partition=letter.partition,
                offset=letter.offset,
            )
        log.info(
            "batch",
            size=len(events),
            labelled=len(good),
            dead_lettered=len(dead),
            inference_ms=round(inference_ms, 1),
            model_version=version,
            totals=self.stats.to_dict(),
        )

    @staticmethod
    def inference_failed(event: faust.EventT, exc: Exception) -> DeadLetter:
        """The dead letter of a valid event whose batch the model failed on."""
        message = event.message
        return DeadLetter(
            "inference_failed",
            f"the model failed on this batch: {exc!r}",
            event.value,
            message.topic,
            message.partition,
            message.offset,
        )

    def parse(self, event: faust.EventT) -> TextEvent | DeadLetter:
        """Validate one input event (see ``stream.schemas``)."""
        message = event.message
        return parse_text_event(
            event.value,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            timestamp_ms=int(message.timestamp * 1000),
            max_chars=self.settings.max_text_chars,
        )

    async def send_labelled(self, records: list[dict]) -> list:
        """Send the labelled records, and the batch's aggregation input: one record per source and one for all
        sources, each listing ``[label, score, ts]`` per event (far fewer sends and table writes than per event)."""
        futures = []
        by_key: dict[str, list] = {ALL_SOURCES: []}
        for record in records:
            timestamp = record["ts"] / 1000  # event time, so consumers see when it happened
            futures.append(
                await self.topics.labelled.send(
                    key=record["id"].encode(), value=orjson.dumps(record), timestamp=timestamp
                )
            )
            entry = [record["label"], record["score"], record["ts"]]
            by_key.setdefault(record["source"], []).append(entry)
            by_key[ALL_SOURCES].append(entry)
        for key, entries in by_key.items():
            if not entries:
                continue
            futures.append(await self.topics.aggregation_input.send(key=key.encode(), value=orjson.dumps(entries)))
        return futures

    async def send_for_review(self, events: list[TextEvent], records: list[dict]) -> list:
        """Send the predictions the model hesitated on (uncertainty sampling) to the review topic."""
        threshold, rate = self.settings.review_margin, self.settings.review_rate
        futures = []
        for event, record in zip(events, records, strict=True):
            margin = score_margin(record["scores"])
            if margin < threshold and self.sampler.random() < rate:
                value = orjson.dumps(review_record(event, record, margin))
                futures.append(await self.topics.review.send(key=event.id.encode(), value=value))
        self.stats.sent_for_review += len(futures)
        return futures


def register_agents(
    app: faust.App,
    settings: Settings,
    topics: Topics,
    server: ModelServer,
    state: faust.TableT,
    aggregator: WindowAggregator,
    stats: WorkerStats,
    guard: StallGuard,
) -> None:
    """Attach the classification and aggregation agents to ``app``; both report their progress to ``guard``."""
    classifier = Classifier(settings, topics, server, stats)

    # Several actors share the input queue, so the next micro-batch is decoded and queued for the inference processes
    # while the previous one's outputs are sent and acknowledged. They finish out of order; the worker's consumer
    # (stream.transport) commits only up to the first event still in flight, so this keeps at-least-once.
    @app.agent(topics.texts, name="classify", concurrency=settings.batches_in_flight)
    async def classify(stream: faust.StreamT) -> None:
        await server.ensure_loaded()
        async for events in stream.take_events(settings.batch_max, within=settings.batch_wait):
            guard.progress()
            await classifier.handle(list(events))

    @app.agent(topics.aggregation_input, name="aggregate")
    async def aggregate(stream: faust.StreamT) -> None:
        # Per event (not take()): Faust tables can only be changed while an event is current.
        async for event in stream.events():
            guard.progress()
            key = event.key.decode()
            current = state.get(key) or empty_state()
            late_before = current["late"]
            closed = []
            for label, score, ts in orjson.loads(event.value):
                closed += aggregator.add(current, key, label, score, ts)
            state[key] = current
            if current["late"] > late_before:
                stats.late_events += current["late"] - late_before
                log.warning(
                    "late events left out of the aggregates",
                    source=key,
                    count=current["late"] - late_before,
                    watermark=current["watermark"],
                )
            for window in closed:
                await topics.aggregates.send(key=event.key, value=orjson.dumps(window.to_record()))
                log.info("window closed", source=key, window=window.kind, start=window.start, total=window.total)
            stats.windows_published += len(closed)
