"""The stream's records: parsing input text events (or the reason they are dead letters) and building output records.

Pure functions over bytes and dicts, so every validation rule is testable without Kafka.

Input (``emotion.texts``)::

    {"id"?: str, "text": str, "source"?: str, "ts"?: epoch-ms | ISO-8601, "meta"?: object}

Labelled output (``emotion.labelled``, keyed by id)::

    {"id", "source", "ts", "label", "score", "scores", "labels"? (multi-label), "model_version", "processed_at"}

Dead letter (``emotion.dlq``)::

    {"error", "reason", "raw", "raw_base64"? (when not UTF-8), "raw_size", "raw_truncated"? (true when cut), "topic",
     "partition", "offset"}

Limits (:class:`InputLimits`) are checked before anything costly: a record larger than ``max_record_bytes`` is never
decoded, and a dead letter copies at most ``DEAD_LETTER_RAW_BYTES`` of the record, so it always fits a Kafka record.
"""

from __future__ import annotations

import base64
import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

DEFAULT_SOURCE = "unknown"
ALL_SOURCES = "*"  # the aggregation key of the all-sources aggregate
MAX_ID_CHARS = 256
MAX_SOURCE_CHARS = 128
MAX_TS_CHARS = 64  # longer than any ISO-8601 time; longer strings are refused before parsing
# A dead letter copies at most this much of the record (its base64 form adds a third): far below Kafka's 1 MB default.
DEAD_LETTER_RAW_BYTES = 64 * 1024
MAX_REASON_CHARS = 500
# Characters that show nothing on their own: controls (NUL...), format characters (zero-width space and joiners, BOM,
# word joiner) and separators. A text made only of these is empty.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})


@dataclass(frozen=True)
class InputLimits:
    """What an input record may be: its size in bytes (checked before decoding), its text's length, and how far its
    event time may lie ahead of the worker's clock (a far-future ``ts`` would close every window at once)."""

    max_chars: int = 5000
    max_record_bytes: int = 1024 * 1024
    max_ahead_ms: int = 3_600_000

    @classmethod
    def from_settings(cls, settings: Any) -> InputLimits:
        """The limits ``EMOSTREAM_MAX_TEXT_CHARS``, ``_MAX_RECORD_BYTES`` and ``_MAX_TS_AHEAD`` set."""
        return cls(settings.max_text_chars, settings.max_record_bytes, int(settings.max_ts_ahead * 1000))


@dataclass(slots=True)  # not frozen: built per event, and frozen costs ~0.7 us more each
class TextEvent:
    """A valid input event. ``ts`` is epoch milliseconds (the record's own time, else the Kafka timestamp)."""

    id: str
    text: str
    source: str
    ts: int
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeadLetter:
    """An input record that cannot be classified, with the reason and enough to find and replay it."""

    error: str
    reason: str
    raw: bytes | None
    topic: str
    partition: int
    offset: int

    def to_record(self) -> dict[str, Any]:
        """The JSON-ready dead-letter record. The record's bytes are copied up to ``DEAD_LETTER_RAW_BYTES`` (then
        ``raw_truncated`` is true; ``raw_size`` is always the full size); bytes that are not UTF-8 are also kept
        exactly in ``raw_base64``."""
        reason = self.reason if len(self.reason) <= MAX_REASON_CHARS else self.reason[:MAX_REASON_CHARS] + "..."
        record: dict[str, Any] = {"error": self.error, "reason": reason}
        raw = self.raw or b""
        excerpt = raw[:DEAD_LETTER_RAW_BYTES]
        try:
            record["raw"] = excerpt.decode("utf-8")
        except UnicodeDecodeError as exc:
            if len(excerpt) < len(raw) and exc.start >= len(excerpt) - 3:  # the cut split a character: not an error
                record["raw"] = excerpt[: exc.start].decode("utf-8", errors="replace")
            else:
                record["raw"] = excerpt.decode("utf-8", errors="replace")
                record["raw_base64"] = base64.b64encode(excerpt).decode("ascii")
        record["raw_size"] = len(raw)
        if len(excerpt) < len(raw):
            record["raw_truncated"] = True
        record.update(topic=self.topic, partition=self.partition, offset=self.offset)
        return record


def decode_text_object(
    raw: bytes | None, dead: Callable[[str, str], DeadLetter], limits: InputLimits
) -> tuple[dict[str, Any], str] | DeadLetter:
    """The checks every record with a ``text`` shares (input events, feedback): at most ``limits.max_record_bytes``,
    a UTF-8 JSON object whose ``text`` is a string of at most ``limits.max_chars`` with something visible in it.
    Returns the object and its text, or ``dead(error, reason)``."""
    if raw is None:
        return dead("empty_record", "the record has no value")
    if len(raw) > limits.max_record_bytes:
        return dead(
            "record_too_large", f"the record has {len(raw)} bytes, more than the limit of {limits.max_record_bytes}"
        )
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # orjson refuses invalid UTF-8 as well: decoding only now (not every value) still says which it was, and where.
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            return dead("invalid_utf8", f"value is not valid UTF-8 ({bad.reason} at byte {bad.start})")
        return dead("invalid_json", f"value is not JSON ({exc})")
    if not isinstance(value, dict):
        return dead("not_an_object", f"value is a JSON {type(value).__name__}, not an object")
    text = value.get("text")
    if text is None:
        return dead("missing_text", "the object has no 'text' field")
    if not isinstance(text, str):
        return dead("text_not_string", f"'text' is a {type(text).__name__}, not a string")
    if len(text) > limits.max_chars:
        return dead("text_too_long", f"'text' has {len(text)} characters, more than the limit of {limits.max_chars}")
    if not has_visible_text(text):
        return dead("empty_text", "'text' is empty (nothing but spaces, control or zero-width characters)")
    return value, text


