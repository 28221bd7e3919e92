"""What the worker's metrics cost per micro-batch, against the classify path's own pure work on the same batch.

For a batch of ``--batch`` input records (emotion test texts, two invalid), timed ``--repeat`` times in this process:

- baseline: what the classify actor does with a batch besides the model and the network (``split_batch``, ``label``,
  ``aggregation_input``, the labelled records' JSON);
- metrics: what ``GET /metrics`` adds to it (``WorkerStats.count_batch``'s per-reason and per-emotion counts, and
  ``WorkerCollector.observe_batch``'s three histograms);
- a scrape (``exposition``), paid per scrape, not per batch.

    python bench/metrics_cost.py [--batch 512] [--repeat 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--data", default=str(REPO.parent / "shared/datasets/emotion/test.jsonl"))
    args = parser.parse_args()

    from models.data import load_file
    from models.prediction import Prediction, PredictionColumns
    from stream.agents import WorkerStats
    from stream.delivery import DeliveryReport
    from stream.labelling import InputRecord, aggregation_input, label, split_batch
    from stream.metrics import WorkerCollector, exposition
    from stream.schemas import InputLimits

    texts = load_file(args.data).texts
    now = int(time.time() * 1000)
    values = [
        json.dumps({"id": f"e{i}", "text": texts[i % len(texts)], "source": f"s{i % 7}"}).encode()
        for i in range(args.batch)
    ]
    values[3], values[9] = b"{oops", b"[1]"
    records = [InputRecord(value, "emotion.texts", 0, i, now) for i, value in enumerate(values)]
    labels = ["sadness", "joy", "love", "anger", "fear", "surprise"]
    limits = InputLimits(max_chars=5000, max_record_bytes=1 << 20, max_ahead_ms=3_600_000)
    stats = WorkerStats()
    server = SimpleNamespace(is_loaded=True, loaded=SimpleNamespace(version="v0001"), swap_outcomes={"swapped": 0})
    collector = WorkerCollector(stats, server, lambda: {("emotion.texts", 0): 0})
    report = DeliveryReport()

    def baseline():
        accepted, dead = split_batch(records, now_ms=now, limits=limits)
        predictions = [Prediction(labels[i % 6], 0.9, {labels[i % 6]: 0.9, "joy": 0.1}) for i in range(len(accepted))]
        labelled = label(accepted, PredictionColumns.of(predictions), "v0001", now)
        aggregation_input(labelled)
        [result.to_json() for result in labelled]
        return accepted, dead, labelled

    accepted, dead, labelled = baseline()

    def metrics():
        stats.count_batch(len(records), labelled, dead, 0, report)
        collector.observe_batch(len(records), 0.1, (item.record.timestamp_ms for item in accepted))

    timings = {}
    for name, work in (("baseline", baseline), ("metrics", metrics), ("scrape", lambda: exposition(collector))):
        work()
        started = time.perf_counter()
        for _ in range(args.repeat):
            work()
        timings[name] = (time.perf_counter() - started) / args.repeat

    per_event = {name: seconds / args.batch * 1e6 for name, seconds in timings.items()}
    print(f"batch of {args.batch} records ({len(dead)} invalid), {args.repeat} repeats, one core\n")
    print("| work | per batch | per event | / baseline |\n| --- | --- | --- | --- |")
    for name in ("baseline", "metrics"):
        ratio = timings[name] / timings["baseline"]
        print(f"| {name} | {timings[name] * 1000:.2f} ms | {per_event[name]:.2f} us | {ratio:.3f} |")
    print(f"| one scrape of /metrics | {timings['scrape'] * 1000:.2f} ms | | |")


if __name__ == "__main__":
    main()
