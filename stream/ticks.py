"""Window ticks: the records that let idle sources' windows close on time.

Faust tables change only while an event is current, so a window cannot be closed by a timer. Instead each worker
sends, every ``EMOSTREAM_WINDOW_TICK`` seconds, one tick record to each partition of the aggregation input it holds;
the aggregate agent reads it in order with that partition's events and closes, for the keys that live there, what the
wall clock has made due (``stream.aggregation.WindowAggregator.tick``). Several workers never close a window twice:
a tick is handled by whichever worker owns its partition when it is read, on that partition's state.
"""

from __future__ import annotations

import time

import faust
import orjson
import structlog
from faust.exceptions import ConsumerNotStarted

log = structlog.get_logger(__name__)


def tick_value(now_ms: int) -> bytes:
    """A tick record's value (entries are JSON arrays, so a JSON object tells a tick apart)."""
    return orjson.dumps({"tick": now_ms})


def is_tick(value: bytes | None) -> bool:
    """Whether an aggregation input record is a tick."""
    return bool(value) and value[:1] == b"{"


def send_ticks(app: faust.App, topic: faust.TopicT, interval: float) -> None:
    """Register the timer that sends a tick to each partition of ``topic`` this worker holds, every ``interval``
    seconds."""
    name = topic.get_topic_name()

    @app.timer(interval)
    async def tick_windows() -> None:
        if app.rebalancing:
            return
        try:
            held = sorted(tp.partition for tp in app.consumer.assignment() if tp.topic == name)
        except ConsumerNotStarted:
            return
        value = tick_value(int(time.time() * 1000))
        for partition in held:
            try:
                await topic.send(value=value, partition=partition)
            except Exception as exc:  # the next tick will do; a broker outage is reported by the classify path
                log.warning("window tick not sent", partition=partition, error=repr(exc))
                return
