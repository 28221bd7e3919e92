"""What closing windows on time costs: the window ticks and the drift checks, on against off, in one run.

A worker serving the tiny model (so the stream path, not the model, sets the pace: the worst case for an overhead) on
the embedded broker, started afresh for each measurement, alternately with the defaults (ticks every
``EMOSTREAM_WINDOW_TICK`` s, drift checks on) and with both off (``EMOSTREAM_WINDOW_TICK=0``,
``EMOSTREAM_DRIFT_BASELINE=0``), ``--rounds`` times. Each measurement:

1. end to end, as ``bench/stream_throughput.py`` measures it: ``--n`` events from ``--sources`` sources produced as
   fast as possible, events/s from the first send to the last labelled record, and the worker's CPU seconds;
2. idle: then ``--idle-seconds`` of no input with every source's windows open (the ticks' cost per second is paid
   whatever the load: here it is all there is), the worker's CPU milliseconds per second.

Prints the medians and the on/off ratios.

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
                    rate, missing, cpu = measure(broker.url, env, values, [worker.process.pid])
                    if missing:
                        raise RuntimeError(f"{missing} events never arrived ({mode})")
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


def _event(id_: str, text: str, i: int, sources: int) -> bytes:
    return json.dumps({"id": id_, "text": text, "source": f"src{i % sources}", "ts": int(time.time() * 1000)}).encode()


def _wait(coroutine) -> None:
    import asyncio

    asyncio.run(coroutine)


if __name__ == "__main__":
    main()
