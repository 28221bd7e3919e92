"""The worker's agents: classify micro-batches of text events, and aggregate labelled events into windows.

Agents stay thin: split and label a batch with ``stream.labelling`` (pure), predict through ``stream.serving``,
count with ``stream.aggregation`` (pure), and send through ``stream.delivery``. Every output of a batch is delivered
before the batch's offsets are acknowledged (Faust commits acknowledged offsets only after flushing the producer), so
a crash re-emits but never loses.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import faust
import orjson
import structlog

from emostream.settings import Settings
from models.prediction import Prediction
from stream.aggregation import ClosedWindow, KeyState, WindowAggregator
from stream.delivery import DeliveryReport, Outgoing, deliver
from stream.kafka.stall_guard import StallGuard
from stream.labelling import Accepted, InputRecord, aggregation_input, label, review_picks, split_batch
from stream.schemas import DeadLetter, InputLimits, LabelledEvent
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

    def count_batch(self, size: int, labelled: int, dead_lettered: int, reviews: int, report: DeliveryReport) -> None:
        """Count one classified micro-batch."""
        self.events_in += size
        self.labelled += labelled
        self.dead_lettered += dead_lettered
        self.sent_for_review += reviews
        self.refused_outputs += report.replaced
        self.undeliverable += report.undeliverable
        self.batches += 1


class BatchLabeller:
    """Classifies one micro-batch and delivers what comes of it: labelled events, review picks, aggregation input and
    dead letters (the pure part is ``stream.labelling``)."""

    def __init__(self, settings: Settings, topics: Topics, server: Predictor, stats: WorkerStats) -> None:
        self.settings = settings
        self.topics = topics
        self.server = server
        self.stats = stats
        self.limits = InputLimits.from_settings(settings)
        self.sampler = random.Random()  # samples low-margin predictions for review at EMOSTREAM_REVIEW_RATE

    async def handle(self, events: list[faust.EventT]) -> None:
        """Classify ``events`` and deliver every resulting record (see ``stream.delivery``: a bad record becomes a
        dead letter, the rest of the batch goes on, and nothing is acknowledged before it is delivered)."""
        records = [input_record(event) for event in events]
        accepted, dead = split_batch(records, now_ms=int(time.time() * 1000), limits=self.limits)
        labelled: list[LabelledEvent] = []
        version, inference_ms = None, 0.0
        if accepted:
            started = time.perf_counter()
            try:
                predictions, version = await self.server.predict([item.event.text for item in accepted])
            except Exception as exc:
                # Faust acknowledges a batch even when the agent raises: dead-letter it rather than lose it.
                log.exception("inference failed: dead-lettering the batch", size=len(accepted))
                reason = f"the model failed on this batch: {exc!r}"
                dead += [item.record.dead_letter("inference_failed", reason) for item in accepted]
                accepted = []
            else:
                labelled = label(accepted, predictions, version, int(time.time() * 1000))
            inference_ms = (time.perf_counter() - started) * 1000
        reviews = review_picks(
            accepted,
            labelled,
            max_margin=self.settings.review_margin,
            rate=self.settings.review_rate,
            draw=self.sampler.random,
        )
        outgoing = self.labelled_outputs(accepted, labelled)
        outgoing += [
            Outgoing(self.topics.aggregation_input, orjson.dumps(entries), key=key.encode())
            for key, entries in aggregation_input(labelled).items()
        ]
        outgoing += [Outgoing(self.topics.review, orjson.dumps(r), key=r["id"].encode()) for r in reviews]
        outgoing += [self.dead_letter_output(letter) for letter in dead]
        report = await deliver(outgoing)  # before this batch's offsets are acknowledged
        self.stats.count_batch(len(events), len(labelled), len(dead), len(reviews), report)
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
            labelled=len(labelled),
            dead_lettered=len(dead),
            inference_ms=round(inference_ms, 1),
            model_version=version,
            totals=self.stats.to_dict(),
        )

    async def dead_letter_batch(self, events: list[faust.EventT], exc: Exception) -> None:
        """Dead-letter every event of a batch that :meth:`handle` failed on (``internal_error``)."""
        log.exception("batch failed: dead-lettering all of it", size=len(events))
        reason = f"the worker failed on this batch: {exc!r}"
        await deliver([self.dead_letter_output(input_record(e).dead_letter("internal_error", reason)) for e in events])
        self.stats.dead_lettered += len(events)

    def dead_letter_output(self, letter: DeadLetter) -> Outgoing:
        """The dead-letter record; if even that is refused, one without the raw value."""

        def without_raw(refusal: str) -> Outgoing:
            bare = replace(letter, raw=None, reason=f"{letter.reason} (record refused with its raw value: {refusal})")
            return Outgoing(self.topics.dlq, orjson.dumps(bare.to_record()))

        return Outgoing(self.topics.dlq, orjson.dumps(letter.to_record()), fallback=without_raw)

    def labelled_outputs(self, accepted: list[Accepted], labelled: list[LabelledEvent]) -> list[Outgoing]:
        """The labelled records, keyed by event id, at event time; each dead-lettered as ``output_failed`` if the
        broker refuses it."""
        outgoing = []
        for item, result in zip(accepted, labelled, strict=True):

            def output_failed(refusal: str, record: InputRecord = item.record) -> Outgoing:
                reason = f"the labelled record was refused: {refusal}"
                return self.dead_letter_output(record.dead_letter("output_failed", reason))

            outgoing.append(
                Outgoing(
                    self.topics.labelled,
                    result.to_json(),
                    key=result.id.encode(),
                    timestamp=result.ts / 1000,  # event time, so consumers see when it happened
                    fallback=output_failed,
                )
            )
        return outgoing


def input_record(event: faust.EventT) -> InputRecord:
    """What ``stream.labelling`` needs of a Faust event."""
    message = event.message
    timestamp_ms = int(message.timestamp * 1000) if message.timestamp and message.timestamp > 0 else None
    return InputRecord(event.value, message.topic, message.partition, message.offset, timestamp_ms)


class Predictor(Protocol):
    """What the agents need of the model (``stream.serving.ModelServer``)."""

    is_loaded: bool
    loaded: Any  # the model in service: its ``version``

    async def ensure_loaded(self) -> Any: ...

    async def predict(self, texts: list[str]) -> tuple[list[Prediction], str]: ...


@dataclass(frozen=True)
class WorkerParts:
    """What the agents work with, built once by the app factory."""

    settings: Settings
    topics: Topics
    server: Predictor
    state: faust.TableT  # aggregation key -> KeyState.to_json()
    aggregator: WindowAggregator
    stats: WorkerStats
    guard: StallGuard


def register_agents(app: faust.App, parts: WorkerParts) -> None:
    """Attach the classification and aggregation agents to ``app``; both report their progress to the stall guard."""
    settings, topics, guard = parts.settings, parts.topics, parts.guard
    labeller = BatchLabeller(settings, topics, parts.server, parts.stats)

    # Several actors share the input queue, so the next micro-batch is decoded and queued for the inference processes
    # while the previous one's outputs are sent and acknowledged. They finish out of order; the worker's consumer
    # (stream.kafka.consumer) commits only up to the first event still in flight, so this keeps at-least-once.
    @app.agent(topics.texts, name="classify", concurrency=settings.batches_in_flight)
    async def classify(stream: faust.StreamT) -> None:
        await parts.server.ensure_loaded()
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
            for window in aggregate_entries(parts, event.key.decode(), orjson.loads(event.value), labeller.limits):
                await topics.aggregates.send(key=event.key, value=orjson.dumps(window.to_record()))
                log.info("window closed", source=window.key, window=window.kind, start=window.start, total=window.total)


def aggregate_entries(parts: WorkerParts, key: str, entries: list, limits: InputLimits) -> list[ClosedWindow]:
    """Count one aggregation-input record (``[label, score, ts]`` per event) into ``key``'s state and return the windows
    it closes; called while its event is current, as Faust's tables require."""
    state = KeyState.from_json(parts.state.get(key))
    update = parts.aggregator.add_batch(state, key, entries, limit_ms=int(time.time() * 1000) + limits.max_ahead_ms)
    parts.state[key] = state.to_json()
    if update.future_dropped:
        log.warning("far-future watermark left by an earlier version dropped", source=key)
    if update.late:
        parts.stats.late_events += update.late
        log.warning("late events left out of the aggregates", source=key, count=update.late, watermark=state.watermark)
    parts.stats.windows_published += len(update.closed)
    return update.closed
