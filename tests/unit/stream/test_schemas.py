"""Input validation and output records of the stream, without Kafka."""

from __future__ import annotations

import base64

import orjson
import pytest

from models.prediction import score_margin
from stream.schemas import (
    DEAD_LETTER_RAW_BYTES,
    DeadLetter,
    InputLimits,
    LabelledEvent,
    TextEvent,
    has_visible_text,
    parse_text_event,
    parse_timestamp,
    review_record,
)

NOW_MS = 1_800_000_000_000  # the worker's clock
LIMITS = InputLimits(max_chars=20, max_record_bytes=10_000, max_ahead_ms=60_000)
WHERE = {"topic": "emotion.texts", "partition": 2, "offset": 41, "timestamp_ms": 1_700_000_000_000, "now_ms": NOW_MS}


def parse(value, **where):
    raw = value if isinstance(value, bytes) or value is None else orjson.dumps(value)
    return parse_text_event(raw, **{**WHERE, "limits": LIMITS, **where})


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
        # Invalid UTF-8 inside otherwise valid JSON: a surrogate, an overlong form, a cut sequence, a lone byte.
        (b'{"text": "a\xed\xa0\x80"}', "invalid_utf8"),
        (b'{"text": "a\xc0\xaf"}', "invalid_utf8"),
        (b'{"text": "a\xe2\x82"}', "invalid_utf8"),
        (b'{"text": "caf\xe9", "id": "x"}', "invalid_utf8"),
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
        ({"text": "\u200b\u200d\ufeff"}, "empty_text"),  # zero-width characters only
        ({"text": "\x00\x00 \u2060"}, "empty_text"),  # NUL and word joiner
        ({"text": "x", "ts": "9" * 100}, "invalid_ts"),  # refused before parsing
        ({"text": "x", "ts": 10**19}, "ts_out_of_range"),  # beyond int64: once dropped a whole batch
        ({"text": "x", "ts": 2**64 - 1}, "ts_out_of_range"),
        ({"text": "x", "ts": 1e300}, "ts_out_of_range"),
        ({"text": "x", "ts": 9e18}, "ts_out_of_range"),  # within int64, but would close every window at once
        ({"text": "x", "ts": NOW_MS + 60_001}, "ts_out_of_range"),
        ({"text": "x", "ts": -1}, "ts_out_of_range"),
        ({"text": "x", "ts": "0001-01-01T00:00:00Z"}, "ts_out_of_range"),  # before 1970, like a negative number
        (b'{"text": "' + b"x" * 10_000 + b'"}', "record_too_large"),
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
    assert record["raw_size"] == 3 and "raw_truncated" not in record


def test_event_time_bounds():
    assert parse({"text": "x", "ts": NOW_MS + 60_000}).ts == NOW_MS + 60_000  # at the allowance: accepted
    assert parse({"text": "x", "ts": 0}).ts == 0
    assert parse({"text": "x", "ts": "1999-01-01T00:00:00Z"}).ts == 915_148_800_000  # old events are fine (late)
    no_ts = parse({"text": "x"}, timestamp_ms=NOW_MS + 10**12)  # a producer's clock far ahead: Kafka time checked too
    assert no_ts.error == "ts_out_of_range" and "Kafka timestamp" in no_ts.reason


@pytest.mark.parametrize("raw", [b"\xff" * 400_000, b"x" * 50_000_000, orjson.dumps({"text": "a" * 5_000_000})])
def test_a_dead_letter_of_a_huge_record_is_bounded_and_says_how_big_it_was(raw):
    letter = parse(raw, limits=InputLimits(max_record_bytes=1024 * 1024))
    assert isinstance(letter, DeadLetter)
    record = letter.to_record()
    # Far below Kafka's 1 MB whatever came in: at most the excerpt as text (each invalid byte shown as a 3-byte U+FFFD)
    # plus its base64.
    assert len(orjson.dumps(record)) < 5 * DEAD_LETTER_RAW_BYTES
    assert record["raw_size"] == len(raw) and record["raw_truncated"] is True
    assert raw.startswith(base64.b64decode(record["raw_base64"]) if "raw_base64" in record else record["raw"].encode())


def test_a_cut_through_a_multibyte_character_is_not_taken_for_invalid_utf8():
    raw = ("é" * DEAD_LETTER_RAW_BYTES).encode()  # two bytes each: the cut falls between the two of one character
    record = DeadLetter("record_too_large", "too big", b"x" + raw, "t", 0, 0).to_record()
    assert "raw_base64" not in record and record["raw"].startswith("xé")


def test_a_long_reason_is_cut():
    record = DeadLetter("invalid_ts", "r" * 10_000, b"{}", "t", 0, 0).to_record()
    assert len(record["reason"]) < 600


def test_timestamps():
    assert parse_timestamp(None, default_ms=5) == 5
    assert parse_timestamp(1.5e12, default_ms=0) == 1_500_000_000_000
    assert parse_timestamp("1970-01-01T00:00:01+00:00", default_ms=0) == 1000
    assert parse_timestamp(-1, default_ms=0) == -1  # the range is parse_text_event's to check
    with pytest.raises(ValueError):
        parse_timestamp(True, default_ms=0)


def test_review_margin_and_record():
    assert score_margin({"joy": 0.5, "anger": 0.3, "fear": 0.2}) == pytest.approx(0.2)
    assert score_margin({"joy": 1.0}) == 1.0
    event = TextEvent("a", "hmm", "chat", 10)
    labelled = LabelledEvent("a", "chat", 10, "joy", 0.5, b'{"joy":0.5,"anger":0.45}', 0.05, "v0001", 20)
    assert orjson.loads(orjson.dumps(review_record(event, labelled))) == {
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
    labelled = LabelledEvent("a", "chat", 10, "joy", 0.9, orjson.dumps({"joy": 0.9}), 1.0, "v0003", 20)
    record = orjson.loads(labelled.to_json())
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
    assert list(record) == ["id", "source", "ts", "label", "score", "scores", "model_version", "processed_at"]


def test_a_multi_label_record_lists_its_labels():
    scores = orjson.dumps({"joy": 0.9, "love": 0.7})
    labelled = LabelledEvent("a", "chat", 10, "joy", 0.9, scores, 0.2, "v0003", 20, ("joy", "love"))
    assert orjson.loads(labelled.to_json())["labels"] == ["joy", "love"]


@pytest.mark.parametrize(
    ("text", "visible"),
    [
        ("i feel fine", True),
        ("Überrascht", True),  # a letter outside ASCII
        ("٣ days", True),  # a digit outside ASCII
        ("\u200b\u200dhi", True),  # zero-width characters before the text
        ("   😀", True),  # a symbol after spaces
        ("\t\n \u00a0", False),
        ("\u2060\ufeff\x07", False),
        ("", False),
    ],
)
def test_visible_text_is_what_shows(text, visible):
    assert has_visible_text(text) is visible
