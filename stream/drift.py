"""Drift of the emotion mix: each closed tumbling window of a source against the mean of its previous windows.

Pure logic. The distance is the Jensen-Shannon distance (base 2, so between 0 for the same mix and 1 for mixes with
no emotion in common); the baseline is the mean label distribution of the key's previous ``baseline_windows`` tumbling
windows that had at least ``min_events`` events (smaller windows are too noisy to compare or to learn from). A window
is compared only once the baseline is full.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TOP_CHANGES = 3


@dataclass(frozen=True)
class DriftReport:
    """A window whose mix moved further than the threshold from the baseline: the ``emotion.drift`` record."""

    source: str
    window_start: int
    window_end: int
    distance: float
    baseline: dict[str, float]
    current: dict[str, float]

    def top_changes(self) -> list[dict[str, Any]]:
        """The emotions whose share moved most, largest first."""
        labels = set(self.baseline) | set(self.current)
        moves = sorted(
            ((self.current.get(label, 0.0) - self.baseline.get(label, 0.0), label) for label in labels),
            key=lambda item: (-abs(item[0]), item[1]),
        )
        return [
            {
                "label": label,
                "baseline": self.baseline.get(label, 0.0),
                "current": self.current.get(label, 0.0),
                "change": round(change, 6),
            }
            for change, label in moves[:TOP_CHANGES]
        ]

    def to_record(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "distance": round(self.distance, 6),
            "baseline": self.baseline,
            "current": self.current,
            "top_changes": self.top_changes(),
        }


def shares(counts: Mapping[str, int]) -> dict[str, float]:
    """Counts as a distribution (empty counts: an empty distribution)."""
    total = sum(counts.values())
    return {label: n / total for label, n in counts.items()} if total else {}


def mean_distribution(distributions: list[dict[str, float]]) -> dict[str, float]:
    """The label-wise mean of ``distributions`` (a label missing from one counts 0 there)."""
    labels = sorted({label for d in distributions for label in d})
    return {label: sum(d.get(label, 0.0) for d in distributions) / len(distributions) for label in labels}


def js_distance(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Jensen-Shannon distance between two distributions over labels, base 2: in [0, 1]."""
    divergence = 0.0
    for label in set(p) | set(q):
        a, b = p.get(label, 0.0), q.get(label, 0.0)
        m = (a + b) / 2
        if a > 0:
            divergence += a * math.log2(a / m) / 2
        if b > 0:
            divergence += b * math.log2(b / m) / 2
    return math.sqrt(max(divergence, 0.0))


@dataclass(frozen=True)
class DriftDetector:
    """Compares each closed tumbling window with its key's baseline and keeps the baseline's history."""

    baseline_windows: int
    threshold: float
    min_events: int = 30

    def observe(
        self, history: list[dict[str, int]], key: str, start: int, end: int, counts: Mapping[str, int]
    ) -> DriftReport | None:
        """Compare the closed window ``counts`` with the baseline in ``history`` (the counts of earlier windows,
        oldest first, changed in place: the window joins it); a report when the distance passes the threshold."""
        if self.baseline_windows <= 0 or sum(counts.values()) < self.min_events:
            return None
        report = None
        if len(history) >= self.baseline_windows:
            baseline = mean_distribution([shares(earlier) for earlier in history])
            current = shares(counts)
            distance = js_distance(baseline, current)
            if distance > self.threshold:
                rounded = {label: round(share, 6) for label, share in current.items()}
                base = {label: round(share, 6) for label, share in baseline.items()}
                report = DriftReport(key, start, end, distance, base, rounded)
        history.append(dict(counts))
        del history[: -self.baseline_windows]
        return report
