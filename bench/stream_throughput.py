"""End-to-end stream throughput and latency against the model-bound rate, in one run, on the embedded broker.

1. model-bound: ``EmotionClassifier.predict`` on the N texts (the worker's own settings: device, quantization,
   batch size), in this process;
2. end-to-end: ``--workers`` worker processes in one group (default 1); N events produced as fast as possible;
   events/s from the first send to the arrival of the last labelled record;
3. latency: a steady load at half the end-to-end rate for ``--seconds``; per event, labelled-record arrival minus send
   time; p50 / p99.

    python bench/stream_throughput.py [--n 8000] [--batch-max 512] [--batch-wait 0.05] [--in-flight 4]
        [--inference-processes 2] [--seconds 20] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


async def _send_at_rate(broker_url: str, topic: str, values: list[bytes], rate: float | None) -> dict[str, float]:
    from aiokafka import AIOKafkaProducer

    from stream.tools import bootstrap_servers

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(broker_url), linger_ms=2)
    await producer.start()
    sent_at: dict[str, float] = {}
    started = time.monotonic()
    try:
        for i, value in enumerate(values):
            if rate:
                ahead = i / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            sent_at[json.loads(value)["id"]] = time.time()
            await producer.send(topic, value)
        await producer.flush()
    finally:
        await producer.stop()
    return sent_at


async def _arrivals(broker_url: str, topic: str, expected: set[str], timeout: float) -> dict[str, float]:
    from aiokafka import AIOKafkaConsumer

    from stream.tools import bootstrap_servers

    # A short fetch wait, so the measuring client adds little of its own latency.
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap_servers(broker_url), auto_offset_reset="earliest", fetch_max_wait_ms=20
    )
    await consumer.start()
    arrived: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(arrived) < len(expected) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=100)
            now = time.time()
            for records in batch.values():
                for record in records:
                    key = json.loads(record.value)["id"]
                    if key in expected:  # the topic also holds earlier phases' records
                        arrived.setdefault(key, now)
    finally:
        await consumer.stop()
    return arrived


async def _run_load(broker_url: str, env: dict, values: list[bytes], rate: float | None, timeout: float):
    ids = {json.loads(value)["id"] for value in values}
    consumer = asyncio.create_task(_arrivals(broker_url, env["EMOSTREAM_TOPIC_LABELLED"], ids, timeout))
    await asyncio.sleep(1.0)  # the consumer is positioned before the first send
    sent_at = await _send_at_rate(broker_url, env["EMOSTREAM_TOPIC_TEXTS"], values, rate)
    return sent_at, await consumer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=8000)
    parser.add_argument("--data", default=str(REPO.parent / "shared/datasets/emotion/test.jsonl"))
    parser.add_argument("--batch-max", type=int, default=512)
    parser.add_argument("--batch-wait", type=float, default=0.05)
    parser.add_argument("--in-flight", type=int, default=4, help="EMOSTREAM_BATCHES_IN_FLIGHT of the worker")
    parser.add_argument(
        "--inference-processes", type=int, default=2, help="EMOSTREAM_INFERENCE_PROCESSES of the worker"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of the steady-load latency run")
    parser.add_argument("--workers", type=int, default=1, help="worker processes in the consumer group")
    args = parser.parse_args()

    import numpy as np

    from emostream.settings import Settings
    from models.classifier import load_classifier
    from models.data import load_file
    from models.registry import ModelRegistry
    from stream.broker import EmbeddedBroker, free_port
    from stream.process import WorkerProcess
    from stream.serving import resolve_model

    settings = Settings.from_env()
    texts = load_file(args.data).texts
    texts = (texts * (args.n // len(texts) + 1))[: args.n]

    version, path = resolve_model(ModelRegistry(settings.registry_dir), settings.model)
    classifier = load_classifier(path, settings)  # as the worker serves it, on all of this machine's cores
    # Warm-up: on a GPU the first pass over each new batch shape is several times slower, so warm it with all of them.
    classifier.predict(texts if classifier.device.type == "cuda" else texts[:256])
    started = time.perf_counter()
    classifier.predict(texts)
    model_rate = len(texts) / (time.perf_counter() - started)
    print(
        f"# model-bound: {model_rate:.1f} texts/s ({version}, int8={classifier.quantized})",
        file=sys.stderr,
    )

    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as scratch:
        app_id = f"emostream-bench-{os.getpid()}"
        env = {
            **os.environ,
            "EMOSTREAM_BROKER_URL": broker.url,
            "EMOSTREAM_APP_ID": app_id,
            "EMOSTREAM_STATE_DIR": scratch,
            "EMOSTREAM_WEB_PORT": str(free_port()),
            "EMOSTREAM_SESSION_TIMEOUT": "6",
            "EMOSTREAM_BATCH_MAX": str(args.batch_max),
            "EMOSTREAM_BATCHES_IN_FLIGHT": str(args.in_flight),
            "EMOSTREAM_INFERENCE_PROCESSES": str(args.inference_processes),
            "EMOSTREAM_BATCH_WAIT": str(args.batch_wait),
            "EMOSTREAM_LOG_LEVEL": "warning",
            "EMOSTREAM_TOPIC_TEXTS": f"{app_id}.texts",
            "EMOSTREAM_TOPIC_LABELLED": f"{app_id}.labelled",
            "EMOSTREAM_TOPIC_AGGREGATES": f"{app_id}.aggregates",
            "EMOSTREAM_TOPIC_DLQ": f"{app_id}.dlq",
        }
        workers = []
        try:
            for i in range(args.workers):
                worker_env = {**env, "EMOSTREAM_WEB_PORT": str(free_port())}
                workers.append(WorkerProcess.start(worker_env, Path(scratch) / f"worker-{i}.log", loglevel="warn"))
                workers[-1].wait_assigned(env["EMOSTREAM_TOPIC_TEXTS"], timeout=120)
            # Warm the whole path (group join, partition assignment, model) before timing.
            warm = [json.dumps({"id": f"warm-{i}", "text": t}).encode() for i, t in enumerate(texts[:200])]
            asyncio.run(_run_load(broker.url, env, warm, None, 120))
            values = [json.dumps({"id": f"tp-{i}", "text": t}).encode() for i, t in enumerate(texts)]
            sent_at, arrived = asyncio.run(_run_load(broker.url, env, values, None, 300))
            missing = len(values) - sum(1 for key in sent_at if key in arrived)
            e2e_rate = len(values) / (max(arrived.values()) - min(sent_at.values()))
            print(f"# end-to-end: {e2e_rate:.1f} events/s ({missing} missing)", file=sys.stderr)

            steady_rate = e2e_rate / 2
            count = int(steady_rate * args.seconds)
            steady = [json.dumps({"id": f"lat-{i}", "text": texts[i % len(texts)]}).encode() for i in range(count)]
            sent_at, arrived = asyncio.run(_run_load(broker.url, env, steady, steady_rate, args.seconds + 120))
            latencies = np.array([arrived[k] - sent_at[k] for k in sent_at if k in arrived]) * 1000
        finally:
            for worker in workers:
                worker.stop()

    p50, p99 = np.percentile(latencies, [50, 99])
    print(
        f"texts: {args.n} from {args.data}; model {version}, device {classifier.device}, "
        f"int8 {classifier.quantized}; batch max {args.batch_max}, max wait {args.batch_wait} s; "
        f"{args.in_flight} micro-batches in flight, {args.inference_processes} inference processes; "
        f"{args.workers} worker(s), {settings.partitions} partitions; "
        f"{os.cpu_count()} cores shared by workers, broker and this client\n"
    )
    print("| measure | value |\n| --- | --- |")
    print(f"| model-bound `predict` rate | {model_rate:.1f} texts/s |")
    print(f"| end-to-end rate (produce -> labelled) | {e2e_rate:.1f} events/s |")
    print(f"| end-to-end / model-bound | {e2e_rate / model_rate:.2f} |")
    print(
        f"| steady load for latency | {steady_rate:.1f} events/s for {args.seconds:.0f} s ({len(latencies)} events) |"
    )
    print(f"| latency p50 / p99 | {p50:.0f} ms / {p99:.0f} ms |")


if __name__ == "__main__":
    main()
