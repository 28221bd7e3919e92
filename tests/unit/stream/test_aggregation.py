"""Event-time windows: assignment, closing by watermark, late events, hopping overlap."""

from __future__ import annotations

import pytest

from stream.aggregation import WindowAggregator, WindowSpec, empty_state

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
    state = empty_state()
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
    assert list(state["windows"]) == ["tumbling|10000"]


def test_late_events_are_counted_not_reopened():
    aggregator = WindowAggregator([TUMBLING], grace_ms=0)
    state = empty_state()
    aggregator.add(state, "chat", "joy", 1.0, 5_000)
    assert len(aggregator.add(state, "chat", "joy", 1.0, 15_000)) == 1
    assert aggregator.add(state, "chat", "fear", 1.0, 4_000) == []  # its window was published already
    assert state["late"] == 1 and list(state["windows"]) == ["tumbling|10000"]


def test_out_of_order_within_grace_still_counts():
    aggregator = WindowAggregator([TUMBLING], grace_ms=5_000)
    state = empty_state()
    aggregator.add(state, "*", "joy", 1.0, 12_000)
    aggregator.add(state, "*", "joy", 1.0, 8_000)  # older, but window [0,10s) is open until 15s
    closed = aggregator.add(state, "*", "joy", 1.0, 16_000)
    assert [(c.start, c.total) for c in closed] == [(0, 1)]
    assert state["late"] == 0


def test_hopping_windows_each_count_the_event_and_totals_match():
    aggregator = WindowAggregator([TUMBLING, HOPPING], grace_ms=0)
    state = empty_state()
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
    state = empty_state()
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
    state = empty_state()
    aggregator.add(state, "*", "joy", 0.9, 1_000)
    aggregator.add(state, "*", "joy", 0.9, 9 * 10**18)  # closes the window of 1_000 at once, opens one far ahead
    aggregator.add(state, "*", "joy", 0.9, 21_000)
    assert state["late"] == 1
    assert aggregator.forget_future(state, limit_ms=100_000)
    assert state["watermark"] is None and state["windows"] == {}
    assert not aggregator.forget_future(state, limit_ms=100_000)
    aggregator.add(state, "*", "anger", 0.5, 25_000)  # counted again, not late
    assert state["late"] == 1 and state["windows"]["tumbling|20000"]["total"] == 1
