"""Event-time windows: assignment, closing by watermark and by idleness, revisions, late events, hopping overlap."""

from __future__ import annotations

import random

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
        "final": True,
        "revision": 0,
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
            "final": False,
            "revision": -1,
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


def test_a_batch_reports_what_it_published_and_what_came_too_late():
    aggregator = WindowAggregator([TUMBLING], grace_ms=0)
    state = KeyState()
    first = aggregator.add_batch(state, "chat", [("joy", 1.0, 5_000), ("fear", 0.5, 15_000)], limit_ms=10**12)
    assert [(w.start, w.total) for w in first.published] == [(0, 1)] and not first.missed and not first.future_dropped
    second = aggregator.add_batch(
        state, "chat", [("joy", 1.0, 4_000, "e7", "chat"), ("joy", 1.0, 16_000, "e8", "chat")], limit_ms=10**12
    )
    assert second.published == [] and state.late == 1
    [missed] = second.missed
    assert missed.to_record(aggregator.sizes) == {
        "id": "e7",
        "source": "chat",
        "ts": 4_000,
        "label": "joy",
        "score": 1.0,
        "aggregate": "chat",
        "watermark": 15_000,
        "missed": [{"window": "tumbling", "window_start": 0, "window_end": 10_000}],
    }


def test_a_batch_drops_a_far_future_watermark_first():
    aggregator = WindowAggregator([TUMBLING], grace_ms=0)
    state = KeyState(watermark=9 * 10**18)
    update = aggregator.add_batch(state, "*", [("joy", 1.0, 5_000)], limit_ms=100_000)
    assert update.future_dropped and not update.missed and state.watermark == 5_000


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


def test_a_late_event_within_the_lateness_publishes_the_window_again_with_the_next_revision():
    aggregator = WindowAggregator([TUMBLING], grace_ms=1_000, lateness_ms=20_000)
    state = KeyState()
    aggregator.add(state, "chat", "joy", 1.0, 5_000)
    [first] = aggregator.add(state, "chat", "joy", 1.0, 12_000)  # 10 s + 1 s grace passed
    assert (first.start, first.revision, first.total) == (0, 0, 1)
    update = aggregator.add_batch(state, "chat", [("anger", 0.5, 6_000), ("fear", 0.5, 7_000)])
    [again] = update.published  # one revision for the batch, not one per event
    assert (again.start, again.revision, again.total, again.final) == (0, 1, 3, True)
    assert again.counts == {"joy": 1, "anger": 1, "fear": 1} and not update.missed
    [third] = aggregator.add(state, "chat", "sadness", 0.5, 9_000)
    assert third.revision == 2 and third.total == 4
    aggregator.add(state, "chat", "joy", 1.0, 31_000)  # 31 s: past 11 s + 20 s, the window is forgotten
    assert WindowId("tumbling", 0) not in state.published
    late = aggregator.add_batch(state, "chat", [("joy", 1.0, 8_000)])
    assert late.published == [] and len(late.missed) == 1 and state.late == 1


def test_a_late_event_for_a_window_that_closed_empty_publishes_it_first():
    aggregator = WindowAggregator([TUMBLING], grace_ms=0, lateness_ms=60_000)
    state = KeyState()
    aggregator.add(state, "chat", "joy", 1.0, 25_000)
    [window] = aggregator.add(state, "chat", "fear", 1.0, 12_000)  # [10 s, 20 s) had nothing when 25 s passed it
    assert (window.start, window.revision, window.total) == (10_000, 0, 1)


def test_an_event_in_a_window_closed_earlier_in_its_own_batch_is_in_its_first_publication():
    aggregator = WindowAggregator([TUMBLING], grace_ms=0, lateness_ms=60_000)
    state = KeyState()
    update = aggregator.add_batch(state, "chat", [("joy", 1.0, 1_000), ("joy", 1.0, 15_000), ("fear", 1.0, 2_000)])
    assert [(w.start, w.revision, w.total) for w in update.published] == [(0, 0, 2)]


def test_an_idle_live_source_closes_its_windows_grace_plus_idle_after_their_end():
    aggregator = WindowAggregator([TUMBLING], grace_ms=2_000, idle_ms=3_000)
    state = KeyState()
    aggregator.add_batch(state, "web", [("joy", 1.0, 1_000_000 + 4_000)], arrived_ms=1_000_000 + 4_100)
    before = state.to_json()
    assert aggregator.tick(state, "web", 1_000_000 + 14_900) is None  # 10 s + 2 s + 3 s not yet reached
    assert state.to_json() == before  # nothing due: the state is untouched (no table write)
    [closed] = aggregator.tick(state, "web", 1_000_000 + 15_200)
    assert (closed.start, closed.total) == (1_000_000, 1) and state.windows == {}
    assert aggregator.tick(state, "web", 1_000_000 + 60_000) is None  # nothing left to close


