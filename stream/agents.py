"""The worker's agents: classify micro-batches of text events, and aggregate labelled events into windows.

Agents stay thin: decode and validate with ``stream.schemas``, predict through ``stream.serving``, count with
``stream.aggregation``, and send. Every output of a batch is delivered before the batch's offsets are acknowledged
(Faust commits acknowledged offsets only after flushing the producer), so a crash re-emits but never loses.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, replace

import faust
import orjson
import structlog

from emostream.settings import Settings
from stream.aggregation import WindowAggregator, empty_state
from stream.delivery import Outgoing, deliver
from stream.kafka.stall_guard import StallGuard
from stream.schemas import (
    ALL_SOURCES,
    DeadLetter,
    InputLimits,
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
    refused_outputs: int = 0  # output records the broker refused, replaced by a dead letter saying why
    undeliverable: int = 0  # refused output records with nothing to stand for them (each logged as an error)

    def to_dict(self) -> dict[str, int]:
        """JSON-ready counters."""
        return asdict(self)


class BatchLabeller:
    """Turns one micro-batch of input events into labelled records, dead letters and aggregation input."""

    def __init__(self, settings: Settings, topics: Topics, server: ModelServer, stats: WorkerStats) -> None:
        self.settings = settings
        self.topics = topics
        self.server = server
        self.stats = stats
        self.limits = InputLimits.from_settings(settings)
        self.sampler = random.Random()  # samples low-margin predictions for review at EMOSTREAM_REVIEW_RATE

    async def handle(self, events: list[faust.EventT]) -> None:
        """Classify ``events`` and deliver every resulting record (see ``stream.delivery``: a bad record becomes a
        dead letter, the rest of the batch goes on, and nothing is acknowledged before it is delivered)."""
        now_ms = int(time.time() * 1000)
        parsed = [(event, self.parse(event, now_ms)) for event in events]
        good = [(event, p) for event, p in parsed if isinstance(p, TextEvent)]
        dead = [p for _, p in parsed if isinstance(p, DeadLetter)]
        outgoing: list[Outgoing] = []
        version, inference_ms = None, 0.0
        if good:
            started = time.perf_counter()
            try:
                predictions, version = await self.server.predict([p.text for _, p in good])
            except Exception as exc:
                # Faust acknowledges a batch even when the agent raises: dead-letter it rather than lose it.
                log.exception("inference failed: dead-lettering the batch", size=len(good))
                dead += [
                    self.dead_letter(event, "inference_failed", f"the model failed on this batch: {exc!r}")
                    for event, _ in good
                ]
                good, predictions = [], []
            inference_ms = (time.perf_counter() - started) * 1000
            processed_at = int(time.time() * 1000)
            records = [
                labelled_record(text_event, prediction.to_dict(), version, processed_at)
                for (_, text_event), prediction in zip(good, predictions, strict=True)
            ]
            outgoing += self.labelled_outputs([event for event, _ in good], records)
            outgoing += self.review_outputs([text_event for _, text_event in good], records)
        outgoing += [self.dead_letter_output(letter) for letter in dead]
        report = await deliver(outgoing)  # before this batch's offsets are acknowledged
        self.stats.events_in += len(events)
        self.stats.labelled += len(good)
        self.stats.dead_lettered += len(dead)
        self.stats.refused_outputs += report.replaced
        self.stats.undeliverable += report.undeliverable
        self.stats.batches += 1
        for letter in dead:
            log.warning(
                "dead letter",
                error=letter.error,
                reason=letter.reason[:200],
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

    async def dead_letter_batch(self, events: list[faust.EventT], exc: Exception) -> None:
        """Dead-letter every event of a batch that :meth:`handle` failed on (``internal_error``)."""
        log.exception("batch failed: dead-lettering all of it", size=len(events))
        reason = f"the worker failed on this batch: {exc!r}"
        await deliver([self.dead_letter_output(self.dead_letter(e, "internal_error", reason)) for e in events])
        self.stats.dead_lettered += len(events)

    def parse(self, event: faust.EventT, now_ms: int) -> TextEvent | DeadLetter:
        """Validate one input event (see ``stream.schemas``)."""
        message = event.message
        timestamp_ms = int(message.timestamp * 1000) if message.timestamp and message.timestamp > 0 else now_ms
        return parse_text_event(
            event.value,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            timestamp_ms=timestamp_ms,
            now_ms=now_ms,
            limits=self.limits,
        )

    @staticmethod
    def dead_letter(event: faust.EventT, error: str, reason: str) -> DeadLetter:
        """A dead letter of the input ``event`` (the raw value, and where it was read)."""
        message = event.message
        return DeadLetter(error, reason, event.value, message.topic, message.partition, message.offset)

    def dead_letter_output(self, letter: DeadLetter) -> Outgoing:
        """The dead-letter record; if even that is refused, one without the raw value."""

        def without_raw(refusal: str) -> Outgoing:
            bare = replace(letter, raw=None, reason=f"{letter.reason} (record refused with its raw value: {refusal})")
            return Outgoing(self.topics.dlq, orjson.dumps(bare.to_record()))

        return Outgoing(self.topics.dlq, orjson.dumps(letter.to_record()), fallback=without_raw)

    def labelled_outputs(self, events: list[faust.EventT], records: list[dict]) -> list[Outgoing]:
        """The labelled records (each dead-lettered as ``output_failed`` if refused), and the batch's aggregation
        input: one record per source and one for all sources, each listing ``[label, score, ts]`` per event (far
        fewer sends and table writes than per event)."""
        outgoing = []
        by_key: dict[str, list] = {ALL_SOURCES: []}
        for event, record in zip(events, records, strict=True):

            def output_failed(refusal: str, event: faust.EventT = event) -> Outgoing:
                letter = self.dead_letter(event, "output_failed", f"the labelled record was refused: {refusal}")
                return self.dead_letter_output(letter)

            outgoing.append(
                Outgoing(
                    self.topics.labelled,
                    orjson.dumps(record),
                    key=record["id"].encode(),
                    timestamp=record["ts"] / 1000,  # event time, so consumers see when it happened
                    fallback=output_failed,
                )
            )
            entry = [record["label"], record["score"], record["ts"]]
            by_key.setdefault(record["source"], []).append(entry)
            by_key[ALL_SOURCES].append(entry)
        for key, entries in by_key.items():
            if entries:
                outgoing.append(Outgoing(self.topics.aggregation_input, orjson.dumps(entries), key=key.encode()))
        return outgoing

    def review_outputs(self, events: list[TextEvent], records: list[dict]) -> list[Outgoing]:
        """The predictions the model hesitated on (uncertainty sampling), for the review topic."""
        threshold, rate = self.settings.review_margin, self.settings.review_rate
        outgoing = []
        for event, record in zip(events, records, strict=True):
            margin = score_margin(record["scores"])
            if margin < threshold and self.sampler.random() < rate:
                value = orjson.dumps(review_record(event, record, margin))
                outgoing.append(Outgoing(self.topics.review, value, key=event.id.encode()))
        self.stats.sent_for_review += len(outgoing)
        return outgoing


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
    labeller = BatchLabeller(settings, topics, server, stats)

    # Several actors share the input queue, so the next micro-batch is decoded and queued for the inference processes
    # while the previous one's outputs are sent and acknowledged. They finish out of order; the worker's consumer
    # (stream.kafka.consumer) commits only up to the first event still in flight, so this keeps at-least-once.
    @app.agent(topics.texts, name="classify", concurrency=settings.batches_in_flight)
    async def classify(stream: faust.StreamT) -> None:
        await server.ensure_loaded()
        async for events in stream.take_events(settings.batch_max, within=settings.batch_wait):
            guard.progress()
            try:
                await labeller.handle(list(events))
            except Exception as exc:
                # A bug, not bad input (that is handled per record): Faust would acknowledge the batch as the agent
                # raised and lose it. Dead-letter all of it instead, raw values kept for a replay.
                await labeller.dead_letter_batch(list(events), exc)

    @app.agent(topics.aggregation_input, name="aggregate")
    async def aggregate(stream: faust.StreamT) -> None:
        # Per event (not take()): Faust tables can only be changed while an event is current.
        async for event in stream.events():
            guard.progress()
            key = event.key.decode()
            current = state.get(key) or empty_state()
            if aggregator.forget_future(current, int(time.time() * 1000) + labeller.limits.max_ahead_ms):
                log.warning("far-future watermark left by an earlier version dropped", source=key)
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
