"""The stall guard: idle for its timeout with a partition committed below its end -> that partition, once."""

from __future__ import annotations

from stream.kafka.stall_guard import StallGuard


def test_a_busy_worker_is_never_stalled():
    guard = StallGuard(timeout=30, last_progress=0)
    guard.progress(now=100)
    assert guard.stalled({"p0": 5}, {"p0": 900}, now=120) == []


def test_an_idle_worker_with_records_past_its_committed_offset_is_stalled():
    guard = StallGuard(timeout=30, last_progress=0)
    ends = {"p0": 150, "p1": 149, "p2": 80}
    committed = {"p0": 8, "p1": 149, "p2": None}
    assert guard.stalled(committed, ends, now=31) == ["p0", "p2"]  # p2 never committed: counted from 0


def test_an_idle_worker_that_is_caught_up_is_not_stalled():
    guard = StallGuard(timeout=30, last_progress=0)
    assert guard.stalled({"p0": 150, "p1": None}, {"p0": 150, "p1": 0}, now=500) == []


def test_after_a_rewind_the_guard_waits_a_full_timeout_before_the_next():
    guard = StallGuard(timeout=30, last_progress=0)
    assert guard.stalled({"p0": 8}, {"p0": 150}, now=40) == ["p0"]
    guard.rewound(now=40)
    assert guard.stalled({"p0": 8}, {"p0": 150}, now=60) == []
    assert guard.stalled({"p0": 8}, {"p0": 150}, now=71) == ["p0"]
