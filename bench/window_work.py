"""What closing windows on time costs: the window ticks and the drift checks, on against off, in one run.

A worker serving the tiny model (so the stream path, not the model, sets the pace: the worst case for an overhead) on
the embedded broker, started afresh for each measurement, alternately with the defaults (ticks every
``EMOSTREAM_WINDOW_TICK`` s, drift checks on) and with both off (``EMOSTREAM_WINDOW_TICK=0``,
``EMOSTREAM_DRIFT_BASELINE=0``), ``--rounds`` times. Each measurement:

1. end to end, as ``bench/stream_throughput.py`` measures it: ``--n`` events from ``--sources`` sources produced as
   fast as possible, events/s from the first send to the last labelled record, and the worker's CPU seconds;
2. idle: then ``--idle-seconds`` of no input with every source's windows open (the ticks' cost per second is paid
   whatever the load: here it is all there is), the worker's CPU milliseconds per second.

Prints the medians and the on/off ratios; then, in this process and deterministic enough to read below that noise,
the work itself: a tick over ``--sources`` keys with nothing due (a plain dict standing in for the table), one due
key (load, close its windows, save) and one drift check, against the worker's CPU per second at the measured rate.

    python bench/window_work.py [--n 8000] [--sources 500] [--rounds 3] [--idle-seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MODES = {"on": {}, "off": {"EMOSTREAM_WINDOW_TICK": "0", "EMOSTREAM_DRIFT_BASELINE": "0"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=8000)
    parser.add_argument("--sources", type=int, default=500, help="distinct sources (aggregation keys, plus `*`)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--data", default=str(REPO.parent / "shared/datasets/emotion/test.jsonl"))
    args = parser.parse_args()

    from bench.harness import tiny_model, worker_env
    from bench.stream_throughput import _run_load, cpu_seconds, measure
    from models.data import load_file
    from models.registry import ModelRegistry
    from stream.broker import EmbeddedBroker
    from stream.process import WorkerProcess

    texts = load_file(args.data).texts
    texts = (texts * (args.n // len(texts) + 1))[: args.n]
    results: dict[str, list[tuple[float, float, float]]] = {mode: [] for mode in MODES}
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        tiny_model(folder / "tiny")
        registry = ModelRegistry(folder / "registry")
        registry.register(folder / "tiny", promote=True)
        for round_ in range(args.rounds):
            for mode, extra in MODES.items():
                app_id = f"window-work-{os.getpid()}-{round_}-{mode}"
                env = worker_env(broker.url, app_id, registry.root, folder / app_id, **extra)
                worker = WorkerProcess.start(env, folder / f"{app_id}.log", loglevel="warn")
                try:
                    worker.wait_assigned(env["EMOSTREAM_TOPIC_TEXTS"], timeout=120)
                    warm = [_event(f"warm-{i}", t, i, args.sources) for i, t in enumerate(texts[:200])]
                    _wait(_run_load(broker.url, env, warm, None, 120))
                    values = [_event(f"e-{i}", t, i, args.sources) for i, t in enumerate(texts)]
                    run = measure(broker.url, env, values, [worker.process.pid])
                    rate, cpu = run.rate, run.cpu
                    if run.missing:
                        raise RuntimeError(f"{run.missing} events never arrived ({mode})")
                    before, started = cpu_seconds(worker.process.pid)[0], time.monotonic()
                    time.sleep(args.idle_seconds)
                    idle = (cpu_seconds(worker.process.pid)[0] - before) / (time.monotonic() - started)
                finally:
                    worker.stop()
                results[mode].append((rate, cpu[0] * 10_000 / len(values), idle * 1000))
                print(f"# round {round_} {mode}: {rate:.0f} events/s, idle {idle * 1000:.1f} ms CPU/s", file=sys.stderr)

    def median(mode: str, i: int) -> float:
        return statistics.median(r[i] for r in results[mode])

    print(
        f"tiny model; {args.n} events from {args.sources} sources per measurement; {args.rounds} rounds of on/off; "
        f"{os.cpu_count()} cores shared by the worker, the broker and this client\n"
    )
    print("| measure (median) | ticks + drift on | off | on / off |\n| --- | --- | --- | --- |")
    rows = [("end-to-end rate, events/s", 0, "{:.0f}"), ("worker CPU per 10,000 events, s", 1, "{:.2f}")]
    rows.append(("worker CPU while idle, ms per s", 2, "{:.1f}"))
    for name, i, shown in rows:
        on, off = median("on", i), median("off", i)
        print(f"| {name} | {shown.format(on)} | {shown.format(off)} | {on / off if off else float('nan'):.3f} |")
    print("\nper round (rate, CPU per 10k, idle ms/s): " + json.dumps(results))
    busy_ms_per_s = median("on", 0) * median("on", 1) / 10  # worker CPU ms per second at the measured rate
    in_process_costs(args.sources, busy_ms_per_s)


def in_process_costs(sources: int, busy_ms_per_s: float, repeat: int = 2000) -> None:
    """The tick and drift work timed in this process, and its share of a busy worker's CPU."""
    from stream.aggregation import KeyState, WindowAggregator, WindowSpec
    from stream.drift import DriftDetector

    minute = 60_000
    specs = [WindowSpec("tumbling", minute, minute), WindowSpec("hopping", 5 * minute, minute)]
    aggregator = WindowAggregator(specs, 30_000, lateness_ms=300_000, idle_ms=30_000)
    now = int(time.time() * 1000)
    table = {}
    for i in range(sources + 1):
        state = KeyState(partition=i % 4)
        aggregator.add_batch(
            state, f"s{i}", [("joy", 0.9, now - j, f"e{j}", f"s{i}") for j in range(20)], arrived_ms=now
        )
        table[f"s{i}"] = state.to_json()

    def tick(partition: int, now_ms: int) -> None:  # what stream.agents.aggregate_tick does for keys not due
        for value in list(table.values()):
            if value.get("partition") != partition or (value.get("due_at") or now_ms + 1) > now_ms:
                continue

    def due_key() -> None:
        state = KeyState.from_json(table["s1"])
        aggregator.tick(state, "s1", now + 400_000)
        state.to_json()

    detector, history = DriftDetector(6, 0.25, 30), [{"joy": 40, "sadness": 10}] * 6
    timings = {}
    for name, work in (
        ("tick", lambda: tick(1, now + 1_000)),
        ("due key", due_key),
        ("drift", lambda: detector.observe(list(history), "s", 0, minute, {"joy": 20, "anger": 30})),
    ):
        started = time.perf_counter()
        for _ in range(repeat):
            work()
        timings[name] = (time.perf_counter() - started) / repeat * 1000  # ms
    ticks_ms = 4 * timings["tick"]  # 4 partitions, one tick each per second
    # Each source closes a tumbling and a hopping window a minute (and checks drift once).
    closes_ms = (sources + 1) * (2 * timings["due key"] + timings["drift"]) / 60
    print(
        f"\nin process, {sources + 1} keys: a tick with nothing due {timings['tick'] * 1000:.1f} us, a due key "
        f"{timings['due key'] * 1000:.1f} us, a drift check {timings['drift'] * 1000:.1f} us"
    )
    work_ms = ticks_ms + closes_ms
    print(f"| tick + drift work at 1 tick/s on 4 partitions, every window closing | {work_ms:.2f} ms CPU per s |")
    print(f"| share of the busy worker's CPU ({busy_ms_per_s:.0f} ms per s) | {work_ms / busy_ms_per_s:.2%} |")


def _event(id_: str, text: str, i: int, sources: int) -> bytes:
    return json.dumps({"id": id_, "text": text, "source": f"src{i % sources}", "ts": int(time.time() * 1000)}).encode()


def _wait(coroutine) -> None:
    import asyncio

    asyncio.run(coroutine)


if __name__ == "__main__":
    main()