def has_visible_text(text: str) -> bool:
    """Whether ``text`` has a character that shows (not a space, control, zero-width or other format character)."""
    if text[:1].isalnum():  # most texts start with a letter or digit, which always shows: no per-character scan
        return True
    return any(not ch.isspace() and unicodedata.category(ch) not in _INVISIBLE_CATEGORIES for ch in text)


def parse_text_event(
    raw: bytes | None,
    *,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int,
    now_ms: int,
    limits: InputLimits,
) -> TextEvent | DeadLetter:
    """Validate one input record; return the event or a :class:`DeadLetter` saying what is wrong.

    ``timestamp_ms`` is the Kafka record's timestamp (the event time when the record has no ``ts``); ``now_ms`` is the
    worker's clock, against which the event time is bounded: from 1970 to ``limits.max_ahead_ms`` ahead.
    """

    def dead(error: str, reason: str) -> DeadLetter:
        return DeadLetter(error, reason, raw, topic, partition, offset)

    decoded = decode_text_object(raw, dead, limits)
    if isinstance(decoded, DeadLetter):
        return decoded
    value, text = decoded
    event_id = value.get("id")
    if event_id is None:
        event_id = f"{topic}:{partition}:{offset}"
    elif not isinstance(event_id, str | int) or isinstance(event_id, bool) or not str(event_id):
        return dead("invalid_id", "'id' must be a non-empty string")
    elif len(str(event_id)) > MAX_ID_CHARS:
        return dead("invalid_id", f"'id' is longer than {MAX_ID_CHARS} characters")
    source = value.get("source", DEFAULT_SOURCE)
    if not isinstance(source, str) or not source or len(source) > MAX_SOURCE_CHARS:
        return dead("invalid_source", f"'source' must be a string of 1 to {MAX_SOURCE_CHARS} characters")
    if source == ALL_SOURCES:
        return dead("invalid_source", f"'source' {ALL_SOURCES!r} is reserved for the all-sources aggregate")
    try:
        ts = parse_timestamp(value.get("ts"), default_ms=timestamp_ms)
    except ValueError as exc:
        return dead("invalid_ts", str(exc))
    if not 0 <= ts <= now_ms + limits.max_ahead_ms:
        where = "'ts'" if "ts" in value else "the record's Kafka timestamp (it has no 'ts')"
        return dead(
            "ts_out_of_range",
            f"{where} {ts} ms is before 1970 or more than {limits.max_ahead_ms} ms ahead of the worker's clock",
        )
    meta = value.get("meta", {})
    if not isinstance(meta, dict):
        return dead("invalid_meta", "'meta' must be an object")
    return TextEvent(str(event_id), text, source, ts, meta)


def parse_timestamp(value: Any, *, default_ms: int) -> int:
    """Epoch milliseconds from an int/float (epoch ms) or an ISO-8601 string; ``default_ms`` when absent. The range is
    not checked here (see :func:`parse_text_event`)."""
    if value is None:
        return default_ms
    if isinstance(value, bool):
        raise ValueError("'ts' must be epoch milliseconds or an ISO-8601 string, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("'ts' must be a finite number")
        return int(value)
    if isinstance(value, str):
        if len(value) > MAX_TS_CHARS:
            raise ValueError(f"'ts' is a string of {len(value)} characters, not an ISO-8601 time")
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"'ts' {value!r} is not ISO-8601") from None
        if parsed.tzinfo is None:
            raise ValueError(f"'ts' {value!r} has no time zone (add Z or +00:00)")
        return int(parsed.timestamp() * 1000)
    raise ValueError(f"'ts' must be epoch milliseconds or an ISO-8601 string, not {type(value).__name__}")


@dataclass(slots=True)  # not frozen: built per event, and frozen costs ~0.7 us more each
class LabelledEvent:
    """A classified event: the ``emotion.labelled`` record, its aggregation entry and its margin. ``scores_json`` is
    the scores object as the inference process serialized it (``models.prediction.PredictionColumns``)."""

    id: str
    source: str
    ts: int
    label: str
    score: float
    scores_json: bytes
    margin: float  # top score minus the runner-up (models.prediction.score_margin)
    model_version: str
    processed_at: int
    labels: tuple[str, ...] | None = None  # multi-label models only

    def to_json(self) -> bytes:
        """The ``emotion.labelled`` record's bytes (``labels`` only for multi-label models)."""
        record: dict[str, Any] = {
            "id": self.id,
            "source": self.source,
            "ts": self.ts,
            "label": self.label,
            "score": self.score,
            "scores": orjson.Fragment(self.scores_json),
        }
        if self.labels is not None:
            record["labels"] = list(self.labels)
        record.update(model_version=self.model_version, processed_at=self.processed_at)
        return orjson.dumps(record)


def review_record(event: TextEvent, labelled: LabelledEvent) -> dict[str, Any]:
    """What annotators get on ``emotion.review``: the text, the model's guess and its scores (answers come back on
    ``emotion.feedback`` as ``{"id", "text", "label"}``). For ``orjson.dumps``: the scores are a ``Fragment``."""
    return {
        "id": event.id,
        "text": event.text,
        "source": event.source,
        "ts": event.ts,
        "label": labelled.label,
        "scores": orjson.Fragment(labelled.scores_json),
        "margin": round(labelled.margin, 6),
        "model_version": labelled.model_version,
    }
