"""The worker's Prometheus metrics: histograms filled a batch at a time, families read from the counters."""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client.parser import text_string_to_metric_families

from stream.agents import WorkerStats
from stream.metrics import BatchHistogram, WorkerCollector, exposition


def samples(text: bytes) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


def test_a_batch_histogram_counts_into_cumulative_buckets():
    histogram = BatchHistogram("h", "doc", [1, 10])
    histogram.observe([0.5, 1, 3, 30])
    family = histogram.family()
    got = {(s.name, s.labels.get("le")): s.value for s in family.samples}
    assert got[("h_bucket", "1")] == 2 and got[("h_bucket", "10")] == 3 and got[("h_bucket", "+Inf")] == 4
    assert got[("h_count", None)] == 4 and got[("h_sum", None)] == 34.5


def test_the_exposition_reads_the_workers_counters():
    stats = WorkerStats(events_in=12, labelled=9, aggregated=8, late_events=2)
    stats.dead_letters_by_reason.update({"invalid_json": 2, "text_too_long": 1})
    stats.emotions.update({"joy": 7, "fear": 2})
    server = SimpleNamespace(is_loaded=True, loaded=SimpleNamespace(version="v0003"), swap_outcomes={"swapped": 1})
    collector = WorkerCollector(stats, server, lambda: {("emotion.texts", 2): 40})
    collector.observe_batch(12, 0.2, [None])
    got = samples(exposition(collector))
    assert got[("emostream_events_total", ())] == 12
    assert got[("emostream_events_labelled_total", ())] == 9
    assert got[("emostream_late_events_total", ())] == 2
    assert got[("emostream_events_aggregated_total", ())] == 8
    assert got[("emostream_dead_letters_total", (("reason", "invalid_json"),))] == 2
    assert got[("emostream_emotions_total", (("label", "fear"),))] == 2
    assert got[("emostream_model_swaps_total", (("outcome", "swapped"),))] == 1
    assert got[("emostream_model_info", (("version", "v0003"),))] == 1
    assert got[("emostream_consumer_lag", (("partition", "2"), ("topic", "emotion.texts")))] == 40
    assert got[("emostream_batch_size_count", ())] == 1 and got[("emostream_batch_size_sum", ())] == 12
    assert got[("emostream_inference_seconds_sum", ())] == 0.2
    assert got[("emostream_end_to_end_seconds_count", ())] == 0  # an event without an arrival time is not timed
