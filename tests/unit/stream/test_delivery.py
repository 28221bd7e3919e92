"""Delivering a batch's outputs: refusals get their fallback, broker failures are sent again, nothing is dropped.

A broker that times out on cue or refuses a given record cannot be had from the real one on demand, so these tests
drive ``deliver`` with a scripted ``Sender`` (the one method it uses); the real sender (``stream.kafka.producer``) is
covered by the worker, hostile-input and lost-topic integration tests.
"""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from stream import delivery
from stream.delivery import Outgoing, deliver, is_refusal


class ScriptedSender:
    """Records what it delivered, per topic; ``failures`` maps a value to the exceptions its next sends raise."""

    def __init__(self, failures: dict[bytes, list[Exception]] | None = None):
        self.failures = failures or {}
        self.delivered: dict[str, list[bytes]] = {}

    async def send_all(self, records):
        failed = []
        for record in records:
            queued = self.failures.get(record.value) or []
            if queued:
                failed.append((record, queued.pop(0)))
            else:
                self.delivered.setdefault(record.topic, []).append(record.value)
        return failed


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch):
    monkeypatch.setattr(delivery, "FIRST_RETRY_PAUSE", 0.0)


async def test_a_refused_record_is_replaced_by_its_fallback_and_the_rest_go_on():
    def dead_letter(origin: str, why: str) -> Outgoing:
        return Outgoing("dlq", f"dead {origin}: {why}".encode())

    sender = ScriptedSender({b"big": [MessageSizeTooLargeError("too big")]})
    records = [
        Outgoing("labelled", b"a"),
        Outgoing("labelled", b"big", fallback=dead_letter, origin="e1"),
        Outgoing("labelled", b"b"),
    ]
    report = await deliver(records, sender)
    assert sender.delivered["labelled"] == [b"a", b"b"]
    refusal = b"MessageSizeTooLargeError: [Error 10] MessageSizeTooLargeError: too big"
    assert sender.delivered["dlq"] == [b"dead e1: " + refusal]
    assert (report.replaced, report.undeliverable) == (1, 0)


async def test_a_broker_failure_is_sent_again_until_it_goes_through():
    sender = ScriptedSender({b"a": [KafkaTimeoutError(), KafkaTimeoutError()]})
    report = await deliver([Outgoing("labelled", b"a"), Outgoing("labelled", b"b")], sender)
    assert sorted(sender.delivered["labelled"]) == [b"a", b"b"]
    assert (report.replaced, report.undeliverable) == (0, 0)


async def test_a_refused_record_without_fallback_is_counted_not_dropped_silently():
    sender = ScriptedSender({b"x": [OverflowError("timestamp")]})
    report = await deliver([Outgoing("aggregation-input", b"x"), Outgoing("aggregation-input", b"y")], sender)
    assert sender.delivered["aggregation-input"] == [b"y"] and report.undeliverable == 1


def test_refusals_are_about_the_record_and_everything_else_about_the_broker():
    assert is_refusal(MessageSizeTooLargeError()) and is_refusal(OverflowError())
    assert not is_refusal(KafkaTimeoutError()) and not is_refusal(ConnectionError())
