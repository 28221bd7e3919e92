"""Delivering one micro-batch's outputs: every record reaches its topic, or its fallback (a dead letter) does.

A micro-batch is reported done (its offsets committable) once this returns, so nothing may be left behind:

- a record the client or broker refuses for what it is (too large, a timestamp it cannot encode) is replaced by its
  fallback, a dead letter of the input event that says why; a record without a fallback is logged as an error and
  counted (``/stats`` ``undeliverable``), never dropped in silence;
- any other failure (broker unreachable, timed out, leader moved) is the broker's, not the record's: the records it
  hit are sent again after a pause that grows to ``MAX_RETRY_PAUSE`` (one log line per attempt), so the batch's
  offsets are committed only once all of it is out.

How records travel is the :class:`Sender`'s business (``stream.kafka.producer.BatchSender``: a batch per partition,
each record on its own only when its batch fails).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

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


@dataclass(slots=True)  # not frozen: built per output record, and frozen costs ~0.7 us more each
class Outgoing:
    """One output record and, for a record that is refused, what to send instead: ``fallback(origin, refusal)``, with
    ``origin`` what the record was made from (its input record, say) and ``refusal`` the refusal's text. One fallback
    serves a whole batch: no function is made per record."""

    topic: str
    value: bytes
    key: bytes | None = None
    timestamp_ms: int | None = None  # the producer's clock when None
    partition: int | None = None  # None: the key's partition (Kafka's default partitioner), any for an unkeyed record
    fallback: Callable[[Any, str], Outgoing] | None = None
    origin: Any = None


class Sender(Protocol):
    """Hands records to Kafka; the records that failed, each with its own exception (a refusal of the record, or the
    broker's failure)."""

    async def send_all(self, records: list[Outgoing]) -> list[tuple[Outgoing, BaseException]]: ...

    async def partitions(self, topic: str) -> list[int]: ...  # the topic's partitions, sorted

    def delivered_offset(self, topic: str, partition: int) -> int | None: ...  # the last offset delivered there


def is_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` is about the record (send a fallback) rather than the broker (send it again)."""
    return isinstance(exc, REFUSALS)


@dataclass(frozen=True)
class DeliveryReport:
    """How many records were refused and replaced by their fallback, and how many had none (logged as errors)."""

    replaced: int = 0
    undeliverable: int = 0


async def deliver(records: list[Outgoing], sender: Sender) -> DeliveryReport:
    """Send ``records`` until each one, or its fallback, is delivered."""
    replaced = undeliverable = 0
    pending, pause = records, FIRST_RETRY_PAUSE
    while pending:
        failures = await sender.send_all(pending)
        pending = []
        broker_failures = []
        for record, exc in failures:
            if not is_refusal(exc):
                broker_failures.append((record, exc))
            elif record.fallback is not None:
                replaced += 1
                log.warning(
                    "output record refused: sending its fallback",
                    topic=record.topic,
                    size=len(record.value),
                    error=repr(exc)[:300],
                )
                pending.append(record.fallback(record.origin, f"{type(exc).__name__}: {exc}"))
            else:
                undeliverable += 1
                log.error(
                    "output record refused and not replaceable",
                    topic=record.topic,
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
