"""The worker's two paths: classify micro-batches of text events, and aggregate labelled events into windows.

Both stay thin: split and label a batch with ``stream.labelling`` (pure), predict through ``stream.serving``, count
with ``stream.aggregation`` (pure), and send through ``stream.delivery``.

The classify path is batch-native: its actors take micro-batches of raw input records from Faust's consumer
(``WorkerApp.take_in_batches``), not Faust events, and send their outputs a partition batch at a time
(``stream.kafka.producer``); Faust's per-event machinery cost more than a GPU model (docs/benchmarks.md). Every output
of a batch is delivered before the batch is reported done, and its offsets are committed only after that (and after
Faust flushes the producer), so a crash re-emits but never loses. Aggregation stays a Faust agent over events: Faust
tables can be changed only while an event is current; the window ticks (``stream.ticks``) come through it too, so
that idle sources' windows close on time. It publishes windows, late events and drift reports (``stream.drift``).
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

import faust
import orjson
import structlog

from emostream.settings import Settings
from models.prediction import PredictionColumns
from stream.aggregation import KeyState, LateEvent, WindowAggregator, WindowRecord
from stream.aggregation_input import packed_records, read_entries
from stream.delivery import DeliveryReport, Outgoing, Sender, deliver
from stream.drift import DriftDetector, DriftReport
from stream.kafka.batches import BatchInput
from stream.kafka.changelog import TableWriter
from stream.kafka.partitioning import partitions_for_keys
from stream.kafka.stall_guard import StallGuard
from stream.key_states import KeyStates
from stream.labelling import Accepted, InputRecord, aggregation_input, label, review_picks, split_batch
from stream.metrics import WorkerCollector
from stream.review_boost import ReviewBoosts
from stream.schemas import ALL_SOURCES, DeadLetter, InputLimits, LabelledEvent
from stream.ticks import is_tick
from stream.topics import Topics

log = structlog.get_logger(__name__)

YOUNG_COLLECTION_EVERY = 10_000  # allocated containers per young collection (Python's default: 700)


@dataclass
class WorkerStats:
    """Counters since the worker started (served at ``/stats`` and logged per batch)."""

    events_in: int = 0
    labelled: int = 0
    dead_lettered: int = 0
    batches: int = 0
    aggregated: int = 0  # events the aggregate agent counted (those of its `*` key: each event once, late ones too)
    windows_published: int = 0
    late_events: int = 0  # events too late for a window (sent to the late topic), per aggregation key
    drift_reports: int = 0
    sent_for_review: int = 0
    refused_outputs: int = 0  # output records the broker refused, replaced by a dead letter saying why
    undeliverable: int = 0  # refused output records with nothing to stand for them (each logged as an error)
    dead_letters_by_reason: dict[str, int] = field(default_factory=dict)  # input dead letters by error
    emotions: dict[str, int] = field(default_factory=dict)  # labelled events by label

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counters."""
        return asdict(self)

    def count_batch(
        self, size: int, labelled: list[LabelledEvent], dead: list[DeadLetter], reviews: int, report: DeliveryReport
    ) -> None:
        """Count one classified micro-batch."""
        self.events_in += size
        self.labelled += len(labelled)
        self.dead_lettered += len(dead)
        for letter in dead:
            self.dead_letters_by_reason[letter.error] = self.dead_letters_by_reason.get(letter.error, 0) + 1
        for emotion, count in Counter(result.label for result in labelled).items():
            self.emotions[emotion] = self.emotions.get(emotion, 0) + count
        self.sent_for_review += reviews
        self.refused_outputs += report.replaced
        self.undeliverable += report.undeliverable
        self.batches += 1


@dataclass(frozen=True)
class OutputTopics:
    """The names of the classify path's output topics."""

    labelled: str
    aggregation_input: str
    review: str
    dlq: str

    @classmethod
    def of(cls, topics: Topics) -> OutputTopics:
        """The names of ``topics``' outputs."""
        return cls(
            topics.labelled.get_topic_name(),
            topics.aggregation_input.get_topic_name(),
            topics.review.get_topic_name(),
            topics.dlq.get_topic_name(),
        )


