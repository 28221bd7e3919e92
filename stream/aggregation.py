"""Event-time windowed aggregates of labelled events: per-emotion counts and mean scores, tumbling and hopping windows.

Pure logic on a typed :class:`KeyState`, one per aggregation key (a source, or ``*`` for all sources), so the Faust
agent only loads the key's state, calls :class:`WindowAggregator` and saves it as JSON (the table's changelog makes it
survive a restart).

When a window is published:

- **by event time**: a key's watermark is the latest ``ts`` it has seen; a window closes when the watermark passes its
  end plus the grace period;
- **by idleness**: while a key receives nothing, its event time is taken to move on with the wall clock (from its
  latest ``ts``, at the time that event arrived); once that projected time has passed a window's end plus grace by
  ``idle_ms``, the window closes. The clock is the one on the records (the aggregation input's and the ticks' Kafka
  timestamps), so a replay of the same records decides the same. For a live source (``ts`` near the wall clock) a
  window closes ``grace + idle`` after its end; a source whose times lag the clock keeps its own pace.

A published window is kept for ``lateness_ms`` of event time after it closed: a late event that falls in it updates
it, and the window is published again with the next ``revision``. An event later than that misses the window: it is
reported (:class:`LateEvent`, ``emotion.late``) and counted, and left out of the aggregates. Open windows can also be
published as they stand (``final: false``, :meth:`WindowAggregator.rolling`).

Faust's own windowed tables are not used: they expire windows by wall-clock time, not event time, and their
``on_window_close`` does not receive the window's data (see the comment in ``faust/tables/base.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

PROVISIONAL = -1  # the revision of a record of an open window (``final: false``): any final record supersedes it


@dataclass(frozen=True)
class WindowSpec:
    """A window kind: tumbling when ``step_ms == size_ms``, hopping (overlapping) when smaller."""

    kind: str
    size_ms: int
    step_ms: int

    def __post_init__(self) -> None:
        if self.size_ms <= 0 or self.step_ms <= 0 or self.step_ms > self.size_ms:
            raise ValueError(f"{self.kind}: need 0 < step <= size, got size={self.size_ms} step={self.step_ms}")

    def starts(self, ts: int) -> list[int]:
        """Start times (ms) of the windows that contain ``ts``, oldest first."""
        last = ts - ts % self.step_ms
        first = last - ((self.size_ms - 1) // self.step_ms) * self.step_ms
        return list(range(first, last + 1, self.step_ms))


class WindowId(NamedTuple):
    """Which window: its kind (a :class:`WindowSpec` name) and its start, epoch ms. A named tuple: it is hashed for
    every window an event joins, and a tuple hashes in C."""

    kind: str
    start: int


@dataclass(slots=True)
class WindowCounts:
    """What a window has counted: events per emotion, their score sums, and the total; once published, the revision
    it was last published with."""

    counts: dict[str, int] = field(default_factory=dict)
    score_sums: dict[str, float] = field(default_factory=dict)
    total: int = 0
    revision: int = PROVISIONAL

    def add(self, label: str, score: float) -> None:
        """Count one event."""
        self.counts[label] = self.counts.get(label, 0) + 1
        self.score_sums[label] = self.score_sums.get(label, 0.0) + score
        self.total += 1

    def add_tally(self, tally: dict[str, list]) -> None:
        """Count the events of ``tally`` (label -> ``[events, score sum]``) at once."""
        for label, (events, score_sum) in tally.items():
            self.counts[label] = self.counts.get(label, 0) + events
            self.score_sums[label] = self.score_sums.get(label, 0.0) + score_sum
            self.total += events

    def to_json(self, window: WindowId) -> dict[str, Any]:
        # Copies: the value goes into the table while this object may live on and change (stream.key_states).
        value = {"kind": window.kind, "start": window.start, "counts": dict(self.counts)}
        return {**value, "score_sums": dict(self.score_sums), "total": self.total, "revision": self.revision}

    @staticmethod
    def from_json(value: dict[str, Any]) -> tuple[WindowId, WindowCounts]:
        counts = WindowCounts(dict(value["counts"]), dict(value["score_sums"]), value["total"])
        counts.revision = value.get("revision", PROVISIONAL)
        return WindowId(value["kind"], int(value["start"])), counts


@dataclass
class KeyState:
    """One aggregation key's state: its watermark, its open windows, the published windows that still take late
    events, how many events missed a window, and what idleness and drift need (see the module docstring)."""

    watermark: int | None = None  # the latest event time seen, or later while the key is idle
    windows: dict[WindowId, WindowCounts] = field(default_factory=dict)
    late: int = 0  # events that missed a window (too late even for a revision)
    published: dict[WindowId, WindowCounts] = field(default_factory=dict)
    latest_ts: int | None = None  # the latest event time seen
    arrived_at: int | None = None  # wall clock (ms) of the latest record with events for this key
    emitted_at: int | None = None  # wall clock (ms) of the latest rolling (``final: false``) publication
    history: list[dict[str, int]] = field(default_factory=list)  # counts of recent tumbling windows (drift baseline)
    partition: int | None = None  # the aggregation input partition (and table partition) the key lives in
    due_at: int | None = None  # wall clock (ms) from which a tick has something to do (None: nothing to wait for)

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready form kept in the table (and its changelog)."""
        return {
            "watermark": self.watermark,
            "late": self.late,
            "windows": [counts.to_json(w) for w, counts in sorted(self.windows.items())],
            "published": [counts.to_json(w) for w, counts in sorted(self.published.items())],
            "latest_ts": self.latest_ts,
            "arrived_at": self.arrived_at,
            "emitted_at": self.emitted_at,
            "history": list(self.history),  # a copy (see WindowCounts.to_json); its entries are never changed
            "partition": self.partition,
            "due_at": self.due_at,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any] | None) -> KeyState:
        """The state :meth:`to_json` wrote; None (a key not seen yet) is an empty state. Also reads the earlier
        formats a changelog may still hold (windows keyed ``"kind|start"``; no published windows)."""
        if value is None:
            return cls()
        windows = value["windows"]
        if isinstance(windows, dict):  # the first format
            windows = [{"kind": k.split("|")[0], "start": int(k.split("|")[1]), **w} for k, w in windows.items()]
        return cls(
            value["watermark"],
            dict(WindowCounts.from_json(w) for w in windows),
            value["late"],
            dict(WindowCounts.from_json(w) for w in value.get("published", ())),
            value.get("latest_ts", value["watermark"]),
            value.get("arrived_at"),
            value.get("emitted_at"),
            [dict(counts) for counts in value.get("history", ())],
            value.get("partition"),
            value.get("due_at"),
        )


