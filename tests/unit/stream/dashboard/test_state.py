"""The dashboard's state: windows by latest publication, the feed with its texts, the rate, and records that are not
what their topic promises counted and skipped."""

from __future__ import annotations

import orjson

from stream.dashboard.state import FEED_SIZE, WINDOWS_KEPT, DashboardState


def window(start: int, counts: dict, revision: int = 0, source: str = "chat", kind: str = "tumbling") -> bytes:
    return orjson.dumps(
        {
            "window": kind,
            "window_start": start,
            "window_end": start + 60_000,
            "source": source,
            "counts": counts,
            "total": sum(counts.values()),
            "revision": revision,
            "final": revision >= 0,
        }
    )


def labelled(event_id: str, label: str = "joy", score: float = 0.9, source: str = "chat") -> bytes:
    scores = {"joy": 0.05, "sadness": 0.05, label: score}
    return orjson.dumps(
        {"id": event_id, "source": source, "label": label, "score": score, "scores": scores, "model_version": "v0001"}
    )


def test_a_window_keeps_its_latest_publication_whatever_the_order():
    state = DashboardState()
    state.add_aggregates([window(0, {"joy": 2}, revision=-1), window(0, {"joy": 3}), window(0, {"joy": 9}, -1)])
    state.add_aggregates([window(0, {"joy": 4, "fear": 1}, revision=1), window(0, {"joy": 3}, revision=0)])
    [source] = state.snapshot(0)["sources"]
    assert source["totals"] == {"joy": 4, "fear": 1} and source["total"] == 5
    assert source["windows"][0]["final"] and source["windows"][0]["revision"] == 1


def test_reading_the_topics_again_changes_nothing():
    records = [window(0, {"joy": 2}), window(60_000, {"anger": 1}), window(0, {"joy": 3}, revision=1)]
    once, twice = DashboardState(), DashboardState()
    once.add_aggregates(records)
    twice.add_aggregates(records + records)
    assert once.snapshot(0)["sources"] == twice.snapshot(0)["sources"]


def test_hopping_windows_are_not_drawn_and_sources_are_bounded():
    state = DashboardState()
    state.add_aggregates([window(0, {"joy": 1}, kind="hopping")])
    assert state.snapshot(0)["sources"] == []
    state.add_aggregates([window(i * 60_000, {"joy": 1}) for i in range(WINDOWS_KEPT + 5)])
    [source] = state.snapshot(0)["sources"]
    assert len(source["windows"]) == WINDOWS_KEPT and source["windows"][0]["start"] == 5 * 60_000


def test_all_sources_come_first_then_the_busiest():
    state = DashboardState()
    state.add_aggregates([window(0, {"joy": 1}, source="quiet"), window(0, {"joy": 9}, source="busy")])
    state.add_aggregates([window(0, {"joy": 10}, source="*")])
    assert [s["source"] for s in state.snapshot(0)["sources"]] == ["*", "busy", "quiet"]


def test_the_feed_shows_the_latest_labelled_events_with_their_texts():
    state = DashboardState()
    state.add_texts([orjson.dumps({"id": "a", "text": "<script>alert(1)</script> so glad"}), b"not json"])
    state.add_labelled([labelled("a"), labelled("b", "anger", 0.7)], now_s=100.2)
    feed = state.snapshot(100.5)["feed"]
    assert [e["id"] for e in feed] == ["b", "a"]  # newest first
    assert feed[1]["text"] == "<script>alert(1)</script> so glad"  # kept as data; the page sets it as text
    assert feed[0]["text"] is None and feed[0]["top"][0] == ["anger", 0.7]
    state.add_labelled([labelled(f"x{i}") for i in range(FEED_SIZE + 3)], now_s=101)
    assert len(state.snapshot(101)["feed"]) == FEED_SIZE
    assert state.snapshot(101)["labelled"] == FEED_SIZE + 5


def test_the_rate_counts_complete_seconds_only():
    state = DashboardState()
    for second in range(100, 110):
        state.add_labelled([labelled(f"{second}-{i}") for i in range(5)], now_s=second + 0.5)
    state.add_labelled([labelled("now")], now_s=110.1)
    rate = state.snapshot(110.2)["rate"]
    assert rate["per_second"] == 5.0  # seconds 100-109; the current one (110) is still filling
    assert rate["series"][-1] == 1 and len(rate["series"]) == 60


def test_records_that_break_their_topics_promise_are_counted_and_skipped():
    state = DashboardState()
    hostile = [b"\xff\xfe", b"[1, 2]", b"null", orjson.dumps({"label": 3, "score": "high"})]
    state.add_labelled(hostile, now_s=1)
    state.add_aggregates([b"{", orjson.dumps({"window": "tumbling", "window_start": "soon", "counts": []})])
    state.add_dead_letters([b"[]", orjson.dumps({"error": None})])
    state.add_drift([orjson.dumps({"source": "x", "window_start": 0, "distance": "far"})])
    state.add_models([orjson.dumps({"version": 7}), b""])
    snapshot = state.snapshot(1)
    assert snapshot["ignored"] == 4 + 2 + 2 + 1 + 2
    assert snapshot["labelled"] == 0 and snapshot["sources"] == [] and snapshot["model"]["announced"] is None


def test_dead_letters_drift_and_model_announcements():
    state = DashboardState()
    letter = {"error": "invalid_json", "reason": "value is not JSON", "raw": "{broken", "topic": "t", "offset": 3}
    state.add_dead_letters([orjson.dumps(letter), orjson.dumps({**letter, "error": "text_too_long", "raw": None})])
    report = {"source": "chat", "window_start": 60_000, "window_end": 120_000, "distance": 0.4, "top_changes": []}
    state.add_drift([orjson.dumps(report), orjson.dumps(report)])  # read twice: one marker
    state.add_aggregates([window(60_000, {"joy": 1})])
    metrics = {"test_macro_f1": 0.88}
    state.add_models([orjson.dumps({"version": "v0002", "labels": ["joy", "fear"], "metrics": metrics})])
    snapshot = state.snapshot(0)
    assert snapshot["dead_letters"]["by_reason"] == {"invalid_json": 1, "text_too_long": 1}
    assert snapshot["dead_letters"]["recent"][0]["error"] == "text_too_long"  # newest first
    assert len(snapshot["drift"]) == 1 and snapshot["sources"][0]["drift"] == [60_000]
    assert snapshot["model"]["announced"]["version"] == "v0002"
    assert snapshot["labels"] == ["joy", "fear"]  # the model's order first


def test_the_version_moves_only_with_a_change_the_page_should_see():
    state = DashboardState()
    before = state.version
    state.add_labelled([], now_s=1)
    state.add_aggregates([window(0, {"joy": 1}, kind="hopping")])
    assert state.version == before
    state.set_connection(True)
    assert state.version == before + 1
    state.set_connection(True)
    assert state.version == before + 1
