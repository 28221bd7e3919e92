"""The classify path's pure core: a batch split into events and dead letters, labelled, sampled for review and
re-keyed for the aggregates."""

from __future__ import annotations

import orjson

from models.prediction import Prediction, PredictionColumns
from stream.labelling import InputRecord, aggregation_input, label, review_picks, split_batch
from stream.schemas import InputLimits

NOW_MS = 1_800_000_000_000
LIMITS = InputLimits(max_chars=50, max_record_bytes=1_000, max_ahead_ms=60_000)


def record(value: bytes | None, offset: int, timestamp_ms: int | None = 1_700_000_000_000) -> InputRecord:
    return InputRecord(value, "emotion.texts", 3, offset, timestamp_ms)


def test_a_batch_splits_into_events_in_order_and_dead_letters_with_where_they_were_read():
    batch = [
        record(orjson.dumps({"id": "a", "text": "so happy", "source": "chat"}), 10),
        record(b"not json", 11),
        record(orjson.dumps({"text": "meh"}), 12, timestamp_ms=None),  # no ts, no Kafka timestamp: the worker's clock
        record(b"x" * 2_000, 13),
        record(orjson.dumps({"text": "later", "ts": NOW_MS + 120_000}), 14),
    ]
    accepted, dead = split_batch(batch, now_ms=NOW_MS, limits=LIMITS)
    assert [(a.event.id, a.record.offset) for a in accepted] == [("a", 10), ("emotion.texts:3:12", 12)]
    assert accepted[0].event.ts == 1_700_000_000_000 and accepted[1].event.ts == NOW_MS
    assert [(d.error, d.offset, d.partition) for d in dead] == [
        ("invalid_json", 11, 3),
        ("record_too_large", 13, 3),
        ("ts_out_of_range", 14, 3),
    ]


def labelled_batch():
    batch = [
        record(orjson.dumps({"id": "a", "text": "yay", "source": "chat", "ts": 1_000}), 0),
        record(orjson.dumps({"id": "b", "text": "hmm", "source": "web", "ts": 2_000}), 1),
        record(orjson.dumps({"id": "c", "text": "ugh", "source": "chat", "ts": 3_000}), 2),
    ]
    accepted, _ = split_batch(batch, now_ms=NOW_MS, limits=LIMITS)
    predictions = [
        Prediction("joy", 0.9, {"joy": 0.9, "fear": 0.1}),
        Prediction("fear", 0.5, {"fear": 0.5, "joy": 0.45, "anger": 0.05}),
        Prediction("anger", 0.6, {"anger": 0.6, "fear": 0.3, "joy": 0.1}),
    ]
    return accepted, label(accepted, PredictionColumns.of(predictions), "v0004", 99)


def test_labelled_events_carry_their_event_prediction_and_version():
    _, labelled = labelled_batch()
    assert [(e.id, e.source, e.ts, e.label, e.model_version, e.processed_at) for e in labelled] == [
        ("a", "chat", 1_000, "joy", "v0004", 99),
        ("b", "web", 2_000, "fear", "v0004", 99),
        ("c", "chat", 3_000, "anger", "v0004", 99),
    ]


def test_aggregation_input_has_one_entry_list_per_source_and_one_for_all():
    _, labelled = labelled_batch()
    assert aggregation_input(labelled) == {
        "chat": [["joy", 0.9, 1_000, "a", "chat"], ["anger", 0.6, 3_000, "c", "chat"]],
        "*": [["joy", 0.9, 1_000, "a", "chat"], ["fear", 0.5, 2_000, "b", "web"], ["anger", 0.6, 3_000, "c", "chat"]],
        "web": [["fear", 0.5, 2_000, "b", "web"]],
    }
    assert aggregation_input([]) == {}


def test_review_picks_the_hesitant_predictions_at_the_sampling_rate():
    accepted, labelled = labelled_batch()
    picks = review_picks(accepted, labelled, max_margin=0.35, rate=1.0, draw=lambda: 0.0)
    assert [(p["id"], p["margin"]) for p in picks] == [("b", 0.05), ("c", 0.3)]
    assert picks[0]["text"] == "hmm" and picks[0]["model_version"] == "v0004"
    draws = iter([0.7, 0.2])  # one draw per hesitant prediction, kept when below the rate
    assert [p["id"] for p in review_picks(accepted, labelled, max_margin=0.35, rate=0.5, draw=lambda: next(draws))] == [
        "c"
    ]
    assert review_picks(accepted, labelled, max_margin=0.0, rate=1.0, draw=lambda: 0.0) == []  # review off
    assert review_picks(accepted, labelled, max_margin=0.35, rate=0.0, draw=lambda: 0.0) == []  # and so


def test_a_boosted_source_also_gets_confident_predictions_reviewed():
    accepted, labelled = labelled_batch()
    boosted = {"web": 1.0}  # a drifting source: every prediction, whatever its margin
    picks = review_picks(accepted, labelled, max_margin=0.0, rate=1.0, draw=lambda: 0.0, boosted=boosted)
    assert [p["source"] for p in picks] == ["web"]
    assert review_picks(accepted, labelled, max_margin=0.0, rate=1.0, draw=lambda: 0.5, boosted={"web": 0.4}) == []