@dataclass(frozen=True)
class WindowRecord:
    """A window as published on ``emotion.aggregates``: final (closed; ``revision`` 0, then 1, 2... for corrections
    by late events) or provisional (still open, ``revision`` -1)."""

    kind: str
    start: int
    end: int
    key: str
    counts: dict[str, int]
    score_sums: dict[str, float]
    total: int
    revision: int = 0

    @property
    def final(self) -> bool:
        return self.revision != PROVISIONAL

    def to_record(self) -> dict[str, Any]:
        """The ``emotion.aggregates`` record: counts and mean score per emotion, and which publication it is."""
        mean = {label: round(self.score_sums[label] / n, 6) for label, n in self.counts.items() if n}
        return {
            "window": self.kind,
            "window_start": self.start,
            "window_end": self.end,
            "source": self.key,
            "counts": self.counts,
            "total": self.total,
            "mean_score": mean,
            "final": self.final,
            "revision": self.revision,
        }


@dataclass(frozen=True)
class LateEvent:
    """An event too late for some of its windows (published, and past the allowed lateness): the ``emotion.late``
    record. ``id`` and ``source`` are None for entries written before they were carried."""

    key: str
    id: str | None
    source: str | None
    label: str
    score: float
    ts: int
    missed: list[WindowId]
    watermark: int

    def to_record(self, sizes: dict[str, int]) -> dict[str, Any]:
        """The record, with each missed window's bounds (``sizes``: window kind -> size, ms)."""
        return {
            "id": self.id,
            "source": self.source,
            "ts": self.ts,
            "label": self.label,
            "score": self.score,
            "aggregate": self.key,
            "watermark": self.watermark,
            "missed": [
                {"window": w.kind, "window_start": w.start, "window_end": w.start + sizes[w.kind]} for w in self.missed
            ],
        }


