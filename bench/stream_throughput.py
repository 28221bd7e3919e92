"""End-to-end stream throughput and latency against the model-bound rate, in one run, on the embedded broker.

1. model-bound: ``EmotionClassifier.predict`` on the N texts (the worker's own settings: device, quantization,
   batch size), in this process;
2. end-to-end: ``--workers`` worker processes in one group (default 1); N events produced as fast as possible;
   events/s from the first send to the arrival of the last labelled record;
3. latency: a steady load at half the end-to-end rate for ``--seconds``; per event, labelled-record arrival minus send
   time; p50 / p99;
4. with ``--reference``: the same N events through ``bench/reference_loop.py`` (a plain batch-native aiokafka loop in
   its own process, no model) on the same broker, and both processes' CPU seconds per 10,000 events during their
   end-to-end phase (the worker's include its inference processes);
5. with ``--sources S``: the events come from S sources (aggregation keys), and the end-to-end phase also reports
   events/s from the first send until the workers aggregated every event (``/stats`` ``aggregated``), the CPU seconds
   then running to that moment: many sources make many aggregation keys per micro-batch.

    python bench/stream_throughput.py [--n 8000] [--batch-max 512] [--batch-wait 0.05] [--in-flight 4]
        [--inference-processes 2] [--seconds 20] [--workers 1] [--reference] [--sources S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


async def _send_at_rate(broker_url: str, topic: str, values: list[bytes], rate: float | None) -> dict[str, float]:
    from aiokafka import AIOKafkaProducer

    from stream.kafka.connection import bootstrap_servers

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

    from stream.kafka.connection import bootstrap_servers

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


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User plus system CPU seconds of ``pid`` itself, and of its live descendants (a worker's inference processes)."""
    own, descendants, pending = None, 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
        if own is None:
            own = seconds
        else:
            descendants += seconds
    return own or 0.0, descendants


@dataclass(frozen=True)
class Measured:
    """One end-to-end phase: events/s from the first send to the last labelled record, how many never arrived, the
    CPU seconds of the measured processes and of their children, and, when asked for, events/s from the first send to
    the moment every event was aggregated too."""

    rate: float
    missing: int
    cpu: tuple[float, float]
    aggregated_rate: float | None = None


def measure(
    broker_url: str, env: dict, values: list[bytes], pids: list[int], aggregated: Callable[[], int] | None = None
) -> Measured:
    """Send ``values`` as fast as possible and measure ``pids`` (the processes themselves, and their children).

    With ``aggregated`` (the workers' count of aggregated events, from ``/stats``), also wait until it has grown by
    ``len(values)``; the CPU seconds then run to that moment, so aggregation that lags behind labelling is paid for."""
    before = [cpu_seconds(pid) for pid in pids]
    counted_before = aggregated() if aggregated else 0
    sent_at, arrived = asyncio.run(_run_load(broker_url, env, values, None, 300))
    first_send = min(sent_at.values())
    aggregated_rate = None
    if aggregated:
        wait_aggregated(aggregated, counted_before + len(values))
        aggregated_rate = len(values) / (time.time() - first_send)
    after = [cpu_seconds(pid) for pid in pids]
    own, children = (sum(a[i] - b[i] for a, b in zip(after, before, strict=True)) for i in (0, 1))
    missing = len(values) - sum(1 for key in sent_at if key in arrived)
    return Measured(len(values) / (max(arrived.values()) - first_send), missing, (own, children), aggregated_rate)


def wait_aggregated(aggregated: Callable[[], int], events: int, timeout: float = 300) -> None:
    """Wait until ``aggregated()`` reaches ``events``."""
    deadline = time.monotonic() + timeout
    while aggregated() < events:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the workers did not aggregate {events} events within {timeout:.0f} s")
        time.sleep(0.05)


