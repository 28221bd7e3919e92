"""What the dashboard's state costs per event, against the least any consumer of the same topics does (decoding each
record's JSON), so that one dashboard process is sized against the stream it watches.

For ``--events`` input texts and their labelled records (emotion test texts, the worker's record shapes), fed in
batches of ``--batch`` as the dashboard's consumers hand them over, one core:

- baseline: ``orjson.loads`` of every text record and every labelled record;
- dashboard: ``DashboardState.add_texts`` and ``add_labelled`` on the same records (decode, count, keep the texts for
  the feed, build the feed items of each batch's latest events);
- a snapshot (``DashboardState.snapshot`` with 12 sources of 48 windows, plus its JSON), paid once a second at most.

    python bench/dashboard_cost.py [--events 100000] [--batch 500]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--data", default=str(REPO.parent / "shared/datasets/emotion/test.jsonl"))
    args = parser.parse_args()

    from stream.dashboard.state import SOURCES_SHOWN, WINDOWS_KEPT, DashboardState

    with open(args.data, encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for line in handle]
    labels = ["sadness", "joy", "love", "anger", "fear", "surprise"]
    now_ms = int(time.time() * 1000)
    text_records, labelled_records = [], []
    for i in range(args.events):
        label = labels[i % 6]
        text_records.append(orjson.dumps({"id": f"e{i}", "text": texts[i % len(texts)], "source": f"s{i % 7}"}))
        scores = {name: (0.9 if name == label else 0.02) for name in labels}
        labelled_records.append(
            orjson.dumps(
                {
                    "id": f"e{i}",
                    "source": f"s{i % 7}",
                    "ts": now_ms,
                    "label": label,
                    "score": 0.9,
                    "scores": scores,
                    "model_version": "v0001",
                    "processed_at": now_ms,
                }
            )
        )
    batches = [
        (text_records[i : i + args.batch], labelled_records[i : i + args.batch])
        for i in range(0, args.events, args.batch)
    ]

    def baseline() -> None:
        for text_batch, labelled_batch in batches:
            for value in text_batch:
                orjson.loads(value)
            for value in labelled_batch:
                orjson.loads(value)

    def dashboard() -> None:
        state = DashboardState()
        for text_batch, labelled_batch in batches:
            state.add_texts(text_batch)
            state.add_labelled(labelled_batch, time.time())

    timings = {}
    for name, work in (("baseline", baseline), ("dashboard", dashboard)):
        work()  # warm-up
        started = time.perf_counter()
        work()
        timings[name] = time.perf_counter() - started

    state = DashboardState()
    windows = [
        orjson.dumps(
            {
                "window": "tumbling",
                "window_start": w * 60_000,
                "window_end": (w + 1) * 60_000,
                "source": f"s{s}",
                "counts": {name: 10 + s for name in labels},
                "total": 60 + 6 * s,
                "revision": 0,
            }
        )
        for s in range(SOURCES_SHOWN)
        for w in range(WINDOWS_KEPT)
    ]
    state.add_aggregates(windows)
    state.add_labelled(labelled_records[-1000:], time.time())
    started = time.perf_counter()
    snapshots = 50
    for _ in range(snapshots):
        body = orjson.dumps(state.snapshot(time.time()))
    snapshot_ms = (time.perf_counter() - started) / snapshots * 1000

    per_event = {name: seconds / args.events * 1e6 for name, seconds in timings.items()}
    print(f"{args.events} events (a text record and a labelled record each), batches of {args.batch}, one core\n")
    print(f"baseline (decode only):  {per_event['baseline']:.2f} us per event")
    print(f"dashboard state:         {per_event['dashboard']:.2f} us per event")
    print(f"ratio dashboard/baseline: {per_event['dashboard'] / per_event['baseline']:.2f}")
    print(f"share of one core at 10,000 events/s: {per_event['dashboard'] * 10_000 / 1e6:.1%}")
    print(f"snapshot ({SOURCES_SHOWN} sources x {WINDOWS_KEPT} windows, JSON {len(body) / 1024:.0f} KiB): "
          f"{snapshot_ms:.1f} ms, at most once a second")  # fmt: skip


if __name__ == "__main__":
    main()
