"""``send_values`` reports records the broker never acknowledged: aiokafka's ``flush`` waits for every batch but does
not raise, so each delivery future is checked (``_undelivered``, on plain asyncio futures as aiokafka returns them)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaTimeoutError

from stream.tools import NotDelivered, _undelivered


def futures(loop: asyncio.AbstractEventLoop, outcomes: list[object]) -> list[tuple[int, asyncio.Future]]:
    """One future per outcome: None stays pending, an exception fails it, "ok" delivers it, "cancel" cancels it."""
    made = []
    for i, outcome in enumerate(outcomes):
        future = loop.create_future()
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        elif outcome == "ok":
            future.set_result(None)
        elif outcome == "cancel":
            future.cancel()
        made.append((i, future))
    return made


def test_delivered_records_are_forgotten_and_pending_ones_kept():
    loop = asyncio.new_event_loop()
    try:
        pending = _undelivered("t", futures(loop, ["ok", None, "ok", None]), sent=4)
        assert [i for i, _ in pending] == [1, 3]
    finally:
        loop.close()


def test_a_failed_delivery_names_the_records_and_the_cause():
    loop = asyncio.new_event_loop()
    try:
        outcomes = ["ok", KafkaTimeoutError("batch expired"), None, "cancel"]
        with pytest.raises(NotDelivered) as raised:
            _undelivered("texts", futures(loop, outcomes), sent=4)
    finally:
        loop.close()
    assert raised.value.failed == [1, 3] and raised.value.sent == 4
    message = str(raised.value)
    assert message.startswith("2 of 4 records sent to texts were not delivered (record 2, 4, counting from 1)")
    assert "KafkaTimeoutError" in message
