"""Hostile input at volume through one real worker: is every valid event labelled exactly once, every hostile record
dead-lettered, and the worker's memory bounded?

The records come from the seeded generator the integration test uses (``tests/integration/hostile_records.py``):
valid events (some sharing ids), and every kind of hostile record (random bytes, invalid UTF-8, records over 1 MiB,
JSON nested past orjson's limit, non-objects, wrong types for every field, invisible texts, lone surrogates, absurd
timestamps), plus odd-but-valid ones (huge ``meta``, NUL inside a text). The worker's resident memory (worker process
and its inference processes) is sampled every half second.

    python bench/hostile_input.py [--valid 2000] [--hostile 2100] [--seed 7] [--model tiny|current|PATH]

``--model tiny`` (the default) serves a 1-layer random-weight model with the real tokenizer: what is measured here
is the stream path, not the model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--valid", type=int, default=2000)
    parser.add_argument("--hostile", type=int, default=2100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model", default="tiny", help="tiny (random 1-layer), current (the registry's), or a folder")
    parser.add_argument("--data", default=str(REPO.parent / "shared/datasets/emotion/test.jsonl"))
    args = parser.parse_args()

    from bench.harness import resident_mib, tiny_model, worker_env
    from emostream.settings import Settings
    from models.data import load_file
    from models.registry import ModelRegistry
    from stream.broker import EmbeddedBroker
    from stream.process import WorkerProcess
    from stream.tools import collect_records
    from tests.integration.hostile_records import generate, send_records

    texts = load_file(args.data).texts
    records = generate(texts, valid=args.valid, hostile=args.hostile, seed=args.seed, now_ms=int(time.time() * 1000))
    wanted = Counter(r.label_id for r in records if r.label_id)
    hostile = [r for r in records if not r.label_id]
    sent_bytes = sum(len(r.value or b"") for r in records)

    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as scratch:
        registry = ModelRegistry(Path(scratch) / "registry")
        if args.model == "tiny":
            tiny_model(Path(scratch) / "tiny")
            registry.register(Path(scratch) / "tiny", promote=True)
        else:
            registry.register(ModelRegistry(Settings.from_env().registry_dir).resolve(args.model), promote=True)
        app_id = f"emostream-fuzz-{os.getpid()}"
        topic = {kind: f"{app_id}.{kind}" for kind in ("texts", "labelled", "dlq")}
        env = worker_env(broker.url, app_id, registry.root, Path(scratch))
        worker = WorkerProcess.start(env, Path(scratch) / "worker.log", loglevel="warn")
        samples: list[float] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                samples.append(resident_mib(worker.process.pid))
                time.sleep(0.5)

        try:
            worker.wait_assigned(topic["texts"])
            before = resident_mib(worker.process.pid)
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            started = time.monotonic()
            asyncio.run(send_records(broker.url, topic["texts"], records))
            deadline = time.monotonic() + 600
            while True:
                labelled = asyncio.run(collect_records(broker.url, topic["labelled"], timeout=3.0))
                dead = asyncio.run(collect_records(broker.url, topic["dlq"], timeout=3.0))
                complete = len(labelled) >= sum(wanted.values()) and len(dead) >= len(hostile)
                if complete or time.monotonic() > deadline:
                    break
            seconds = time.monotonic() - started
            done.set()
            sampler.join()
            stats = worker.get("/stats")
            alive = worker.process.poll() is None
        finally:
            done.set()
            worker.stop()

    got = Counter(json.loads(value)["id"] for _, value, _ in labelled)
    lost = sum((wanted - got).values())
    extra = sum((got - wanted).values())
    errors = Counter(json.loads(value)["error"] for _, value, _ in dead)
    largest_letter = max(len(value) for _, value, _ in dead)
    print(
        f"seed {args.seed}: {len(records)} records ({sum(wanted.values())} valid, {len(hostile)} hostile), "
        f"{sent_bytes / 2**20:.1f} MiB; model {args.model}; one worker, {os.cpu_count()} cores\n"
    )
    print("| measure | value |\n| --- | --- |")
    print(f"| valid records labelled (exactly once each) | {sum(got.values()) - extra} of {sum(wanted.values())} |")
    print(f"| valid records lost / labelled twice | {lost} / {extra} |")
    print(f"| hostile records dead-lettered | {len(dead)} of {len(hostile)} |")
    print(f"| largest dead letter | {largest_letter / 1024:.0f} KiB |")
    print(f"| worker alive at the end; undeliverable outputs | {alive}; {stats['undeliverable']} |")
    print(
        f"| resident memory, worker + inference processes: idle / peak / end | "
        f"{before:.0f} / {max(samples):.0f} / {samples[-1]:.0f} MiB |"
    )
    print(f"| time from first send to last output | {seconds:.0f} s |")
    print("\ndead letters by error: " + ", ".join(f"{k} {v}" for k, v in sorted(errors.items())))


if __name__ == "__main__":
    main()
