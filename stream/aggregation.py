"""Event-time windowed aggregates of labelled events: per-emotion counts and mean scores, tumbling and hopping windows.

Pure logic on a JSON-ready state dict, one per aggregation key (a source, or ``*`` for all sources), so the Faust agent
only loads the key's state, calls :meth:`WindowAggregator.add` and saves it (the table's changelog makes it survive a
restart). Windows follow the events' own time: a key's watermark is the latest ``ts`` it has seen, and a window closes
(and is published once) when the watermark passes its end plus the grace period. An event older than every window it
could still join is *late*: it stays in ``emotion.labelled`` but is left out of the aggregates and counted.

Faust's own windowed tables are not used: they expire windows by wall-clock time, not event time, and their
``on_window_close`` does not receive the window's data (see the comment in ``faust/tables/base.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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


def empty_state() -> dict[str, Any]:
    """The state of a key that has seen nothing yet."""
    return {"watermark": None, "windows": {}, "late": 0}


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


class WindowAggregator:
    """Adds labelled events to a key's open windows and closes the ones the watermark has passed."""

    def __init__(self, specs: list[WindowSpec], grace_ms: int) -> None:
        if grace_ms < 0:
            raise ValueError("grace must not be negative")
        self.specs = specs
        self.grace_ms = grace_ms
        self._size = {spec.kind: spec.size_ms for spec in specs}

    def add(self, state: dict[str, Any], key: str, label: str, score: float, ts: int) -> list[ClosedWindow]:
        """Count one event into ``state`` (changed in place); return the windows this closes."""
        watermark = state["watermark"]
        joined = False
        for spec in self.specs:
            for start in spec.starts(ts):
                if watermark is not None and self._closes_by(spec.kind, start) <= watermark:
                    continue  # that window was already published
                window = state["windows"].setdefault(
                    f"{spec.kind}|{start}", {"counts": {}, "score_sums": {}, "total": 0}
                )
                window["counts"][label] = window["counts"].get(label, 0) + 1
                window["score_sums"][label] = window["score_sums"].get(label, 0.0) + score
                window["total"] += 1
                joined = True
        if not joined:
            state["late"] += 1
        if watermark is not None and ts <= watermark:
            return []  # windows close only when the watermark moves
        state["watermark"] = ts
        return self.close(state, key)

    @staticmethod
    def forget_future(state: dict[str, Any], limit_ms: int) -> bool:
        """Drop a watermark, and the windows, beyond ``limit_ms`` (the worker's clock plus the allowed lead): what an
        event from far in the future left in the state before such events were refused. Returns whether it did."""
        if state["watermark"] is None or state["watermark"] <= limit_ms:
            return False
        state["windows"] = {name: w for name, w in state["windows"].items() if int(name.split("|")[1]) <= limit_ms}
        state["watermark"] = max((int(name.split("|")[1]) for name in state["windows"]), default=None)
        return True

    def close(self, state: dict[str, Any], key: str) -> list[ClosedWindow]:
        """Remove and return the windows whose end plus grace the watermark has reached, oldest first."""
        watermark = state["watermark"]
        if watermark is None:
            return []
        closed = []
        for name in sorted(state["windows"], key=lambda n: int(n.split("|")[1])):
            kind, start = name.split("|")
            if self._closes_by(kind, int(start)) <= watermark:
                window = state["windows"].pop(name)
                end = int(start) + self._size[kind]
                closed.append(
                    ClosedWindow(kind, int(start), end, key, window["counts"], window["score_sums"], window["total"])
                )
        return closed

    def open_windows(self, state: dict[str, Any], key: str) -> list[dict[str, Any]]:
        """The windows still open for ``key``, as the records they would publish now."""
        out = []
        for name, window in sorted(state["windows"].items(), key=lambda item: int(item[0].split("|")[1])):
            kind, start = name.split("|")
            end = int(start) + self._size[kind]
            out.append(
                ClosedWindow(
                    kind, int(start), end, key, window["counts"], window["score_sums"], window["total"]
                ).to_record()
            )
        return out

    def _closes_by(self, kind: str, start: int) -> int:
        return start + self._size[kind] + self.grace_ms