class BatchLabeller:
    """Classifies one micro-batch and delivers what comes of it: labelled events, review picks, aggregation input and
    dead letters (the pure part is ``stream.labelling``)."""

    def __init__(
        self,
        settings: Settings,
        topics: OutputTopics,
        server: Predictor,
        sender: Sender,
        stats: WorkerStats,
        boosts: ReviewBoosts | None = None,
        metrics: WorkerCollector | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics  # the histograms of /metrics (stream.metrics)
        self.boosts = boosts  # drifting sources under extra review (stream.review_boost)
        self.topics = topics
        self.server = server
        self.sender = sender
        self.stats = stats
        self.limits = InputLimits.from_settings(settings)
        self.sampler = random.Random()  # samples low-margin predictions for review at EMOSTREAM_REVIEW_RATE

    async def handle(self, raw: list[Any]) -> None:
        """Classify ``raw`` (aiokafka consumer records) and deliver every resulting record (see ``stream.delivery``:
        a bad record becomes a dead letter, the rest of the batch goes on, and nothing is reported done before it is
        delivered)."""
        records = [input_record(record) for record in raw]
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
            boosted=self.boosts.active(int(time.time() * 1000)) if self.boosts else None,
        )
        outgoing = self.labelled_outputs(accepted, labelled)
        outgoing += await self.aggregation_outputs(labelled)
        outgoing += [Outgoing(self.topics.review, orjson.dumps(r), key=r["id"].encode()) for r in reviews]
        outgoing += [self.dead_letter_output(letter) for letter in dead]
        report = await deliver(outgoing, self.sender)  # before this batch is reported done
        self.stats.count_batch(len(raw), labelled, dead, len(reviews), report)
        if self.metrics is not None:
            arrived = (item.record.timestamp_ms for item in accepted) if labelled else ()
            self.metrics.observe_batch(len(raw), inference_ms / 1000 if accepted else None, arrived)
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
            size=len(raw),
            labelled=len(labelled),
            dead_lettered=len(dead),
            inference_ms=round(inference_ms, 1),
            model_version=version,
            totals=self.stats.to_dict(),
        )

    async def dead_letter_batch(self, raw: list[Any], exc: Exception) -> None:
        """Dead-letter every record of a batch that :meth:`handle` failed on (``internal_error``)."""
        log.exception("batch failed: dead-lettering all of it", size=len(raw))
        reason = f"the worker failed on this batch: {exc!r}"
        letters = [self.dead_letter_output(input_record(r).dead_letter("internal_error", reason)) for r in raw]
        await deliver(letters, self.sender)
        self.stats.dead_lettered += len(raw)
        reasons = self.stats.dead_letters_by_reason
        reasons["internal_error"] = reasons.get("internal_error", 0) + len(raw)

    def dead_letter_output(self, letter: DeadLetter) -> Outgoing:
        """The dead-letter record; if even that is refused, one without the raw value."""
        return Outgoing(self.topics.dlq, orjson.dumps(letter.to_record()), fallback=self._without_raw, origin=letter)

    def _without_raw(self, letter: DeadLetter, refusal: str) -> Outgoing:
        bare = replace(letter, raw=None, reason=f"{letter.reason} (record refused with its raw value: {refusal})")
        return Outgoing(self.topics.dlq, orjson.dumps(bare.to_record()))

    def labelled_outputs(self, accepted: list[Accepted], labelled: list[LabelledEvent]) -> list[Outgoing]:
        """The labelled records, keyed by event id, at event time; each dead-lettered as ``output_failed`` if the
        broker refuses it."""
        return [
            Outgoing(
                self.topics.labelled,
                result.to_json(),
                key=result.id.encode(),
                timestamp_ms=result.ts,  # event time, so consumers see when it happened
                fallback=self._output_failed,
                origin=item.record,
            )
            for item, result in zip(accepted, labelled, strict=True)
        ]

    async def aggregation_outputs(self, labelled: list[LabelledEvent]) -> list[Outgoing]:
        """The batch's aggregation input, one record per partition of the aggregation topic with every key that lives
        there (``stream.aggregation_input``)."""
        by_key = aggregation_input(labelled)
        if not by_key:
            return []
        topic = self.topics.aggregation_input
        partitions = partitions_for_keys([key.encode() for key in by_key], await self.sender.partitions(topic))
        return [Outgoing(topic, value, partition=partition) for partition, value in packed_records(by_key, partitions)]

    def _output_failed(self, record: InputRecord, refusal: str) -> Outgoing:
        reason = f"the labelled record was refused: {refusal}"
        return self.dead_letter_output(record.dead_letter("output_failed", reason))


def input_record(record: Any) -> InputRecord:
    """What ``stream.labelling`` needs of an aiokafka consumer record (its timestamp is in milliseconds)."""
    timestamp = record.timestamp
    return InputRecord(
        record.value, record.topic, record.partition, record.offset, timestamp if timestamp and timestamp > 0 else None
    )


