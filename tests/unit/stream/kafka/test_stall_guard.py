"""The stall guard: a topic idle for its timeout with a partition committed below its end -> that partition, once."""

from __future__ import annotations

from faust.types import TP

from stream.kafka.stall_guard import StallGuard, fetched_end


def test_a_busy_worker_is_never_stalled():
    guard = StallGuard(timeout=30)
    guard.progress("texts", now=100)
    assert guard.stalled("texts", {"p0": 5}, {"p0": 900}, now=120) == []


def test_an_idle_worker_with_records_past_its_committed_offset_is_stalled():
    guard = StallGuard(timeout=30)
    guard.progress("texts", now=0)  # the topic is watched from then
    ends = {"p0": 150, "p1": 149, "p2": 80}
    committed = {"p0": 8, "p1": 149, "p2": None}
    assert guard.stalled("texts", committed, ends, now=31) == ["p0", "p2"]  # p2 never committed: counted from 0


def test_an_idle_worker_that_is_caught_up_is_not_stalled():
    guard = StallGuard(timeout=30)
    guard.progress("texts", now=0)  # the topic is watched from then
    assert guard.stalled("texts", {"p0": 150, "p1": None}, {"p0": 150, "p1": 0}, now=500) == []


def test_after_a_rewind_the_guard_waits_a_full_timeout_before_the_next():
    guard = StallGuard(timeout=30)
    guard.progress("texts", now=0)  # the topic is watched from then
    assert guard.stalled("texts", {"p0": 8}, {"p0": 150}, now=40) == ["p0"]
    guard.rewound(now=40)
    assert guard.stalled("texts", {"p0": 8}, {"p0": 150}, now=60) == []
    assert guard.stalled("texts", {"p0": 8}, {"p0": 150}, now=71) == ["p0"]


def test_activity_on_one_topic_does_not_hide_a_stall_of_another():
    guard = StallGuard(timeout=30)
    guard.progress("ticks", now=100)
    guard.progress("texts", now=0)
    assert guard.stalled("ticks", {"t0": 5}, {"t0": 6}, now=120) == []
    assert guard.stalled("texts", {"p0": 5}, {"p0": 900}, now=120) == ["p0"]


def test_a_topic_is_not_watched_before_its_first_progress():
    guard = StallGuard(timeout=30)  # the classify actors wait for the model: records queue meanwhile
    assert guard.stalled("texts", {"p0": None}, {"p0": 9}, now=1_000) == []
    guard.progress("texts", now=1_000)
    assert guard.stalled("texts", {"p0": None}, {"p0": 9}, now=1_031) == ["p0"]


def test_a_fetched_end_is_the_last_fetch_responses_high_watermark_and_0_without_one():
    marks = {TP("t", 0): 13, TP("t", 1): None}  # per partition, the high watermark of its last fetch

    class Consumer:  # what Faust's consumer answers
        def highwater(self, tp):
            if tp not in marks:
                raise AssertionError("partition is not assigned")  # aiokafka's answer for a partition it lost
            return marks[tp]

    assert [fetched_end(Consumer(), TP("t", p)) for p in range(3)] == [13, 0, 0]
