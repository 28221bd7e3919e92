"""What the dashboard shows, built from the public topics' records: pure (no Kafka, no clock of its own), bounded.

Every record comes from a topic anyone may write to, so a record that is not what its topic promises is counted in
``ignored`` and skipped, never raised. Windows keep the latest publication of each (source, start): a final record
(``revision`` 0, 1, ...) replaces a provisional one (-1) and an older revision, never the reverse; re-reading a topic
from the start (the dashboard reconnecting) therefore changes nothing.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from collections.abc import Iterable
from typing import Any

import orjson

FEED_SIZE = 40  # labelled events in the live feed
TEXT_CHARS = 280  # of an event's text in the feed
TEXTS_KEPT = 20_000  # recent input texts kept to show beside their labels
WINDOWS_KEPT = 48  # per source
SOURCES_SHOWN = 12  # the busiest, "*" (all sources) first
DRIFT_KEPT = 50
DEAD_LETTERS_SHOWN = 10
RATE_SECONDS = 60  # of per-second counts kept; the rate shown is over the last RATE_WINDOW
RATE_WINDOW = 10
ALL_SOURCES = "*"


def _object(value: bytes | None) -> dict[str, Any] | None:
    try:
        record = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class DashboardState:
    """The dashboard's view of the topics; ``version`` moves on with every change a browser should see."""

    def __init__(self, window_kind: str = "tumbling") -> None:
        self.window_kind = window_kind
        self.version = 0
        self.connected = False
        self.problem: str | None = "connecting to Kafka"
        self.ignored = 0
        self.windows: dict[str, dict[int, dict[str, Any]]] = {}
        self.texts: OrderedDict[str, str] = OrderedDict()
        self.feed: deque[dict[str, Any]] = deque(maxlen=FEED_SIZE)
        self.labelled = 0
        self.by_label: Counter[str] = Counter()
        self.per_second: dict[int, int] = {}
        self.serving: str | None = None
        self.dead_by_reason: Counter[str] = Counter()
        self.dead_recent: deque[dict[str, Any]] = deque(maxlen=DEAD_LETTERS_SHOWN)
        self.drift: dict[tuple[str, int], dict[str, Any]] = {}
        self.model: dict[str, Any] | None = None

    # --- what the topics bring ----------------------------------------------------------------------------------------

    def set_connection(self, connected: bool, problem: str | None = None) -> None:
        if (connected, problem) != (self.connected, self.problem):
            self.connected, self.problem = connected, problem
            self.version += 1

    def clear_history(self) -> None:
        """Forget what the history topics said (they are about to be read again from their start)."""
        self.windows.clear()
        self.dead_by_reason.clear()
        self.dead_recent.clear()
        self.drift.clear()
        self.model = None
        self.version += 1

    def add_texts(self, values: Iterable[bytes | None]) -> None:
        """Input events: their texts, to show beside their labels (the labelled records do not carry them)."""
        for value in values:
            record = _object(value)
            if record is None or not isinstance(record.get("text"), str) or record.get("id") is None:
                continue  # the worker dead-letters it; nothing to show here
            self.texts[str(record["id"])] = record["text"][:TEXT_CHARS]
            self.texts.move_to_end(str(record["id"]))
            if len(self.texts) > TEXTS_KEPT:
                self.texts.popitem(last=False)

    def add_labelled(self, values: Iterable[bytes | None], now_s: float) -> None:
        """Labelled events: all counted; only the latest ``FEED_SIZE`` of a batch become feed items (the others would
        be pushed out of the feed at once, so building them is skipped)."""
        valid = []
        for value in values:
            record = _object(value)
            label, score = (record or {}).get("label"), _number((record or {}).get("score"))
            if record is None or not isinstance(label, str) or score is None:
                self.ignored += 1
                continue
            self.by_label[label] += 1
            valid.append((record, label, score))
        for record, label, score in valid[-FEED_SIZE:]:
            self.feed.appendleft(self._feed_item(record, label, score))
        if valid:
            self.serving = str(valid[-1][0].get("model_version"))
            self.labelled += len(valid)
            second = int(now_s)
            self.per_second[second] = self.per_second.get(second, 0) + len(valid)
            for old in [s for s in self.per_second if s <= second - RATE_SECONDS]:
                del self.per_second[old]
            self.version += 1

    def _feed_item(self, record: dict[str, Any], label: str, score: float) -> dict[str, Any]:
        scores = record.get("scores") if isinstance(record.get("scores"), dict) else {}
        top = sorted(([k, v] for k, v in scores.items() if _number(v) is not None), key=lambda kv: -kv[1])[:3]
        event_id = str(record.get("id"))
        return {
            "id": event_id,
            "source": str(record.get("source")),
            "label": label,
            "score": score,
            "top": top,
            "text": self.texts.get(event_id),
            "model_version": str(record.get("model_version")),
            "ts": _number(record.get("ts")),
        }

    def add_aggregates(self, values: Iterable[bytes | None]) -> None:
        """Window records of the kind shown: the latest publication of each (source, start)."""
        changed = False
        for value in values:
            record = _object(value)
            if record is None:
                self.ignored += 1
                continue
            if record.get("window") != self.window_kind:
                continue  # another kind of window (hopping): not drawn
            start, revision, counts = record.get("window_start"), record.get("revision", 0), record.get("counts")
            if not (isinstance(start, int) and isinstance(revision, int) and isinstance(counts, dict)):
                self.ignored += 1
                continue
            source = str(record.get("source"))
            held = self.windows.setdefault(source, {})
            if start in held and held[start]["revision"] >= revision:
                continue  # an older or the same publication
            held[start] = {
                "start": start,
                "end": record.get("window_end"),
                "counts": {str(k): int(v) for k, v in counts.items() if isinstance(v, int)},
                "total": record.get("total"),
                "final": revision >= 0,
                "revision": revision,
            }
            while len(held) > WINDOWS_KEPT:
                del held[min(held)]
            changed = True
        if changed:
            self.version += 1

    def add_dead_letters(self, values: Iterable[bytes | None]) -> None:
        for value in values:
            record = _object(value)
            if record is None or not isinstance(record.get("error"), str):
                self.ignored += 1
                continue
            self.dead_by_reason[record["error"]] += 1
            raw = record.get("raw")
            self.dead_recent.appendleft(
                {
                    "error": record["error"],
                    "reason": str(record.get("reason", ""))[:200],
                    "raw": raw[:200] if isinstance(raw, str) else None,
                    "topic": str(record.get("topic")),
                    "offset": record.get("offset"),
                }
            )
            self.version += 1

    def add_drift(self, values: Iterable[bytes | None]) -> None:
        for value in values:
            record = _object(value)
            if (
                record is None
                or not isinstance(record.get("window_start"), int)
                or _number(record.get("distance")) is None
            ):
                self.ignored += 1
                continue
            key = (str(record.get("source")), record["window_start"])
            self.drift[key] = {
                "source": key[0],
                "window_start": key[1],
                "window_end": record.get("window_end"),
                "distance": record["distance"],
                "top_changes": record.get("top_changes") if isinstance(record.get("top_changes"), list) else [],
            }
            while len(self.drift) > DRIFT_KEPT:
                del self.drift[min(self.drift, key=lambda k: k[1])]
            self.version += 1

    def add_models(self, values: Iterable[bytes | None]) -> None:
        for value in values:
            record = _object(value)
            if record is None or not isinstance(record.get("version"), str):
                self.ignored += 1
                continue
            metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
            labels = record.get("labels") if isinstance(record.get("labels"), list) else []
            self.model = {"version": record["version"], "labels": [str(x) for x in labels], "metrics": metrics}
            self.version += 1

    # --- what the page gets -------------------------------------------------------------------------------------------

    def snapshot(self, now_s: float) -> dict[str, Any]:
        """Everything the page draws, JSON-ready."""
        second = int(now_s)
        recent = [self.per_second.get(s, 0) for s in range(second - RATE_SECONDS + 1, second + 1)]
        return {
            "connected": self.connected,
            "problem": self.problem,
            "window": self.window_kind,
            "labels": self._labels(),
            "sources": self._sources(),
            "feed": list(self.feed),
            "labelled": self.labelled,
            "by_label": dict(self.by_label),
            "rate": {
                # complete seconds only: the current one is still filling
                "per_second": sum(recent[-RATE_WINDOW - 1 : -1]) / RATE_WINDOW,
                "series": recent,
            },
            "dead_letters": {
                "total": sum(self.dead_by_reason.values()),
                "by_reason": dict(self.dead_by_reason.most_common()),
                "recent": list(self.dead_recent),
            },
            "drift": sorted(self.drift.values(), key=lambda d: -d["window_start"])[:20],
            "model": {"announced": self.model, "serving": self.serving},
            "ignored": self.ignored,
        }

    def _labels(self) -> list[str]:
        """The model's labels in its order, then any other label seen."""
        known = list(self.model["labels"]) if self.model else []
        seen = set(self.by_label) | {
            label for held in self.windows.values() for w in held.values() for label in w["counts"]
        }
        return known + sorted(seen - set(known))

    def _sources(self) -> list[dict[str, Any]]:
        def total(source: str) -> int:
            return sum(sum(w["counts"].values()) for w in self.windows[source].values())

        order = sorted(self.windows, key=lambda s: (s != ALL_SOURCES, -total(s), s))[:SOURCES_SHOWN]
        shown = []
        for source in order:
            windows = [self.windows[source][start] for start in sorted(self.windows[source])]
            totals: Counter[str] = Counter()
            for window in windows:
                totals.update(window["counts"])
            drift = sorted(start for (key, start) in self.drift if key == source)
            shown.append(
                {
                    "source": source,
                    "windows": windows,
                    "totals": dict(totals),
                    "total": sum(totals.values()),
                    "drift": drift,
                }
            )
        return shown
