"""A guard against a worker that holds input partitions with unread records but has stopped processing them.

Faust's recovery could drop records between resuming a partition and clearing the stream queues (see
``stream.kafka.consumer``, which closes the hole we found). Because offsets are committed only up to the first record
still in flight (``stream.kafka.consumer`` makes sure of that), such a loss leaves a mark: the committed offset of the
partition stops below its end while the worker sits idle. The guard looks for exactly that, and answers by seeking
the input partitions back to their committed offsets: everything after the last commit is read again (duplicates,
never loss). A partition that is assigned but no longer fetched at all (left paused or held back by a rebalance) is
put back in the fetch set as well, since a seek alone would not move it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import faust
import structlog
from faust.exceptions import ConsumerNotStarted
from faust.types import TP

log = structlog.get_logger(__name__)


@dataclass
class StallGuard:
    """Decides when an input topic is stalled: nothing taken from it for ``timeout`` seconds while one of its
    partitions' committed offset is below its end. A topic is watched from the first :meth:`progress` call for it
    (the classify actors make it once the model is loaded: records waiting for a model that is still loading are not
    stalled), and the agents call it for each micro-batch or record they take. Per topic: the aggregation input always
    has records coming (the window ticks), and its activity must not hide a stall of the text input."""

    timeout: float
    last_progress: dict[str, float] = field(default_factory=dict)  # topic -> when a record of it was last taken
    last_rewind: float = float("-inf")

    def progress(self, topic: str, now: float | None = None) -> None:
        """An agent took input from ``topic`` (or is ready to): it is not idle."""
        self.last_progress[topic] = time.monotonic() if now is None else now

    def stalled(
        self,
        topic: str,
        committed: Mapping[object, int | None],
        ends: Mapping[object, int],
        now: float | None = None,
    ) -> list:
        """The partitions of ``topic`` (``ends``, ``committed``) with records behind their committed offset, if it is
        watched and nothing was taken from it (and nothing rewound) for ``timeout`` seconds; an empty list otherwise.
        A partition never committed counts from 0."""
        now = time.monotonic() if now is None else now
        last = self.last_progress.get(topic)
        if last is None or now - max(last, self.last_rewind) < self.timeout:
            return []
        return sorted(tp for tp, end in ends.items() if end > (committed.get(tp) or 0))

    def rewound(self, now: float | None = None) -> None:
        """A rewind was made: give it ``timeout`` seconds to show progress before the next one."""
        self.last_rewind = time.monotonic() if now is None else now


def fetched_end(consumer: Any, tp: TP) -> int:
    """``tp``'s end as the last fetch response gave it (its high watermark), 0 when there is none. The embedded broker
    lists a partition's end short after a batch of several records (docs/notes.md: the first offset of the last batch
    plus one), which hid a partition stalled in its last batch; a fetch's high watermark is right there, never later
    than the true end, and no request of its own."""
    try:
        return consumer.highwater(tp) or 0
    except Exception:  # not fetched yet, or no longer assigned
        return 0


def watch_input(app: faust.App, guard: StallGuard, topics: set[str]) -> None:
    """Check the input partitions of ``topics`` every third of the guard's timeout; rewind the stalled ones to their
    committed offsets (a partition never committed goes to 0, which the consumer's ``earliest`` reset turns into the
    first offset it still has)."""

    @app.timer(max(guard.timeout / 3, 0.5))
    async def rewind_stalled_input() -> None:
        consumer = app.consumer
        if app.rebalancing:
            return
        try:
            inputs = [tp for tp in consumer.assignment() if tp.topic in topics]
        except ConsumerNotStarted:
            return
        if not inputs:
            return
        committed = consumer.committed_offsets(inputs)
        try:
            listed = await consumer.highwaters(*inputs)
        except Exception as exc:  # a broker hiccup must not take the worker down with its safety net
            log.warning("stall check skipped: end offsets unavailable", error=repr(exc))
            return
        ends = {tp: max(end, fetched_end(consumer, tp)) for tp, end in listed.items()}
        stalled = [
            tp for topic in sorted(topics) for tp in guard.stalled(topic, _of(topic, committed), _of(topic, ends))
        ]
        if not stalled:
            return
        guard.rewound()
        positions = []
        for tp in stalled:
            try:
                positions.append(await consumer.position(tp))
            except Exception as exc:  # only for the log line
                positions.append(repr(exc))
        log.warning(
            "input stalled below its end: reading again from the committed offsets",
            partitions=[f"{tp.topic}:{tp.partition}" for tp in stalled],
            committed=[committed[tp] for tp in stalled],
            ends=[ends[tp] for tp in stalled],
            positions=positions,  # where the fetcher is: what went wrong shows in how these compare
            **consumer.flow_state(stalled),
        )
        for tp in stalled:
            await consumer.seek(tp, committed[tp] or 0)
        resumed = consumer.fetch_again(stalled)
        if resumed:
            log.warning(
                "stalled input partitions were not being fetched: fetching them again",
                partitions=[f"{tp.topic}:{tp.partition}" for tp in resumed],
            )


def _of(topic: str, offsets: Mapping[TP, Any]) -> dict[TP, Any]:
    return {tp: offset for tp, offset in offsets.items() if tp.topic == topic}
