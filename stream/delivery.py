"""Delivering one micro-batch's outputs: every record reaches its topic, or its fallback (a dead letter) does.

Faust's ``take_events`` acknowledges a batch even when the agent's body raises, so nothing may raise out of a batch:

- a record the client or broker refuses for what it is (too large, a timestamp it cannot encode) is replaced by its
  fallback, a dead letter of the input event that says why; a record without a fallback is logged as an error and
  counted (``/stats`` ``undeliverable``), never dropped in silence;
- any other failure (broker unreachable, timed out, leader moved) is the broker's, not the record's: the records it
  hit are sent again after a pause that grows to ``MAX_RETRY_PAUSE`` (one log line per attempt), so the batch's
  offsets are acknowledged only once all of it is out.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from dataclasses import dataclass

import faust
import structlog
from aiokafka.errors import InvalidTimestampError, MessageSizeTooLargeError, RecordTooLargeError

log = structlog.get_logger(__name__)

FIRST_RETRY_PAUSE = 0.5
MAX_RETRY_PAUSE = 30.0

# Failures that say the record itself cannot be sent: sending it again would fail again.
REFUSALS = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    InvalidTimestampError,
    OverflowError,
    struct.error,
    TypeError,
    ValueError,
)


@dataclass(frozen=True)
class Outgoing:
    """One output record and, for a record that is refused, what to send instead (given the refusal's text)."""

    topic: faust.TopicT
    value: bytes
    key: bytes | None = None
    timestamp: float | None = None
    fallback: Callable[[str], Outgoing] | None = None


def is_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` is about the record (send a fallback) rather than the broker (send it again)."""
    return isinstance(exc, REFUSALS)


@dataclass(frozen=True)
class DeliveryReport:
    """How many records were refused and replaced by their fallback, and how many had none (logged as errors)."""

    replaced: int = 0
    undeliverable: int = 0


async def deliver(records: list[Outgoing]) -> DeliveryReport:
    """Send ``records`` until each one, or its fallback, is delivered."""
    replaced = undeliverable = 0
    pending, pause = records, FIRST_RETRY_PAUSE
    while pending:
        failures = await _send_all(pending)
        pending = []
        broker_failures = []
        for record, exc in failures:
            if not is_refusal(exc):
                broker_failures.append((record, exc))
            elif record.fallback is not None:
                replaced += 1
                log.warning(
                    "output record refused: sending its fallback",
                    topic=record.topic.get_topic_name(),
                    size=len(record.value),
                    error=repr(exc)[:300],
                )
                pending.append(record.fallback(f"{type(exc).__name__}: {exc}"))
            else:
                undeliverable += 1
                log.error(
                    "output record refused and not replaceable",
                    topic=record.topic.get_topic_name(),
                    size=len(record.value),
                    error=repr(exc),
                )
        if broker_failures:
            log.warning(
                "output records not delivered: sending them again",
                records=len(broker_failures),
                error=repr(broker_failures[0][1]),
                retry_in=pause,
            )
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_RETRY_PAUSE)
            pending += [record for record, _ in broker_failures]
    return DeliveryReport(replaced, undeliverable)


async def _send_all(records: list[Outgoing]) -> list[tuple[Outgoing, BaseException]]:
    """Hand every record to the producer, then wait for all of them; the ones that failed, with why."""
    failures: list[tuple[Outgoing, BaseException]] = []
    sent: list[tuple[Outgoing, asyncio.Future]] = []
    for record in records:
        try:
            future = await record.topic.send(key=record.key, value=record.value, timestamp=record.timestamp)
        except Exception as exc:  # refused before it left (size, timestamp encoding) or the producer is down
            failures.append((record, exc))
        else:
            sent.append((record, future))
    results = await asyncio.gather(*(future for _, future in sent), return_exceptions=True)
    for (record, _), result in zip(sent, results, strict=True):
        if isinstance(result, BaseException):
            if isinstance(result, asyncio.CancelledError):
                raise result
            failures.append((record, result))
    return failures