def test_a_source_whose_times_lag_the_clock_keeps_its_own_pace_when_idle():
    aggregator = WindowAggregator([TUMBLING], grace_ms=0, idle_ms=5_000)
    state = KeyState()
    # Event time 1 h behind the wall clock: idleness moves it on from there, not to the wall clock.
    aggregator.add_batch(state, "replay", [("joy", 1.0, 4_000)], arrived_ms=3_600_000)
    assert aggregator.tick(state, "replay", 3_600_000 + 10_000) is None  # event time 4 s + 10 s - 5 s < 10 s + 0
    [closed] = aggregator.tick(state, "replay", 3_600_000 + 11_000)
    assert closed.start == 0 and state.watermark == 10_000
    update = aggregator.add_batch(state, "replay", [("fear", 1.0, 12_000)], arrived_ms=3_612_000)
    assert not update.missed  # the source's next event is not late


def test_without_an_idle_time_ticks_close_nothing():
    aggregator = WindowAggregator([TUMBLING], grace_ms=0)
    state = KeyState()
    aggregator.add_batch(state, "web", [("joy", 1.0, 1_000)], arrived_ms=1_000)
    assert aggregator.tick(state, "web", 10**12) is None


def test_rolling_records_are_provisional_and_only_follow_new_events():
    aggregator = WindowAggregator([TUMBLING], grace_ms=0, emit_every_ms=1_000)
    state = KeyState()
    aggregator.add_batch(state, "web", [("joy", 1.0, 1_000)], arrived_ms=100)
    [rolling] = aggregator.tick(state, "web", now_ms=200)
    assert (rolling.revision, rolling.final, rolling.total) == (-1, False, 1)
    assert rolling.to_record()["final"] is False
    assert aggregator.tick(state, "web", now_ms=5_000) is None and state.due_at is None  # nothing new since
    aggregator.add_batch(state, "web", [("joy", 1.0, 2_000)], arrived_ms=700)
    assert aggregator.tick(state, "web", now_ms=900) is None  # not a second since the last
    assert [w.total for w in aggregator.tick(state, "web", now_ms=1_300)] == [2]


def test_the_full_state_survives_its_json_form():
    aggregator = WindowAggregator([TUMBLING, HOPPING], grace_ms=0, lateness_ms=50_000, idle_ms=1_000, emit_every_ms=1)
    state = KeyState(partition=3, history=[{"joy": 4}])
    aggregator.add_batch(state, "web", [("joy", 0.5, 1_000), ("fear", 0.5, 25_000)], arrived_ms=7)
    aggregator.add_batch(state, "web", [("anger", 0.5, 2_000)], arrived_ms=9)  # a revision
    assert aggregator.tick(state, "web", now_ms=11)  # a rolling publication
    assert state.published and state.windows and state.emitted_at == 11 and state.due_at is not None
    assert KeyState.from_json(orjson.loads(orjson.dumps(state.to_json()))) == state


class CountedOneByOne(WindowAggregator):
    """The reference: every event of a batch through ``_count``, none tallied."""

    def _count_all(self, state, key, entries, revised, missed):
        for entry in entries:
            self._count(state, key, entry, revised, missed)


def rounded(value):
    """``value`` with its floats rounded: tallied score sums are added in another order."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    return value


@pytest.mark.parametrize("seed", range(20))
def test_tallying_a_batch_counts_what_counting_each_event_does(seed):
    """Batches of in-order, out-of-order, revising and too-late events: the same publications, late events and
    state as counting every event into every window it joins."""
    rng = random.Random(seed)
    settings = {"grace_ms": 2_000, "lateness_ms": 15_000, "idle_ms": 5_000, "emit_every_ms": 3_000}
    tallied, reference = (
        WindowAggregator([TUMBLING, HOPPING], **settings),
        CountedOneByOne([TUMBLING, HOPPING], **settings),
    )
    states = KeyState(), KeyState()
    clock = 1_000_000
    for batch in range(12):
        clock += rng.randrange(0, 25_000)
        entries = [
            (
                rng.choice(["joy", "fear", "anger"]),
                rng.random(),
                clock - rng.choice([0, 0, 0, 1_500, 9_000, 40_000]),
                f"e{batch}-{i}",
                "chat",
            )
            for i in range(rng.randrange(1, 60))
        ]
        updates = [
            aggregator.add_batch(state, "chat", entries, arrived_ms=clock, limit_ms=clock + 10**6)
            for aggregator, state in zip((tallied, reference), states, strict=True)
        ]
        got, expected = ([rounded(w.to_record()) for w in u.published] for u in updates)
        assert got == expected
        got, expected = ([rounded(m.to_record(tallied.sizes)) for m in u.missed] for u in updates)
        assert got == expected
        assert rounded(states[0].to_json()) == rounded(states[1].to_json())
        ticks = [
            aggregator.tick(state, "chat", clock + 4_000)
            for aggregator, state in zip((tallied, reference), states, strict=True)
        ]
        got, expected = (None if t is None else [rounded(w.to_record()) for w in t] for t in ticks)
        assert got == expected
