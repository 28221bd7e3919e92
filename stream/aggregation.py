"""Event-time windowed aggregates of labelled events: per-emotion counts and mean scores, tumbling and hopping windows.

Pure logic on a typed :class:`KeyState`, one per aggregation key (a source, or ``*`` for all sources), so the Faust
agent only loads the key's state, calls :meth:`WindowAggregator.add_batch` and saves it as JSON (the table's changelog
makes it survive a restart). Windows follow the events' own time: a key's watermark is the latest ``ts`` it has seen,
and a window closes (and is published once) when the watermark passes its end plus the grace period. An event older
than every window it could still join is *late*: it stays in ``emotion.labelled`` but is left out of the
aggregates and counted.

Faust's own windowed tables are not used: they expire windows by wall-clock time, not event time, and their
``on_window_close`` does not receive the window's data (see the comment in ``faust/tables/base.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple


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
    """What an open window has counted: events per emotion, their score sums, and the total."""

    counts: dict[str, int] = field(default_factory=dict)
    score_sums: dict[str, float] = field(default_factory=dict)
    total: int = 0

    def add(self, label: str, score: float) -> None:
        """Count one event."""
        self.counts[label] = self.counts.get(label, 0) + 1
        self.score_sums[label] = self.score_sums.get(label, 0.0) + score
        self.total += 1


@dataclass
class KeyState:
    """One aggregation key's state: its watermark (the latest event time seen), its open windows, and how many events
    came too late for any window."""

    watermark: int | None = None
    windows: dict[WindowId, WindowCounts] = field(default_factory=dict)
    late: int = 0

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready form kept in the table (and its changelog)."""
        return {
            "watermark": self.watermark,
            "late": self.late,
            "windows": [
                {"kind": w.kind, "start": w.start, "counts": c.counts, "score_sums": c.score_sums, "total": c.total}
                for w, c in sorted(self.windows.items())
            ],
        }

    @classmethod
    def from_json(cls, value: dict[str, Any] | None) -> KeyState:
        """The state :meth:`to_json` wrote; None (a key not seen yet) is an empty state. Also reads the first format,
        which a changelog may still hold (windows keyed ``"kind|start"``)."""
        if value is None:
            return cls()
        windows = value["windows"]
        if isinstance(windows, dict):  # the first format
            windows = [{"kind": k.split("|")[0], "start": int(k.split("|")[1]), **w} for k, w in windows.items()]
        return cls(
            value["watermark"],
            {
                WindowId(w["kind"], int(w["start"])): WindowCounts(dict(w["counts"]), dict(w["score_sums"]), w["total"])
                for w in windows
            },
            value["late"],
        )


@dataclass(frozen=True)
class ClosedWindow:
    """A finished window, ready to publish."""

    kind: str
    start: int
    end: int
    key: str
    counts: dict[str, int]
    score_sums: dict[str, float]
    total: int

    def to_record(self) -> dict[str, Any]:
        """The ``emotion.aggregates`` record: counts and mean score per emotion."""
        mean = {label: round(self.score_sums[label] / n, 6) for label, n in self.counts.items() if n}
        return {
            "window": self.kind,
            "window_start": self.start,
            "window_end": self.end,
            "source": self.key,
            "counts": self.counts,
            "total": self.total,
            "mean_score": mean,
        }


@dataclass(frozen=True)
class BatchUpdate:
    """What one batch of a key's events did: the windows it closed (oldest first), how many of its events came too
    late, and whether a far-future watermark left by an older version was dropped first."""

    closed: list[ClosedWindow]
    late: int
    future_dropped: bool


