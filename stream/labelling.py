"""The classify path's pure core: one micro-batch of input records in; accepted events and dead letters, labelled
events, review picks and aggregation input out.

No Kafka and no model here: the classify agent turns Faust's events into :class:`InputRecord`, calls
:func:`split_batch`, has the accepted texts predicted, and calls :func:`label`, :func:`review_picks` and
:func:`aggregation_input` to know what to send (bytewax's ``oks``/``errs`` shape).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from models.prediction import PredictionColumns
from stream.schemas import (
    ALL_SOURCES,
    DeadLetter,
    InputLimits,
    LabelledEvent,
    TextEvent,
    parse_text_event,
    review_record,
)


@dataclass(slots=True)  # not frozen: built per event, and frozen costs ~0.7 us more each
class InputRecord:
    """What the core needs of one input record: its value and where it was read. ``timestamp_ms`` is its Kafka
    timestamp, None when it has none (then the worker's clock stands in)."""

    value: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None

    def dead_letter(self, error: str, reason: str) -> DeadLetter:
        """A dead letter of this record (its raw value, and where it was read)."""
        return DeadLetter(error, reason, self.value, self.topic, self.partition, self.offset)


@dataclass(slots=True)  # not frozen: built per event, and frozen costs ~0.7 us more each
class Accepted:
    """A valid input event and the record it came from."""

    record: InputRecord
    event: TextEvent


def split_batch(
    records: Sequence[InputRecord], *, now_ms: int, limits: InputLimits
) -> tuple[list[Accepted], list[DeadLetter]]:
    """Validate every record (``stream.schemas.parse_text_event``): the valid events in input order, and a dead letter
    for each of the others."""
    accepted, dead = [], []
    for record in records:
        timestamp_ms = record.timestamp_ms if record.timestamp_ms and record.timestamp_ms > 0 else now_ms
        parsed = parse_text_event(
            record.value,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=timestamp_ms,
            now_ms=now_ms,
            limits=limits,
        )
        if isinstance(parsed, DeadLetter):
            dead.append(parsed)
        else:
            accepted.append(Accepted(record, parsed))
    return accepted, dead


def label(
    accepted: Sequence[Accepted], predictions: PredictionColumns, model_version: str, processed_at: int
) -> list[LabelledEvent]:
    """One labelled event per accepted event, in the same order (``predictions`` has one entry per accepted event)."""
    return [
        LabelledEvent(
            item.event.id,
            item.event.source,
            item.event.ts,
            name,
            score,
            scores_json,
            margin,
            model_version,
            processed_at,
            chosen,
        )
        for item, name, score, scores_json, margin, chosen in zip(
            accepted,
            predictions.label,
            predictions.score,
            predictions.scores_json,
            predictions.margin,
            predictions.labels or [None] * len(accepted),
            strict=True,
        )
    ]


def review_picks(
    accepted: Sequence[Accepted],
    labelled: Sequence[LabelledEvent],
    *,
    max_margin: float,
    rate: float,
    draw: Callable[[], float],
    boosted: Mapping[str, float] | None = None,
) -> list[dict]:
    """The review records of the predictions the model hesitated on (margin below ``max_margin``), each kept with
    probability ``rate`` (``draw`` returns a number in [0, 1), e.g. ``random.Random().random``); and, for a source in
    ``boosted`` (source -> rate: a drifting one), any other prediction with that source's probability."""
    picks = []
    if (max_margin <= 0 or rate <= 0) and not boosted:  # review off: no event to look at
        return picks
    for item, result in zip(accepted, labelled, strict=True):
        if (result.margin < max_margin and draw() < rate) or (boosted and draw() < boosted.get(result.source, 0.0)):
            picks.append(review_record(item.event, result))
    return picks


def aggregation_input(labelled: Sequence[LabelledEvent]) -> dict[str, list[list]]:
    """The batch's aggregation input: per source, and for all sources (``*``), ``[label, score, ts, id, source]`` per
    event (one record per key is far fewer sends and table writes than one per event; id and source name the event
    on ``emotion.late`` if it comes too late). Keys without events are left out."""
    by_key: dict[str, list[list]] = {}
    for result in labelled:
        entry = [result.label, result.score, result.ts, result.id, result.source]
        by_key.setdefault(result.source, []).append(entry)
        by_key.setdefault(ALL_SOURCES, []).append(entry)
    return by_key
