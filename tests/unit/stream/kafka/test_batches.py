"""The classify path's input queue and its offset bookkeeping: at least once with micro-batches finishing in any
order, bounded per partition, and nothing committed for records dropped when the flow stops."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from stream.kafka.batches import BatchInput, OffsetTracker


@dataclass
class Rec:
    offset: int


def recs(*offsets: int) -> list[Rec]:
    return [Rec(offset) for offset in offsets]


def test_the_commit_stops_at_the_first_span_not_done():
    tracker: OffsetTracker[str] = OffsetTracker()
    first, second, third = tracker.open("p", 0, 9), tracker.open("p", 10, 19), tracker.open("p", 20, 29)
    second.done = third.done = True
    assert tracker.committable("p") is None  # 0..9 still in flight: nothing past it
    first.done = True
    assert tracker.committable("p") == 30
    assert tracker.committable("p") is None  # nothing new since


def test_partitions_are_tracked_apart_and_forgotten_when_revoked():
    tracker: OffsetTracker[str] = OffsetTracker()
    tracker.open("a", 0, 4).done = True
    tracker.open("b", 7, 8)
    assert (tracker.committable("a"), tracker.committable("b")) == (5, None)
    tracker.forget(["b"])
    assert tracker.partitions() == ["a"] and tracker.committable("b") is None


async def test_take_waits_for_a_full_batch_up_to_its_wait_and_cuts_at_the_maximum():
    inputs: BatchInput[str] = BatchInput(100)
    inputs.put("p", recs(0, 1, 2))
    inputs.put("q", recs(5, 6))
    batch = await inputs.take(4, within=0.05)  # only 5 queued: takes 4 at once
    assert [r.offset for r in batch.records] == [0, 1, 2, 5]
    assert [(s.first, s.last) for s in batch.spans] == [(0, 2), (5, 5)]
    batch = await inputs.take(4, within=0.01)  # 1 left: returned after the wait
    assert [r.offset for r in batch.records] == [6] and inputs.queued == 0 and inputs.in_flight == 2


async def test_a_taker_gets_records_put_while_it_waits():
    inputs: BatchInput[str] = BatchInput(100)
    taking = asyncio.create_task(inputs.take(2, within=5))
    await asyncio.sleep(0.01)
    inputs.put("p", recs(0))
    inputs.put("p", recs(1))
    batch = await asyncio.wait_for(taking, 5)  # full before its wait: does not wait 5 s
    assert [r.offset for r in batch.records] == [0, 1]


async def test_batches_done_out_of_order_commit_up_to_the_earliest_still_running():
    inputs: BatchInput[str] = BatchInput(100)
    inputs.put("p", recs(0, 1, 2, 3))
    early, late = await inputs.take(2, 0), await inputs.take(2, 0)
    inputs.done(late)
    assert inputs.offsets.committable("p") is None
    inputs.done(early)
    assert inputs.offsets.committable("p") == 4
    await asyncio.wait_for(inputs.wait_idle(), 1)


async def test_a_full_partition_is_reported_and_released_once_taken_below_the_bound():
    full, drained = [], []
    inputs: BatchInput[str] = BatchInput(3, on_full=full.append, on_drained=drained.append)
    inputs.put("p", recs(0, 1))
    assert full == []
    inputs.put("p", recs(2, 3))
    assert full == ["p"]
    inputs.put("p", recs(4))  # reported once
    assert full == ["p"] and drained == []
    await inputs.take(3, 0)
    assert drained == ["p"]


async def test_clearing_drops_what_no_actor_took_and_commits_none_of_it():
    cleared = []
    inputs: BatchInput[str] = BatchInput(2, on_cleared=cleared.append)
    inputs.put("p", recs(0, 1, 2, 3))
    taken = await inputs.take(2, 0)
    assert inputs.clear() == 2 and inputs.queued == 0 and cleared == [{"p"}]
    inputs.done(taken)
    assert inputs.offsets.committable("p") == 2  # the records dropped (2, 3) are read again after the seek


async def test_wait_idle_waits_for_the_batches_in_flight():
    inputs: BatchInput[str] = BatchInput(10)
    inputs.put("p", recs(0))
    batch = await inputs.take(5, 0)
    waiting = asyncio.create_task(inputs.wait_idle())
    await asyncio.sleep(0.02)
    assert not waiting.done()
    inputs.done(batch)
    await asyncio.wait_for(waiting, 1)


def test_the_bound_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        BatchInput(0)
