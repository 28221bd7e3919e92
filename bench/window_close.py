"""How soon after a burst and silence the burst's windows are published (issue 11's target: grace + idle + 5 s).

A worker serving the tiny model on the embedded broker, with small windows (tumbling ``--window`` s, hopping twice that
with the same step, ``--grace`` and ``--idle`` seconds, ticks every ``--tick`` s). ``--bursts`` times: ``--events``
events from three sources, timestamped with the sender's clock, sent at once; then nothing. For each window of the
burst, the delay of its first publication (the aggregate record's Kafka timestamp) after the window's end plus grace
plus idle: where the wall clock makes it due. Also the total of the latest revision against the labelled records.
The path is warmed first with 200 events of a day ago (the first micro-batches after a start are slower).

    python bench/window_close.py [--bursts 5] [--events 300] [--window 4] [--grace 1] [--idle 1] [--tick 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bursts", type=int, default=5)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--window", type=float, default=4.0)
    parser.add_argument("--grace", type=float, default=1.0)
    parser.add_argument("--idle", type=float, default=1.0)
    parser.add_argument("--tick", type=float, default=0.5)
    parser.add_argument("--data", default=str(REPO.parent / "shared/datasets/emotion/test.jsonl"))
    args = parser.parse_args()

    from bench.harness import tiny_model, worker_env
    from models.data import load_file
    from models.registry import ModelRegistry
    from stream.aggregation import WindowSpec
    from stream.broker import EmbeddedBroker
    from stream.process import WorkerProcess
    from stream.tools import collect_records, send_values

    texts = load_file(args.data).texts
    size_ms = int(args.window * 1000)
    specs = [WindowSpec("tumbling", size_ms, size_ms), WindowSpec("hopping", 2 * size_ms, size_ms)]
    due_after_end = int((args.grace + args.idle) * 1000)
    delays: list[float] = []
    missing = wrong = 0
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        tiny_model(folder / "tiny")
        registry = ModelRegistry(folder / "registry")
        registry.register(folder / "tiny", promote=True)
        app_id = f"window-close-{os.getpid()}"
        windows = {
            "EMOSTREAM_TUMBLING_WINDOW": str(args.window),
            "EMOSTREAM_HOPPING_WINDOW": str(2 * args.window),
            "EMOSTREAM_HOPPING_STEP": str(args.window),
            "EMOSTREAM_WINDOW_GRACE": str(args.grace),
            "EMOSTREAM_WINDOW_IDLE": str(args.idle),
            "EMOSTREAM_WINDOW_TICK": str(args.tick),
        }
        env = worker_env(broker.url, app_id, registry.root, folder / "state", **windows)
        worker = WorkerProcess.start(env, folder / "worker.log", loglevel="warn")
        try:
            worker.wait_assigned(env["EMOSTREAM_TOPIC_TEXTS"], timeout=120)
            worker.wait_assigned(f"{app_id}-aggregation-input", timeout=120)
            # Warm the path first (the first micro-batches of fresh inference processes are slow), with events of a day
            # ago so that they share no window with the bursts.
            day_ago = int(time.time() * 1000) - 86_400_000
            warm = [
                json.dumps({"id": f"warm-{i}", "text": texts[i], "source": "warm", "ts": day_ago + i}).encode()
                for i in range(200)
            ]
            asyncio.run(send_values(broker.url, env["EMOSTREAM_TOPIC_TEXTS"], warm))
            labelled_so_far = len(warm)
            asyncio.run(
                collect_records(broker.url, env["EMOSTREAM_TOPIC_LABELLED"], expected=labelled_so_far, timeout=120)
            )
            for burst in range(args.bursts):
                now = int(time.time() * 1000)
                values = [
                    json.dumps(
                        {"id": f"b{burst}-{i}", "text": texts[i % len(texts)], "source": f"s{i % 3}", "ts": now + i}
                    )
                    for i in range(args.events)
                ]
                asyncio.run(send_values(broker.url, env["EMOSTREAM_TOPIC_TEXTS"], [v.encode() for v in values]))
                labelled_so_far += args.events
                records = asyncio.run(
                    collect_records(broker.url, env["EMOSTREAM_TOPIC_LABELLED"], expected=labelled_so_far, timeout=120)
                )
                labelled = [
                    json.loads(value) for _, value, _ in records if json.loads(value)["id"].startswith(f"b{burst}-")
                ]
                wanted = Counter(
                    (key, spec.kind, start)
                    for r in labelled
                    for spec in specs
                    for start in spec.starts(r["ts"])
                    for key in (r["source"], "*")
                )
                last_end = max(start + spec.size_ms for spec in specs for _, kind, start in wanted if kind == spec.kind)
                # Wait until the wall clock has made the last window due, plus a margin, then read what came.
                time.sleep(max(0.0, (last_end + due_after_end) / 1000 - time.time()) + 10)
                aggregates = asyncio.run(collect_records(broker.url, env["EMOSTREAM_TOPIC_AGGREGATES"], timeout=3))
                first: dict[tuple, int] = {}
                latest: dict[tuple, dict] = {}
                for _, value, stamp in aggregates:
                    w = json.loads(value)
                    key = (w["source"], w["window"], w["window_start"])
                    if key not in wanted or not w["final"]:
                        continue
                    first.setdefault(key, stamp)
                    if key not in latest or w["revision"] > latest[key]["revision"]:
                        latest[key] = w
                for key in wanted:
                    end = key[2] + (size_ms if key[1] == "tumbling" else 2 * size_ms)
                    if key not in first:
                        missing += 1
                        continue
                    delays.append((first[key] - (end + due_after_end)) / 1000)
                    wrong += latest[key]["total"] != wanted[key]
                mine = delays[-(len(wanted) - sum(key not in first for key in wanted)) :]
                print(
                    f"# burst {burst}: {len(wanted)} windows, delays {sorted(round(d, 2) for d in mine)}",
                    file=sys.stderr,
                )
        finally:
            worker.stop()

    delays.sort()
    print(
        f"tiny model; {args.bursts} bursts of {args.events} events from 3 sources; windows {args.window} s tumbling, "
        f"{2 * args.window} s hopping; grace {args.grace} s, idle {args.idle} s, tick {args.tick} s; "
        f"{os.cpu_count()} cores\n"
    )
    print("| measure | value |\n| --- | --- |")
    print(f"| windows of the bursts | {len(delays) + missing} |")
    print(f"| windows never published / latest revision with a wrong total | {missing} / {wrong} |")
    print(
        f"| first publication after end + grace + idle: median / max | {statistics.median(delays):.2f} s / "
        f"{delays[-1]:.2f} s |"
    )
    print(f"| target: within end + grace + idle + 5 s | {'met' if delays[-1] <= 5 else 'not met'} |")


if __name__ == "__main__":
    main()
