"""What the integration tests do to a stream, as coroutines the (async) tests await: make and send events, read an
output topic back, wait until every id is labelled, and, for a failure message, where lost ids sat in the input and
what the workers logged."""

from __future__ import annotations

import asyncio
import json
import time

import orjson
from aiokafka import AIOKafkaConsumer
from click.testing import CliRunner

from emostream.cli import cli
from stream.kafka.connection import bootstrap_servers
from stream.tools import collect_records, send_values

BASE_TS = 1_790_000_000_000
FAST_WINDOWS = {  # small windows, closed one second of grace plus one second of silence after their end
    "EMOSTREAM_TUMBLING_WINDOW": "4",
    "EMOSTREAM_HOPPING_WINDOW": "8",
    "EMOSTREAM_HOPPING_STEP": "4",
    "EMOSTREAM_WINDOW_GRACE": "1",
    "EMOSTREAM_WINDOW_IDLE": "1",
    "EMOSTREAM_WINDOW_TICK": "0.5",
}


def emotion_texts(datasets_dir, n: int) -> list[str]:
    with open(datasets_dir / "emotion" / "test.jsonl", encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle][:n]


def event(i, text: str, **extra) -> bytes:
    return orjson.dumps({"id": f"e{i}", "text": text, **extra})


async def send(env, values, rate: float | None = None) -> int:
    """Send ``values`` to the stream's input topic; every delivery is checked (``NotDelivered`` otherwise)."""
    return await send_values(env.broker.url, env.topic("texts"), values, rate)


async def collect(env, kind: str, expected: int | None = None, timeout: float = 180.0, settle: float = 0.0):
    """The decoded records of one of the stream's topics, read from the beginning (``stream.tools.collect_records``)."""
    records = await collect_records(env.broker.url, env.topic(kind), expected=expected, timeout=timeout, settle=settle)
    return [orjson.loads(value) for _, value, _ in records]


async def labelled_until_all(env, ids: set[str], timeout: float = 180.0) -> list[dict]:
    """Every labelled record, read again until all of ``ids`` are among them (duplicates do not end the wait early)."""
    deadline = time.monotonic() + timeout
    while True:
        records = await collect(env, "labelled", timeout=3.0)
        if {r["id"] for r in records} >= ids or time.monotonic() > deadline:
            return records


async def where_in_input(env, ids: list[str]) -> dict[str, str]:
    """Where each of ``ids`` is in the input topic (``partition:offset``), or ``"never sent"``: for a failure message,
    what tells a lost send from a lost event."""
    consumer = AIOKafkaConsumer(
        env.topic("texts"), bootstrap_servers=bootstrap_servers(env.broker.url), auto_offset_reset="earliest"
    )
    await consumer.start()
    found: dict[str, str] = {}
    try:
        while batch := await consumer.getmany(timeout_ms=3000):
            for records in batch.values():
                for r in records:
                    found[orjson.loads(r.value).get("id")] = f"{r.partition}:{r.offset}"
    finally:
        await consumer.stop()
    return {id_: found.get(id_, "never sent") for id_ in ids}


def worker_logs(*workers, chars: int = 8000) -> str:
    """The end of each worker's log less its per-window lines, for a failure message that shows what happened."""
    parts = []
    for n, worker in enumerate(workers):
        lines = worker.log_path.read_text(errors="replace").splitlines()
        kept = "\n".join(line for line in lines if '"window published"' not in line)
        parts.append(f"--- worker {n} ({worker.log_path.name}) ---\n{kept[-chars:]}")
    return "\n".join(parts)


async def run_cli(env, *args: str, port: int = 6066):
    """``emostream ARGS`` with the stream's settings (``port``: the web port they name), in a thread (the CLI runs an
    event loop of its own, and a stream sent meanwhile goes on)."""
    variables = {k: v for k, v in env.env(port).items() if k.startswith("EMOSTREAM_")}
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=variables, catch_exceptions=False)