class WindowAggregator:
    """Adds labelled events to a key's open windows and closes the ones the watermark has passed."""

    def __init__(self, specs: list[WindowSpec], grace_ms: int) -> None:
        if grace_ms < 0:
            raise ValueError("grace must not be negative")
        self.specs = specs
        self.grace_ms = grace_ms
        self._size = {spec.kind: spec.size_ms for spec in specs}
        # Per kind, what counting an event needs (``_count`` runs for every event and key): the step, how far before
        # the last window holding ``ts`` the first one starts, and how long after its start a window closes.
        self._plans = [
            (spec.kind, spec.step_ms, ((spec.size_ms - 1) // spec.step_ms) * spec.step_ms, spec.size_ms + grace_ms)
            for spec in specs
        ]

    def add_batch(
        self, state: KeyState, key: str, entries: Iterable[tuple[str, float, int]], *, limit_ms: int
    ) -> BatchUpdate:
        """Count ``entries`` (``label, score, ts``) into ``state`` (changed in place), after dropping a watermark
        beyond ``limit_ms`` (see :meth:`forget_future`)."""
        future_dropped = self.forget_future(state, limit_ms)
        late_before, watermark_before = state.late, state.watermark
        for label, score, ts in entries:
            self._count(state, label, score, ts)
        # Closing once per batch publishes what closing after each event would: an event joins a window only while
        # the running watermark is below the window's close, so a window closed mid-batch gains nothing afterwards.
        closed = self.close(state, key) if state.watermark != watermark_before else []
        return BatchUpdate(closed, state.late - late_before, future_dropped)

    def add(self, state: KeyState, key: str, label: str, score: float, ts: int) -> list[ClosedWindow]:
        """Count one event into ``state`` (changed in place); return the windows this closes."""
        watermark = state.watermark
        self._count(state, label, score, ts)
        return [] if state.watermark == watermark else self.close(state, key)

    def _count(self, state: KeyState, label: str, score: float, ts: int) -> None:
        """Count one event into the windows it joins that are still open, and move the watermark."""
        watermark = state.watermark
        windows = state.windows
        joined = False
        for kind, step, back, closes_after in self._plans:
            last = ts - ts % step  # as WindowSpec.starts
            for start in range(last - back, last + 1, step):
                if watermark is not None and start + closes_after <= watermark:
                    continue  # that window was already published
                counts = windows.get((kind, start))  # equal to, and hashed as, WindowId(kind, start)
                if counts is None:  # not setdefault: that would build a WindowCounts for every event
                    counts = windows[WindowId(kind, start)] = WindowCounts()
                counts.add(label, score)
                joined = True
        if not joined:
            state.late += 1
        if watermark is None or ts > watermark:
            state.watermark = ts

    @staticmethod
    def forget_future(state: KeyState, limit_ms: int) -> bool:
        """Drop a watermark, and the windows, beyond ``limit_ms`` (the worker's clock plus the allowed lead): what an
        event from far in the future left in the state before such events were refused. Returns whether it did."""
        if state.watermark is None or state.watermark <= limit_ms:
            return False
        state.windows = {w: c for w, c in state.windows.items() if w.start <= limit_ms}
        state.watermark = max((w.start for w in state.windows), default=None)
        return True

    def close(self, state: KeyState, key: str) -> list[ClosedWindow]:
        """Remove and return the windows whose end plus grace the watermark has reached, oldest first."""
        watermark = state.watermark
        if watermark is None:
            return []
        closed = []
        for window in sorted(state.windows, key=lambda w: w.start):
            if self._closes_by(window.kind, window.start) <= watermark:
                closed.append(self._finished(window, state.windows.pop(window), key))
        return closed

    def open_windows(self, state: KeyState, key: str) -> list[dict[str, Any]]:
        """The windows still open for ``key``, as the records they would publish now."""
        ordered = sorted(state.windows.items(), key=lambda item: item[0].start)
        return [self._finished(window, counts, key).to_record() for window, counts in ordered]

    def _finished(self, window: WindowId, counts: WindowCounts, key: str) -> ClosedWindow:
        end = window.start + self._size[window.kind]
        return ClosedWindow(window.kind, window.start, end, key, counts.counts, counts.score_sums, counts.total)

    def _closes_by(self, kind: str, start: int) -> int:
        return start + self._size[kind] + self.grace_ms
