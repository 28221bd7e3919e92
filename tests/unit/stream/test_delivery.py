"""Delivering a batch's outputs: refusals get their fallback, broker failures are sent again, nothing is dropped.

A broker that times out on cue or refuses a given record cannot be had from the real one on demand, so these tests
drive ``deliver`` with a scripted channel that has the one method it uses (``send``, as Faust's topics have it); the
real path is covered by the hostile-input and lost-topic integration tests.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from stream import delivery
from stream.delivery import Outgoing, deliver, is_refusal


class ScriptedTopic:
    """Records what it delivered; ``failures`` maps a value to the exceptions its next sends raise, in order."""

    def __init__(self, name: str, failures: dict[bytes, list[Exception]] | None = None, *, at_send: bool = False):
        self.name = name
        self.failures = failures or {}
        self.at_send = at_send  # raise from send() itself (refused before it left) instead of from the future
        self.delivered: list[bytes] = []

    def get_topic_name(self) -> str:
        return self.name

    async def send(self, *, key, value, timestamp):
        future = asyncio.get_running_loop().create_future()
        queued = self.failures.get(value) or []
        if queued:
            exc = queued.pop(0)
            if self.at_send:
                raise exc
            future.set_exception(exc)
        else:
            self.delivered.append(value)
            future.set_result(None)
        return future


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch):
    monkeypatch.setattr(delivery, "FIRST_RETRY_PAUSE", 0.0)


async def test_a_refused_record_is_replaced_by_its_fallback_and_the_rest_go_on():
    dlq = ScriptedTopic("dlq")
    out = ScriptedTopic("labelled", {b"big": [MessageSizeTooLargeError("too big")]}, at_send=True)
    records = [
        Outgoing(out, b"a"),
        Outgoing(out, b"big", fallback=lambda why: Outgoing(dlq, f"dead: {why}".encode())),
        Outgoing(out, b"b"),
    ]
    report = await deliver(records)
    assert out.delivered == [b"a", b"b"]
    assert dlq.delivered == [b"dead: MessageSizeTooLargeError: [Error 10] MessageSizeTooLargeError: too big"]
    assert (report.replaced, report.undeliverable) == (1, 0)


async def test_a_broker_failure_is_sent_again_until_it_goes_through():
    out = ScriptedTopic("labelled", {b"a": [KafkaTimeoutError(), KafkaTimeoutError()]})
    report = await deliver([Outgoing(out, b"a"), Outgoing(out, b"b")])
    assert sorted(out.delivered) == [b"a", b"b"]
    assert (report.replaced, report.undeliverable) == (0, 0)


async def test_a_refused_record_without_fallback_is_counted_not_dropped_silently():
    out = ScriptedTopic("aggregation-input", {b"x": [OverflowError("timestamp")]})
    report = await deliver([Outgoing(out, b"x"), Outgoing(out, b"y")])
    assert out.delivered == [b"y"] and report.undeliverable == 1


def test_refusals_are_about_the_record_and_everything_else_about_the_broker():
    assert is_refusal(MessageSizeTooLargeError()) and is_refusal(OverflowError())
    assert not is_refusal(KafkaTimeoutError()) and not is_refusal(ConnectionError())
