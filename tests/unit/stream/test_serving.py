"""What a worker accepts from the announcements topic (anyone who can write to it can send anything)."""

from __future__ import annotations

import asyncio

import pytest

from stream.serving import SwapGate, announcement_problem


@pytest.mark.parametrize(
    "record",
    [
        [1, 2],
        None,
        "v0002",
        {},
        {"version": None},
        {"version": 2},
        {"version": "totally-legit", "path": "/tmp/evil"},
        {"version": "../../x"},
        {"version": "/abs/path"},
        {"version": "v0002\n"},
    ],
)
def test_anything_but_an_object_with_a_version_name_is_refused(record):
    assert announcement_problem(record)


def test_an_announcement_with_a_version_name_is_accepted_whatever_else_it_says():
    assert announcement_problem({"version": "v0002", "path": "/ignored", "labels": ["joy"]}) is None


async def test_a_swap_waits_for_the_predictions_on_the_old_model_and_holds_new_ones_back():
    gate = SwapGate()
    served = ["v0001"]
    seen: list[tuple[str, str]] = []  # (version at the start, version at the end) of each prediction
    release_first = asyncio.Event()

    async def predict(wait: asyncio.Event | None = None) -> None:
        async with gate.prediction():
            start = served[0]
            if wait is not None:
                await wait.wait()
            await asyncio.sleep(0)
            seen.append((start, served[0]))

    async def swap() -> None:
        async with gate.swap():
            served[0] = "v0002"

    first = asyncio.create_task(predict(release_first))
    await asyncio.sleep(0)  # the first prediction is in flight on v0001
    swapping = asyncio.create_task(swap())
    await asyncio.sleep(0)
    later = asyncio.create_task(predict())  # arrives during the swap: must wait for it
    for _ in range(5):
        await asyncio.sleep(0)
    assert served == ["v0001"] and not swapping.done() and not later.done() and gate.in_flight == 1
    release_first.set()
    await asyncio.gather(first, swapping, later)
    assert seen == [("v0001", "v0001"), ("v0002", "v0002")]  # one boundary; no prediction straddles it
    assert gate.in_flight == 0


async def test_a_failed_prediction_or_swap_leaves_the_gate_open():
    gate = SwapGate()
    with pytest.raises(RuntimeError):
        async with gate.prediction():
            raise RuntimeError("the model failed")
    assert gate.in_flight == 0
    with pytest.raises(RuntimeError):
        async with gate.swap():
            raise RuntimeError("the swap failed")
    async with gate.prediction():  # not held back by the failed swap
        assert gate.in_flight == 1
