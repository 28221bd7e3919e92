"""Input validation and output records of the stream, without Kafka."""

from __future__ import annotations

import base64

import orjson
import pytest

from stream.schemas import (
    DeadLetter,
    TextEvent,
    labelled_record,
    parse_text_event,
    parse_timestamp,
    review_record,
    score_margin,
)

WHERE = {"topic": "emotion.texts", "partition": 2, "offset": 41, "timestamp_ms": 1_700_000_000_000, "max_chars": 20}


def parse(value):
    raw = value if isinstance(value, bytes) or value is None else orjson.dumps(value)
    return parse_text_event(raw, **WHERE)


def test_minimal_event_gets_derived_id_default_source_and_kafka_time():
    event = parse({"text": "hello"})
    assert event == TextEvent("emotion.texts:2:41", "hello", "unknown", 1_700_000_000_000, {})


def test_full_event():
    event = parse({"id": "a1", "text": "hi", "source": "chat", "ts": "2024-01-02T03:04:05Z", "meta": {"k": 1}})
    assert (event.id, event.source, event.ts, event.meta) == ("a1", "chat", 1704164645000, {"k": 1})
    assert parse({"id": 7, "text": "x", "ts": 1234}).id == "7"


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (None, "empty_record"),
        (b"\xff\xfe{", "invalid_utf8"),
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        ({"source": "chat"}, "missing_text"),
        ({"text": 5}, "text_not_string"),
        ({"text": "  \n"}, "empty_text"),
        ({"text": "x" * 21}, "text_too_long"),
        ({"text": "x", "id": ""}, "invalid_id"),
        ({"text": "x", "id": True}, "invalid_id"),
        ({"text": "x", "source": 3}, "invalid_source"),
        ({"text": "x", "source": "*"}, "invalid_source"),
        ({"text": "x", "ts": "yesterday"}, "invalid_ts"),
        ({"text": "x", "ts": "2024-01-02T03:04:05"}, "invalid_ts"),
        ({"text": "x", "meta": [1]}, "invalid_meta"),
    ],
)
def test_bad_input_becomes_a_dead_letter_with_a_reason(raw, error):
    dead = parse(raw)
    assert isinstance(dead, DeadLetter) and dead.error == error and dead.reason
    record = dead.to_record()
    assert (record["topic"], record["partition"], record["offset"]) == ("emotion.texts", 2, 41)
    assert isinstance(record["raw"], str)


def test_undecodable_bytes_are_kept_whole():
    record = parse(b"\xff\xfe{").to_record()
    assert base64.b64decode(record["raw_base64"]) == b"\xff\xfe{"


def test_timestamps():
    assert parse_timestamp(None, default_ms=5) == 5
    assert parse_timestamp(1.5e12, default_ms=0) == 1_500_000_000_000
    assert parse_timestamp("1970-01-01T00:00:01+00:00", default_ms=0) == 1000
    with pytest.raises(ValueError):
        parse_timestamp(-1, default_ms=0)


def test_review_margin_and_record():
    assert score_margin({"joy": 0.5, "anger": 0.3, "fear": 0.2}) == pytest.approx(0.2)
    assert score_margin({"joy": 1.0}) == 1.0
    event = TextEvent("a", "hmm", "chat", 10)
    labelled = {"label": "joy", "scores": {"joy": 0.5, "anger": 0.45}, "model_version": "v0001"}
    assert review_record(event, labelled, 0.05) == {
        "id": "a",
        "text": "hmm",
        "source": "chat",
        "ts": 10,
        "label": "joy",
        "scores": {"joy": 0.5, "anger": 0.45},
        "margin": 0.05,
        "model_version": "v0001",
    }


def test_labelled_record_carries_prediction_and_version():
    event = TextEvent("a", "hi", "chat", 10)
    record = labelled_record(event, {"label": "joy", "score": 0.9, "scores": {"joy": 0.9}}, "v0003", 20)
    assert record == {
        "id": "a",
        "source": "chat",
        "ts": 10,
        "label": "joy",
        "score": 0.9,
        "scores": {"joy": 0.9},
        "model_version": "v0003",
        "processed_at": 20,
    }
