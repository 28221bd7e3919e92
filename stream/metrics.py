"""The worker's Prometheus metrics (``GET /metrics``): read from its counters when scraped, not kept per event.

The classify and aggregate paths already count per micro-batch in :class:`stream.agents.WorkerStats`; the collector
here turns those counters, the model in service and the consumer's position into Prometheus families at scrape time,
so the hot path pays nothing more for counters. The three histograms (batch size, inference time, end-to-end time)
are filled a batch at a time (:class:`BatchHistogram`).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4"  # aiohttp adds the charset itself

BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class BatchHistogram:
    """A Prometheus histogram filled with many observations at once (a batch's), cumulative buckets built only when
    scraped."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = list(buckets)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one: above every bound (+Inf)
        self.sum = 0.0

    def observe(self, values: Iterable[float]) -> None:
        """Count ``values``."""
        bounds, counts = self.bounds, self.counts
        for value in values:
            counts[bisect.bisect_left(bounds, value)] += 1
            self.sum += value

    def family(self) -> HistogramMetricFamily:
        cumulative, running = [], 0
        for bound, count in zip([*map(str, self.bounds), "+Inf"], self.counts, strict=True):
            running += count
            cumulative.append((bound, running))
        return HistogramMetricFamily(self.name, self.documentation, buckets=cumulative, sum_value=self.sum)


class WorkerCollector:
    """Prometheus families from the worker's counters (``stats``: a ``WorkerStats``), its model server and its
    consumer's lag per input partition (``lag()``: (topic, partition) -> records)."""

    def __init__(self, stats: Any, server: Any, lag: Callable[[], dict[tuple[str, int], int]]) -> None:
        self.stats = stats
        self.server = server
        self.lag = lag
        self.batch_size = BatchHistogram(
            "emostream_batch_size", "Records per classified micro-batch.", BATCH_SIZE_BUCKETS
        )
        self.inference_seconds = BatchHistogram(
            "emostream_inference_seconds", "Seconds the model took per micro-batch.", SECONDS_BUCKETS
        )
        self.end_to_end_seconds = BatchHistogram(
            "emostream_end_to_end_seconds",
            "Seconds from an event's arrival on the input topic (Kafka timestamp) to its labelled record's delivery.",
            SECONDS_BUCKETS,
        )

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        counters = [
            ("emostream_events", "Input records received.", stats.events_in),
            ("emostream_events_labelled", "Events labelled.", stats.labelled),
            ("emostream_review", "Predictions sent for review.", stats.sent_for_review),
            (
                "emostream_events_aggregated",
                "Events counted into the all-sources windows by this worker (labelled minus this: aggregation behind).",
                stats.aggregated,
            ),
            (
                "emostream_windows_published",
                "Final aggregate window records published (revisions included).",
                stats.windows_published,
            ),
            (
                "emostream_late_events",
                "Events too late for a window (sent to the late topic), per aggregation key.",
                stats.late_events,
            ),
            ("emostream_drift_reports", "Drift reports published.", stats.drift_reports),
            (
                "emostream_refused_outputs",
                "Output records the broker refused (replaced by a dead letter).",
                stats.refused_outputs,
            ),
            ("emostream_undeliverable", "Refused output records with nothing to stand for them.", stats.undeliverable),
        ]
        for name, documentation, value in counters:
            yield CounterMetricFamily(name, documentation, value=value)
        yield labelled_counter(
            "emostream_dead_letters", "Dead letters by reason.", "reason", stats.dead_letters_by_reason
        )
        yield labelled_counter("emostream_emotions", "Labelled events by emotion.", "label", stats.emotions)
        yield labelled_counter(
            "emostream_model_swaps", "Hot swaps of the model, by outcome.", "outcome", self.server.swap_outcomes
        )
        info = GaugeMetricFamily("emostream_model_info", "The model in service (value 1).", labels=["version"])
        if self.server.is_loaded:
            info.add_metric([self.server.loaded.version], 1)
        yield info
        lag = GaugeMetricFamily(
            "emostream_consumer_lag",
            "Records of an input partition after this worker's last commit.",
            labels=["topic", "partition"],
        )
        for (topic, partition), records in sorted(self.lag().items()):
            lag.add_metric([topic, str(partition)], records)
        yield lag
        for histogram in (self.batch_size, self.inference_seconds, self.end_to_end_seconds):
            yield histogram.family()

    def observe_batch(self, size: int, inference_seconds: float | None, arrived_ms: Iterable[int | None]) -> None:
        """One classified micro-batch: its size, the model's time (None when it did not run) and the arrival times
        (ms) of its labelled events, delivered now."""
        self.batch_size.observe((size,))
        if inference_seconds is not None:
            self.inference_seconds.observe((inference_seconds,))
        now_ms = time.time() * 1000
        self.end_to_end_seconds.observe((now_ms - ms) / 1000 for ms in arrived_ms if ms is not None)


def labelled_counter(name: str, documentation: str, label: str, values: dict[str, int]) -> CounterMetricFamily:
    """A counter family with one sample per ``values`` key, the key as its ``label``."""
    family = CounterMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def exposition(collector: Collector) -> bytes:
    """The Prometheus text format of ``collector``'s metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)
