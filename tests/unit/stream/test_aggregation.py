"""Event-time windows: assignment, closing by watermark, late events, hopping overlap."""

from __future__ import annotations

import orjson
import pytest

from stream.aggregation import KeyState, WindowAggregator, WindowCounts, WindowId, WindowSpec

TUMBLING = WindowSpec("tumbling", 10_000, 10_000)
HOPPING = WindowSpec("hopping", 30_000, 10_000)


def test_window_starts():
    assert TUMBLING.starts(25_000) == [20_000]
    assert TUMBLING.starts(20_000) == [20_000]
    assert HOPPING.starts(25_000) == [0, 10_000, 20_000]
    with pytest.raises(ValueError):
        WindowSpec("bad", 10, 20)


def test_windows_close_once_when_the_watermark_passes_end_plus_grace():
    aggregator = WindowAggregator([TUMBLING], grace_ms=2_000)
    state = KeyState()
    assert aggregator.add(state, "*", "joy", 0.9, 1_000) == []
    assert aggregator.add(state, "*", "anger", 0.5, 9_000) == []
    assert aggregator.add(state, "*", "joy", 0.7, 11_000) == []  # 10s window still within grace
    closed = aggregator.add(state, "*", "joy", 0.8, 12_000)
    assert len(closed) == 1
    record = closed[0].to_record()
    assert record == {
        "window": "tumbling",
        "window_start": 0,
        "window_end": 10_000,
        "source": "*",
        "counts": {"joy": 1, "anger": 1},
        "total": 2,
        "mean_score": {"joy": 0.9, "anger": 0.5},
    }
    assert list(state.windows) == [WindowId("tumbling", 10_000)]


def test_late_events_are_counted_not_reopened():
    aggregator = WindowAggregator([TUMBLING], grace_ms=0)
    state = KeyState()
    aggregator.add(state, "chat", "joy", 1.0, 5_000)
    assert len(aggregator.add(state, "chat", "joy", 1.0, 15_000)) == 1
    assert aggregator.add(state, "chat", "fear", 1.0, 4_000) == []  # its window was published already
    assert state.late == 1 and list(state.windows) == [WindowId("tumbling", 10_000)]


def test_out_of_order_within_grace_still_counts():
    aggregator = WindowAggregator([TUMBLING], grace_ms=5_000)
    state = KeyState()
    aggregator.add(state, "*", "joy", 1.0, 12_000)
    aggregator.add(state, "*", "joy", 1.0, 8_000)  # older, but window [0,10s) is open until 15s
    closed = aggregator.add(state, "*", "joy", 1.0, 16_000)
    assert [(c.start, c.total) for c in closed] == [(0, 1)]
    assert state.late == 0


def test_hopping_windows_each_count_the_event_and_totals_match():
    aggregator = WindowAggregator([TUMBLING, HOPPING], grace_ms=0)
    state = KeyState()
    timestamps = [1_000, 4_000, 12_000, 25_000, 33_000, 47_000]
    published = []
    for ts in timestamps:
        published += aggregator.add(state, "*", "joy", 0.5, ts)
    published += aggregator.add(state, "*", "joy", 0.5, 1_000_000)
    for window in published:
        expected = sum(window.start <= ts < window.end for ts in timestamps)
        assert window.total == expected, window
    assert {w.kind for w in published} == {"tumbling", "hopping"}


def test_open_windows_view():
    aggregator = WindowAggregator([TUMBLING], grace_ms=0)
    state = KeyState()
    aggregator.add(state, "web", "joy", 0.25, 3_000)
    assert aggregator.open_windows(state, "web") == [
        {
            "window": "tumbling",
            "window_start": 0,
            "window_end": 10_000,
            "source": "web",
            "counts": {"joy": 1},
            "total": 1,
            "mean_score": {"joy": 0.25},
        }
    ]


def test_a_far_future_watermark_left_in_the_state_is_forgotten():
    # Before event times were bounded, one ts of 9e18 set the watermark there for good: every later event was late.
    aggregator = WindowAggregator([TUMBLING], grace_ms=2_000)
    state = KeyState()
    aggregator.add(state, "*", "joy", 0.9, 1_000)
    aggregator.add(state, "*", "joy", 0.9, 9 * 10**18)  # closes the window of 1_000 at once, opens one far ahead
    aggregator.add(state, "*", "joy", 0.9, 21_000)
    assert state.late == 1
    assert aggregator.forget_future(state, limit_ms=100_000)
    assert state.watermark is None and state.windows == {}
    assert not aggregator.forget_future(state, limit_ms=100_000)
    aggregator.add(state, "*", "anger", 0.5, 25_000)  # counted again, not late
    assert state.late == 1 and state.windows[WindowId("tumbling", 20_000)].total == 1


def test_a_batch_reports_what_it_closed_and_how_many_came_late():
    aggregator = WindowAggregator([TUMBLING], grace_ms=0)
    state = KeyState()
    first = aggregator.add_batch(state, "chat", [("joy", 1.0, 5_000), ("fear", 0.5, 15_000)], limit_ms=10**12)
    assert [(w.start, w.total) for w in first.closed] == [(0, 1)] and first.late == 0 and not first.future_dropped
    second = aggregator.add_batch(state, "chat", [("joy", 1.0, 4_000), ("joy", 1.0, 16_000)], limit_ms=10**12)
    assert second.closed == [] and second.late == 1 and state.late == 1


def test_a_batch_drops_a_far_future_watermark_first():
    aggregator = WindowAggregator([TUMBLING], grace_ms=0)
    state = KeyState(watermark=9 * 10**18)
    update = aggregator.add_batch(state, "*", [("joy", 1.0, 5_000)], limit_ms=100_000)
    assert update.future_dropped and update.late == 0 and state.watermark == 5_000


def test_the_state_survives_its_json_form_and_reads_the_first_format():
    aggregator = WindowAggregator([TUMBLING, HOPPING], grace_ms=0)
    state = KeyState()
    for ts in (1_000, 12_000, 13_000):
        aggregator.add(state, "web", "joy", 0.5, ts)
    aggregator.add(state, "web", "anger", 0.25, 14_000)
    again = KeyState.from_json(orjson.loads(orjson.dumps(state.to_json())))
    assert again == state
    assert KeyState.from_json(None) == KeyState()
    first_format = {
        "watermark": 14_000,
        "late": 2,
        "windows": {"tumbling|10000": {"counts": {"joy": 2}, "score_sums": {"joy": 1.0}, "total": 2}},
    }
    old = KeyState.from_json(first_format)
    assert old.watermark == 14_000 and old.late == 2
    assert old.windows == {WindowId("tumbling", 10_000): WindowCounts({"joy": 2}, {"joy": 1.0}, 2)}