class Predictor(Protocol):
    """What the agents need of the model (``stream.serving.ModelServer``)."""

    is_loaded: bool
    loaded: Any  # the model in service: its ``version``
    swap_outcomes: dict[str, int]  # hot swaps by outcome (``/metrics``)

    async def ensure_loaded(self) -> Any: ...

    async def predict(self, texts: list[str]) -> tuple[PredictionColumns, str]: ...

    def processes_alive(self) -> list[bool]: ...  # one per inference process (``/health``)


@dataclass(frozen=True)
class WorkerParts:
    """What the agents work with, built once by the app factory."""

    settings: Settings
    topics: Topics
    server: Predictor
    sender: Sender  # the classify path's outputs
    state: faust.TableT  # aggregation key -> KeyState.to_json()
    writes: TableWriter  # how the aggregate agent changes ``state`` (changelog records sent with its outputs)
    states: KeyStates  # the aggregate agent's reads and writes of ``state``, as KeyState objects
    aggregator: WindowAggregator
    drift: DriftDetector
    boosts: ReviewBoosts | None  # None unless EMOSTREAM_DRIFT_REVIEW_RATE is set
    metrics: WorkerCollector  # GET /metrics
    stats: WorkerStats
    guard: StallGuard


def register_agents(app: faust.App, parts: WorkerParts, inputs: BatchInput) -> None:
    """Attach the classify actors (fed by ``inputs``, the input topic's micro-batches) and the aggregation agent to
    ``app``; both report their progress to the stall guard."""
    settings, topics, guard = parts.settings, parts.topics, parts.guard
    labeller = BatchLabeller(
        settings, OutputTopics.of(topics), parts.server, parts.sender, parts.stats, parts.boosts, parts.metrics
    )

    # Several actors share the input: the next micro-batch is decoded and queued for the inference processes while the
    # previous one's outputs are sent. They finish out of order; offsets are committed only up to the first batch
    # still in flight (stream.kafka.batches), so this keeps at-least-once.
    @app.task
    async def classify() -> None:
        await parts.server.ensure_loaded()
        # What start-up built (Faust, aiokafka, the app) lives as long as the worker: kept out of the collector's way,
        # each full collection walked all of it (65 ms, a dozen times a minute under load). And young collections less
        # often: a micro-batch allocates some ten containers per event, nearly all freed by reference counting, and a
        # collection every 700 of them was a sixth of the worker's CPU per event (docs/benchmarks.md).
        gc.freeze()
        gc.set_threshold(YOUNG_COLLECTION_EVERY, *gc.get_threshold()[1:])
        guard.progress(settings.topic_texts)  # watched from now: records that waited for the model were not stalled
        actors = [classify_batches(app, inputs, labeller, guard) for _ in range(settings.batches_in_flight)]
        await asyncio.gather(*actors)

    aggregation_topic = topics.aggregation_input.get_topic_name()
    outputs = AggregateTopics.of(topics)

    @app.agent(topics.aggregation_input, name="aggregate")
    async def aggregate(stream: faust.StreamT) -> None:
        # Per event (not take()): Faust tables can only be changed while an event is current. The guard watches the
        # topic from its first record (after Faust recovered the table; a tick comes within EMOSTREAM_WINDOW_TICK).
        async for event in stream.events():
            guard.progress(aggregation_topic)
            message = event.message
            now_ms = record_time_ms(message.timestamp)  # the records' clock: a replay decides as the first reading did
            if is_tick(event.value):
                results = aggregate_tick(parts, message.partition, now_ms)
            else:
                results = [
                    aggregate_entries(parts, key, entries, message.partition, now_ms, labeller.limits)
                    for key, entries in read_entries(event.key, event.value)
                ]
            # The state's changelog records and the windows, late events and drift reports, delivered together before
            # Faust may let the event go.
            changelog = parts.writes.take()
            outgoing = changelog + [
                record for result in results for record in result.outgoing(outputs, parts.aggregator.sizes)
            ]
            if outgoing:
                report = await deliver(outgoing, parts.sender)
                parts.writes.delivered(changelog, parts.sender)
                parts.stats.undeliverable += report.undeliverable


async def classify_batches(app: faust.App, inputs: BatchInput, labeller: BatchLabeller, guard: StallGuard) -> None:
    """One classify actor: take a micro-batch, label and deliver it, report it done; until the app stops."""
    settings = labeller.settings
    while True:
        batch = await inputs.take(settings.batch_max, settings.batch_wait)
        guard.progress(settings.topic_texts)
        try:
            try:
                await labeller.handle(batch.records)
            except Exception as exc:  # a bug, not bad input (handled per record): dead-letter the batch, raw kept
                await labeller.dead_letter_batch(batch.records, exc)
        except Exception as exc:
            # Not even the dead letters went out: the batch is not done, so its offsets are never committed; a worker
            # that goes on would hold every later commit of its partitions back. Stop, and read it again on restart.
            log.exception("a micro-batch could not be delivered: stopping the worker", size=len(batch.records))
            await app.crash(exc)
            return
        inputs.done(batch)