def reference_run(broker_url: str, env: dict, texts: list[str]) -> Measured:
    """The reference loop on its own topics of the same broker: its rate, missing events and CPU seconds for the same
    events (after a warm-up that gets it its partitions)."""
    from stream.topology import TopicSpec, ensure_topics

    app_id = env["EMOSTREAM_APP_ID"]
    ref_env = {**env, "EMOSTREAM_TOPIC_TEXTS": f"{app_id}.ref-texts", "EMOSTREAM_TOPIC_LABELLED": f"{app_id}.ref-out"}
    partitions = int(env.get("EMOSTREAM_PARTITIONS", "4"))
    topics = [ref_env["EMOSTREAM_TOPIC_TEXTS"], ref_env["EMOSTREAM_TOPIC_LABELLED"]]
    asyncio.run(ensure_topics(broker_url, [TopicSpec(name, partitions) for name in topics]))
    command = [sys.executable, str(REPO / "bench/reference_loop.py"), "--broker", broker_url]
    command += ["--input", topics[0], "--output", topics[1], "--group", f"{app_id}-reference"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        if process.stdout is None or process.stdout.readline().strip() != "ready":
            raise RuntimeError("the reference loop did not start")
        warm = [json.dumps({"id": f"ref-warm-{i}", "text": t}).encode() for i, t in enumerate(texts[:200])]
        asyncio.run(_run_load(broker_url, ref_env, warm, None, 120))
        values = [json.dumps({"id": f"ref-{i}", "text": t}).encode() for i, t in enumerate(texts)]
        return measure(broker_url, ref_env, values, [process.pid])
    finally:
        process.terminate()
        process.wait(30)


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
    parser.add_argument("--reference", action="store_true", help="also run bench/reference_loop.py on the same input")
    parser.add_argument(
        "--sources",
        type=int,
        default=0,
        help="give the events this many distinct sources (aggregation keys), round robin, and time the end-to-end run "
        "until the workers aggregated every event as well (0: no source, every event `unknown`)",
    )
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
    if classifier.device.type == "cpu":
        classifier.time_pass_overhead()  # as its inference processes do
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
            warm = [_event(f"warm-{i}", t, i, args.sources) for i, t in enumerate(texts[:200])]
            asyncio.run(_run_load(broker.url, env, warm, None, 120))
            values = [_event(f"tp-{i}", t, i, args.sources) for i, t in enumerate(texts)]
            pids = [w.process.pid for w in workers]
            counted = (lambda: sum(w.get("/stats")["aggregated"] for w in workers)) if args.sources else None
            if counted:
                wait_aggregated(counted, len(warm))  # so that the timed phase counts only its own events
            run = measure(broker.url, env, values, pids, counted)
            print(f"# end-to-end: {run.rate:.1f} events/s ({run.missing} missing)", file=sys.stderr)
            e2e_rate, worker_cpu = run.rate, run.cpu

            steady_rate = e2e_rate / 2
            count = int(steady_rate * args.seconds)
            steady = [json.dumps({"id": f"lat-{i}", "text": texts[i % len(texts)]}).encode() for i in range(count)]
            sent_at, arrived = asyncio.run(_run_load(broker.url, env, steady, steady_rate, args.seconds + 120))
            latencies = np.array([arrived[k] - sent_at[k] for k in sent_at if k in arrived]) * 1000
            # A random model hesitates on every text, so each event also makes a review record (a trained one: a few).
            stats = [worker.get("/stats") for worker in workers]
            review_share = sum(s["sent_for_review"] for s in stats) / max(1, sum(s["labelled"] for s in stats))
        finally:
            for worker in workers:
                worker.stop()
        if args.reference:  # after the workers stopped, so that the loop has the broker and the cores to itself
            reference = reference_run(broker.url, env, texts)
            ref_rate, ref_cpu = reference.rate, reference.cpu
            print(f"# reference loop: {ref_rate:.1f} events/s ({reference.missing} missing)", file=sys.stderr)

    p50, p99 = np.percentile(latencies, [50, 99])
    print(
        f"texts: {args.n} from {args.data}; model {version}, device {classifier.device}, "
        f"int8 {classifier.quantized}; batch max {args.batch_max}, max wait {args.batch_wait} s; "
        f"{args.in_flight} micro-batches in flight, {args.inference_processes} inference processes; "
        f"{args.workers} worker(s), {settings.partitions} partitions; {args.sources or 'no'} sources; "
        f"{os.cpu_count()} cores shared by workers, broker and this client\n"
    )
    print("| measure | value |\n| --- | --- |")
    print(f"| model-bound `predict` rate | {model_rate:.1f} texts/s |")
    print(f"| end-to-end rate (produce -> labelled) | {e2e_rate:.1f} events/s |")
    print(f"| end-to-end / model-bound | {e2e_rate / model_rate:.2f} |")
    if args.sources:
        print(
            f"| end-to-end rate (produce -> aggregated, {args.sources} sources) | {run.aggregated_rate:.1f} events/s |"
        )
    print(
        f"| steady load for latency | {steady_rate:.1f} events/s for {args.seconds:.0f} s ({len(latencies)} events) |"
    )
    print(f"| latency p50 / p99 | {p50:.0f} ms / {p99:.0f} ms |")
    print(f"| review records per labelled event (`EMOSTREAM_REVIEW_MARGIN`, `_RATE`) | {review_share:.2f} |")
    per_10k = 10_000 / len(texts)
    stream_cpu, inference_cpu = worker_cpu
    print(f"| worker process CPU per 10,000 events | {stream_cpu * per_10k:.3f} s |")
    print(f"| its inference processes' CPU per 10,000 events | {inference_cpu * per_10k:.3f} s |")
    if args.reference:
        print(f"| reference loop rate (`bench/reference_loop.py`, no model) | {ref_rate:.1f} events/s |")
        print(f"| end-to-end / reference loop | {e2e_rate / ref_rate:.2f} |")
        print(f"| reference loop CPU per 10,000 events | {ref_cpu[0] * per_10k:.3f} s |")
        print(f"| worker process CPU / reference loop CPU | {stream_cpu / ref_cpu[0]:.2f} |")
        print(f"| worker with inference CPU / reference loop CPU | {sum(worker_cpu) / ref_cpu[0]:.2f} |")


def _event(id_: str, text: str, i: int, sources: int) -> bytes:
    """An input event; with ``sources``, from source ``src<i mod sources>``."""
    event = {"id": id_, "text": text} | ({"source": f"src{i % sources}"} if sources else {})
    return json.dumps(event).encode()


if __name__ == "__main__":
    main()