@dataclass(frozen=True)
class Update:
    """What a batch of a key's events (or a tick) did: the windows to publish (first publications, then revisions,
    oldest first), the events that missed a window, and whether a far-future watermark left by an older version was
    dropped first."""

    published: list[WindowRecord]
    missed: list[LateEvent] = field(default_factory=list)
    future_dropped: bool = False


class WindowAggregator:
    """Adds labelled events to a key's windows, and publishes them by event time, idleness and late revisions."""

    def __init__(
        self,
        specs: list[WindowSpec],
        grace_ms: int,
        *,
        lateness_ms: int = 0,
        idle_ms: int | None = None,
        emit_every_ms: int = 0,
    ) -> None:
        if grace_ms < 0 or lateness_ms < 0 or emit_every_ms < 0 or (idle_ms is not None and idle_ms < 0):
            raise ValueError("grace, lateness, idle time and rolling period must not be negative")
        self.specs = specs
        self.grace_ms = grace_ms
        self.lateness_ms = lateness_ms
        self.idle_ms = idle_ms  # None: windows close by event time only
        self.emit_every_ms = emit_every_ms  # 0: no rolling publications
        self.sizes = {spec.kind: spec.size_ms for spec in specs}
        # Per kind, what counting an event needs (``_count`` runs for every event and key): the step, how far before
        # the last window holding ``ts`` the first one starts, and how long after its start a window closes.
        self._plans = [
            (spec.kind, spec.step_ms, ((spec.size_ms - 1) // spec.step_ms) * spec.step_ms, spec.size_ms + grace_ms)
            for spec in specs
        ]
        # Events in one span of ``_grain`` ms (the steps' greatest common divisor) join the same windows.
        self._grain = math.gcd(*(spec.step_ms for spec in specs))

    def add_batch(
        self,
        state: KeyState,
        key: str,
        entries: Iterable[Sequence[Any]],
        *,
        arrived_ms: int | None = None,
        limit_ms: int | None = None,
    ) -> Update:
        """Count ``entries`` (``label, score, ts[, id, source]``) into ``state`` (changed in place), after dropping a
        watermark beyond ``limit_ms`` (see :meth:`forget_future`); ``arrived_ms`` is when they arrived (wall clock)."""
        future_dropped = limit_ms is not None and self.forget_future(state, limit_ms)
        watermark_before = state.watermark
        revised: set[WindowId] = set()
        missed: list[LateEvent] = []
        self._count_all(state, key, entries, revised, missed)
        state.late += len(missed)
        if arrived_ms is not None and (state.arrived_at is None or arrived_ms > state.arrived_at):
            state.arrived_at = arrived_ms
        # Revisions first: a window revised and then expired by this batch's watermark still gets its revision out.
        published = self._revisions(state, key, revised)
        # Closing once per batch publishes what closing after each event would: an event that finds its window closed
        # by the running watermark but not yet moved counts into it, as it would have into the published window.
        if state.watermark != watermark_before:
            published += self._close(state, key)
        self._schedule(state)
        return Update(published, missed, future_dropped)

    def add(self, state: KeyState, key: str, label: str, score: float, ts: int) -> list[WindowRecord]:
        """Count one event into ``state`` (changed in place); return the windows this publishes."""
        return self.add_batch(state, key, [(label, score, ts)]).published

    def tick(self, state: KeyState, key: str, now_ms: int) -> list[WindowRecord] | None:
        """What the wall clock (``now_ms``) makes due: the windows an idle key's projected event time closes, then the
        rolling publication of its open windows; None when nothing is due (the state is left as it was and need not
        be saved). ``state.due_at`` says from when something will be, so a caller can skip a key without loading it."""
        if state.due_at is None or now_ms < state.due_at:
            return None
        published = []
        if self.idle_ms is not None and state.arrived_at is not None and state.latest_ts is not None:
            projected = state.latest_ts + (now_ms - state.arrived_at) - self.idle_ms
            lateness = self.lateness_ms
            due = any(self._closes_by(w) <= projected for w in state.windows) or any(
                self._closes_by(w) + lateness <= projected for w in state.published
            )
            # The watermark only matters once it closes something: until then it is left alone.
            if due and (state.watermark is None or projected > state.watermark):
                state.watermark = projected
                published = self._close(state, key)
        published += self._rolling(state, key, now_ms)
        self._schedule(state)
        return published

    def _rolling(self, state: KeyState, key: str, now_ms: int) -> list[WindowRecord]:
        """The open windows as they stand (``final: false``), at most once per ``emit_every_ms`` and only when events
        arrived since the last time."""
        if not self.emit_every_ms or not state.windows or state.arrived_at is None:
            return []
        if state.emitted_at is not None and (
            now_ms - state.emitted_at < self.emit_every_ms or state.arrived_at <= state.emitted_at
        ):
            return []
        state.emitted_at = now_ms
        ordered = sorted(state.windows.items(), key=lambda item: item[0].start)
        return [self._record(window, counts, key, PROVISIONAL) for window, counts in ordered]

    def _schedule(self, state: KeyState) -> None:
        """Set ``state.due_at``: the earliest wall-clock time at which :meth:`tick` has something to do."""
        due = None
        if self.idle_ms is not None and state.arrived_at is not None and state.latest_ts is not None:
            closes = [self._closes_by(w) for w in state.windows]
            closes += [self._closes_by(w) + self.lateness_ms for w in state.published]
            if closes:  # the projected time latest_ts + (now - arrived_at) - idle reaches the first of them
                due = state.arrived_at + self.idle_ms + min(closes) - state.latest_ts
        if self.emit_every_ms and state.windows and state.arrived_at is not None:
            if state.emitted_at is None:
                due = state.arrived_at if due is None else min(due, state.arrived_at)
            elif state.arrived_at > state.emitted_at:
                emit = state.emitted_at + self.emit_every_ms
                due = emit if due is None else min(due, emit)
        state.due_at = due

    def _count_all(
        self,
        state: KeyState,
        key: str,
        entries: Iterable[Sequence[Any]],
        revised: set[WindowId],
        missed: list[LateEvent],
    ) -> None:
        """Count ``entries`` in order, as :meth:`_count` does one by one. Once every window an event's span of event
        time joins is open, the span's later events are tallied per label and added to those windows once at the end:
        a window is not closed while a batch is counted, so what goes into an open one does not depend on the order
        (per event that was a tuple, a lookup and an add for each of its windows, 6 with the default windows)."""
        grain = self._grain
        spans: dict[int, tuple[list[WindowCounts], dict[str, list]]] = {}  # span -> its open windows, label tallies
        for entry in entries:
            ts = entry[2]
            span = ts // grain
            known = spans.get(span)
            if known is None:
                joined = self._count(state, key, entry, revised, missed)
                if joined is not None:
                    spans[span] = (joined, {})
                continue
            label = entry[0]
            counted = known[1].get(label)
            if counted is None:
                known[1][label] = [1, entry[1]]
            else:
                counted[0] += 1
                counted[1] += entry[1]
            if ts > state.latest_ts:  # set by the span's first event
                state.latest_ts = ts
            if ts > state.watermark:
                state.watermark = ts
        for joined, tally in spans.values():
            if tally:  # empty when the span had one event (as a key's span often has, with many sources)
                for counts in joined:
                    counts.add_tally(tally)

    def _count(
        self, state: KeyState, key: str, entry: Sequence[Any], revised: set[WindowId], missed: list[LateEvent]
    ) -> list[WindowCounts] | None:
        """Count one event into the windows it joins: open ones, or published ones within the lateness (noted in
        ``revised``); note it in ``missed`` if it came too late for any. Move the watermark. Returns the counts of
        the windows it joined if all of them are open, else None."""
        label, score, ts = entry[0], entry[1], entry[2]
        watermark = state.watermark
        windows = state.windows
        too_late = None
        joined: list[WindowCounts] | None = []
        for kind, step, back, closes_after in self._plans:
            last = ts - ts % step  # as WindowSpec.starts
            for start in range(last - back, last + 1, step):
                window = (kind, start)  # equal to, and hashed as, WindowId(kind, start)
                counts = windows.get(window)
                if counts is None:  # not setdefault: that would build a WindowCounts for every event
                    closes = start + closes_after
                    if watermark is None or closes > watermark:
                        counts = windows[WindowId(kind, start)] = WindowCounts()
                    elif closes + self.lateness_ms > watermark:
                        joined = None
                        counts = state.published.get(window)
                        if counts is None:  # closed without events: a late one publishes it for the first time
                            counts = state.published[WindowId(kind, start)] = WindowCounts()
                        revised.add(WindowId(kind, start))
                    else:
                        joined = None
                        too_late = [] if too_late is None else too_late
                        too_late.append(WindowId(kind, start))
                        continue
                counts.add(label, score)
                if joined is not None:
                    joined.append(counts)
        if too_late:
            identity = (entry[3], entry[4]) if len(entry) >= 5 else (None, None)
            missed.append(LateEvent(key, *identity, label, score, ts, too_late, watermark))
        if state.latest_ts is None or ts > state.latest_ts:
            state.latest_ts = ts
        if watermark is None or ts > watermark:
            state.watermark = ts
        return joined

    def _revisions(self, state: KeyState, key: str, revised: set[WindowId]) -> list[WindowRecord]:
        records = []
        for window in sorted(revised, key=lambda w: (w.start, w.kind)):
            counts = state.published[window]
            counts.revision += 1  # PROVISIONAL + 1 = 0: a window first published by a late event
            records.append(self._record(window, counts, key, counts.revision))
        return records

    @staticmethod
    def forget_future(state: KeyState, limit_ms: int) -> bool:
        """Drop a watermark, and the windows, beyond ``limit_ms`` (the worker's clock plus the allowed lead): what an
        event from far in the future left in the state before such events were refused. Returns whether it did."""
        if state.watermark is None or state.watermark <= limit_ms:
            return False
        state.windows = {w: c for w, c in state.windows.items() if w.start <= limit_ms}
        state.published = {w: c for w, c in state.published.items() if w.start <= limit_ms}
        state.watermark = max((w.start for w in state.windows), default=None)
        state.latest_ts = state.watermark
        return True

    def _close(self, state: KeyState, key: str) -> list[WindowRecord]:
        """Publish the windows whose end plus grace the watermark has reached (oldest first) and forget the published
        ones past the allowed lateness."""
        watermark = state.watermark
        if watermark is None:
            return []
        closed = []
        for window in sorted(state.windows, key=lambda w: w.start):
            if self._closes_by(window) <= watermark:
                counts = state.windows.pop(window)
                counts.revision = 0
                closed.append(self._record(window, counts, key, 0))
                if self._closes_by(window) + self.lateness_ms > watermark:
                    state.published[window] = counts
        expired = [w for w in state.published if self._closes_by(w) + self.lateness_ms <= watermark]
        for window in expired:
            del state.published[window]
        return closed

    def open_windows(self, state: KeyState, key: str) -> list[dict[str, Any]]:
        """The windows still open for ``key``, as the records they would publish now (``final: false``)."""
        ordered = sorted(state.windows.items(), key=lambda item: item[0].start)
        return [self._record(window, counts, key, PROVISIONAL).to_record() for window, counts in ordered]

    def _record(self, window: WindowId, counts: WindowCounts, key: str, revision: int) -> WindowRecord:
        end = window.start + self.sizes[window.kind]
        return WindowRecord(
            window.kind, window.start, end, key, counts.counts, counts.score_sums, counts.total, revision
        )

    def _closes_by(self, window: WindowId) -> int:
        return window.start + self.sizes[window.kind] + self.grace_ms