def record_time_ms(timestamp: float | None) -> int:
    """A record's Kafka timestamp (Faust gives seconds) in ms, or this worker's clock when it has none."""
    return int(timestamp * 1000) if timestamp and timestamp > 0 else int(time.time() * 1000)


@dataclass(frozen=True)
class AggregateTopics:
    """The names of the aggregate agent's output topics."""

    aggregates: str
    late: str
    drift: str

    @classmethod
    def of(cls, topics: Topics) -> AggregateTopics:
        return cls(topics.aggregates.get_topic_name(), topics.late.get_topic_name(), topics.drift.get_topic_name())


@dataclass(frozen=True)
class KeyResult:
    """What one aggregation key published: windows (final, revised or rolling), late events, drift reports."""

    key: str
    windows: list[WindowRecord]
    missed: list[LateEvent]
    drift: list[DriftReport]

    def outgoing(self, topics: AggregateTopics, sizes: dict[str, int]) -> list[Outgoing]:
        """The records to send, keyed by the aggregation key (late events by their id)."""
        key = self.key.encode()
        records = [Outgoing(topics.aggregates, orjson.dumps(w.to_record()), key=key) for w in self.windows]
        records += [
            Outgoing(topics.late, orjson.dumps(m.to_record(sizes)), key=(m.id or self.key).encode())
            for m in self.missed
        ]
        records += [Outgoing(topics.drift, orjson.dumps(d.to_record()), key=key) for d in self.drift]
        return records


def aggregate_entries(
    parts: WorkerParts, key: str, entries: list, partition: int, now_ms: int, limits: InputLimits
) -> KeyResult:
    """Count one aggregation-input record (``[label, score, ts, id, source]`` per event), read from ``partition`` at
    ``now_ms``, into ``key``'s state; called while its event is current, as Faust's tables require."""
    state = parts.states.read(key)
    state.partition = partition
    limit_ms = int(time.time() * 1000) + limits.max_ahead_ms
    update = parts.aggregator.add_batch(state, key, entries, arrived_ms=now_ms, limit_ms=limit_ms)
    drift = observe_drift(parts, state, update.published)
    parts.states.write(key, state)
    if key == ALL_SOURCES:
        parts.stats.aggregated += len(entries)
    if update.future_dropped:
        log.warning("far-future watermark left by an earlier version dropped", source=key)
    if update.missed:
        parts.stats.late_events += len(update.missed)
        log.warning(
            "late events sent to the late topic", source=key, count=len(update.missed), watermark=state.watermark
        )
    return published(parts, KeyResult(key, update.published, update.missed, drift))


def aggregate_tick(parts: WorkerParts, partition: int, now_ms: int) -> list[KeyResult]:
    """A tick read from ``partition`` at ``now_ms``: for the keys that live in that partition and have something due
    (idle windows to close, a rolling publication), do it. Only those keys are loaded and written back: a tick costs
    two lookups per key otherwise."""
    results = []
    for key, value in list(parts.state.items()):
        if value is None or value.get("partition") != partition or (value.get("due_at") or now_ms + 1) > now_ms:
            continue
        state = parts.states.decoded(key, value)
        windows = parts.aggregator.tick(state, key, now_ms)
        if windows is None:  # nothing changed (not kept decoded: the next read decodes it again)
            continue
        drift = observe_drift(parts, state, windows)
        parts.states.write(key, state)
        results.append(published(parts, KeyResult(key, windows, [], drift)))
    return results


def observe_drift(parts: WorkerParts, state: KeyState, windows: list[WindowRecord]) -> list[DriftReport]:
    """Compare each first publication of a tumbling window with its key's baseline (kept in ``state``)."""
    reports = []
    for window in windows:
        if window.kind == "tumbling" and window.revision == 0:
            report = parts.drift.observe(state.history, window.key, window.start, window.end, window.counts)
            if report is not None:
                reports.append(report)
    return reports


def published(parts: WorkerParts, result: KeyResult) -> KeyResult:
    """Count and log what ``result`` publishes."""
    for window in result.windows:
        if window.final:
            parts.stats.windows_published += 1
            log.info(
                "window published",
                source=window.key,
                window=window.kind,
                start=window.start,
                total=window.total,
                revision=window.revision,
            )
    for report in result.drift:
        parts.stats.drift_reports += 1
        log.warning(
            "emotion mix drifted",
            source=report.source,
            window_start=report.window_start,
            distance=round(report.distance, 4),
            top_changes=report.top_changes(),
        )
    return result
