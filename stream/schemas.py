"""The stream's records: parsing input text events (or the reason they are dead letters) and building output records.

Pure functions over bytes and dicts, so every validation rule is testable without Kafka.

Input (``emotion.texts``)::

    {"id"?: str, "text": str, "source"?: str, "ts"?: epoch-ms | ISO-8601, "meta"?: object}

Labelled output (``emotion.labelled``, keyed by id)::

    {"id", "source", "ts", "label", "score", "scores", "labels"? (multi-label), "model_version", "processed_at"}

Dead letter (``emotion.dlq``)::

    {"error", "reason", "raw", "raw_base64"? (when not UTF-8), "topic", "partition", "offset"}
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

DEFAULT_SOURCE = "unknown"
ALL_SOURCES = "*"  # the aggregation key of the all-sources aggregate
MAX_ID_CHARS = 256
MAX_SOURCE_CHARS = 128


@dataclass(frozen=True)
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
        """The JSON-ready dead-letter record; undecodable bytes are kept whole in ``raw_base64``."""
        record: dict[str, Any] = {"error": self.error, "reason": self.reason}
        raw = self.raw or b""
        try:
            record["raw"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            record["raw"] = raw.decode("utf-8", errors="replace")
            record["raw_base64"] = base64.b64encode(raw).decode("ascii")
        record.update(topic=self.topic, partition=self.partition, offset=self.offset)
        return record


def decode_text_object(
    raw: bytes | None, dead: Callable[[str, str], DeadLetter], max_chars: int
) -> tuple[dict[str, Any], str] | DeadLetter:
    """The checks every record with a ``text`` shares (input events, feedback): UTF-8 JSON object whose ``text`` is a
    non-empty string of at most ``max_chars``. Returns the object and its text, or ``dead(error, reason)``."""
    if raw is None:
        return dead("empty_record", "the record has no value")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return dead("invalid_utf8", f"value is not valid UTF-8 ({exc.reason} at byte {exc.start})")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return dead("invalid_json", f"value is not JSON ({exc})")
    if not isinstance(value, dict):
        return dead("not_an_object", f"value is a JSON {type(value).__name__}, not an object")
    text = value.get("text")
    if text is None:
        return dead("missing_text", "the object has no 'text' field")
    if not isinstance(text, str):
        return dead("text_not_string", f"'text' is a {type(text).__name__}, not a string")
    if not text.strip():
        return dead("empty_text", "'text' is empty")
    if len(text) > max_chars:
        return dead("text_too_long", f"'text' has {len(text)} characters, more than the limit of {max_chars}")
    return value, text


def parse_text_event(
    raw: bytes | None, *, topic: str, partition: int, offset: int, timestamp_ms: int, max_chars: int
) -> TextEvent | DeadLetter:
    """Validate one input record; return the event or a :class:`DeadLetter` saying what is wrong."""

    def dead(error: str, reason: str) -> DeadLetter:
        return DeadLetter(error, reason, raw, topic, partition, offset)

    decoded = decode_text_object(raw, dead, max_chars)
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
    meta = value.get("meta", {})
    if not isinstance(meta, dict):
        return dead("invalid_meta", "'meta' must be an object")
    return TextEvent(str(event_id), text, source, ts, meta)


def parse_timestamp(value: Any, *, default_ms: int) -> int:
    """Epoch milliseconds from an int/float (epoch ms) or an ISO-8601 string; ``default_ms`` when absent."""
    if value is None:
        return default_ms
    if isinstance(value, bool):
        raise ValueError("'ts' must be epoch milliseconds or an ISO-8601 string, not a boolean")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("'ts' must not be negative")
        return int(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"'ts' {value!r} is not ISO-8601") from None
        if parsed.tzinfo is None:
            raise ValueError(f"'ts' {value!r} has no time zone (add Z or +00:00)")
        return int(parsed.timestamp() * 1000)
    raise ValueError(f"'ts' must be epoch milliseconds or an ISO-8601 string, not {type(value).__name__}")


def score_margin(scores: dict[str, float]) -> float:
    """Top score minus the runner-up: small means the model hesitated between two emotions."""
    top = sorted(scores.values(), reverse=True)
    return top[0] - top[1] if len(top) > 1 else 1.0


def review_record(event: TextEvent, labelled: dict[str, Any], margin: float) -> dict[str, Any]:
    """What annotators get on ``emotion.review``: the text, the model's guess and its scores (answers come back on
    ``emotion.feedback`` as ``{"id", "text", "label"}``)."""
    return {
        "id": event.id,
        "text": event.text,
        "source": event.source,
        "ts": event.ts,
        "label": labelled["label"],
        "scores": labelled["scores"],
        "margin": round(margin, 6),
        "model_version": labelled["model_version"],
    }


def labelled_record(event: TextEvent, prediction: dict[str, Any], model_version: str, processed_at: int) -> dict:
    """The output record for a classified event (``prediction`` as ``Prediction.to_dict()`` gives it)."""
    return {
        "id": event.id,
        "source": event.source,
        "ts": event.ts,
        **prediction,
        "model_version": model_version,
        "processed_at": processed_at,
    }
