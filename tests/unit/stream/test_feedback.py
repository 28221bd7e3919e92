"""Feedback records: validation and the de-duplicated training snapshot."""

from __future__ import annotations

import orjson
import pytest

from stream.feedback import FeedbackExample, parse_feedback, snapshot
from stream.schemas import DeadLetter, InputLimits


def parse(value, offset=0):
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return parse_feedback(raw, topic="emotion.feedback", partition=0, offset=offset, limits=InputLimits(max_chars=100))


def test_valid_feedback_with_label_or_labels():
    assert parse({"id": "a", "text": " great ", "label": "joy"}) == FeedbackExample("id:a", "great", "joy", 0, 0)
    assert parse({"text": "meh", "labels": ["neutral"], "annotator": "x"}).label == "neutral"


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (b"{nope", "invalid_json"),
        ([1], "not_an_object"),
        ({"label": "joy"}, "missing_text"),
        ({"text": "x" * 101, "label": "joy"}, "text_too_long"),
        ({"text": "x"}, "invalid_label"),
        ({"text": "x", "label": ""}, "invalid_label"),
        ({"text": "x", "labels": ["joy", "anger"]}, "several_labels"),
    ],
)
def test_invalid_feedback_is_a_dead_letter(value, error):
    dead = parse(value)
    assert isinstance(dead, DeadLetter) and dead.error == error and dead.reason


def test_snapshot_keeps_the_latest_label_per_id_or_text():
    examples = [
        parse({"id": 1, "text": "a", "label": "joy"}, offset=0),
        parse({"id": 1, "text": "a", "label": "anger"}, offset=5),  # corrected later
        parse({"text": "b", "label": "fear"}, offset=1),
        parse({"text": "b", "label": "fear"}, offset=2),  # duplicate without id
    ]
    data = snapshot(examples)
    assert data.labels == ("anger", "fear")
    pairs = sorted(zip(data.texts, [data.labels[t[0]] for t in data.targets], strict=True))
    assert pairs == [("a", "anger"), ("b", "fear")]
