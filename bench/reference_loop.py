"""The reference for the worker's stream path: a plain, batch-native aiokafka loop in one process, with no model.

Per round: ``getmany`` (up to ``--max-records``, 512 like the worker's micro-batches) -> each value decoded with orjson
-> one output record per event (its id as the key, a fixed label, the event time as the record's timestamp), each
handed to ``AIOKafkaProducer.send`` and the delivery futures gathered once per round -> offsets committed. It is what
one process can move through Kafka on a machine, the ceiling a worker's stream path is measured against
(``bench/stream_throughput.py --reference``, issue 9).

    python bench/reference_loop.py --broker kafka://127.0.0.1:9092 --input T --output T2 --group G

Prints ``ready`` once it holds its partitions; runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stream.kafka.connection import bootstrap_servers


async def run(broker: str, input_topic: str, output_topic: str, group: str, max_records: int) -> None:
    servers = bootstrap_servers(broker)
    consumer = AIOKafkaConsumer(
        input_topic,
        bootstrap_servers=servers,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,  # the worker's EMOSTREAM_FETCH_WAIT
    )
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all")
    await producer.start()
    await consumer.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    ready = False
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=max_records)
            if not ready and consumer.assignment():
                print("ready", flush=True)
                ready = True
            if not batch:
                continue
            now_ms = int(time.time() * 1000)
            futures = []
            for records in batch.values():
                for record in records:
                    event = orjson.loads(record.value)
                    output = {
                        "id": event["id"],
                        "source": event.get("source", "unknown"),
                        "ts": record.timestamp,
                        "label": "neutral",
                        "score": 1.0,
                        "processed_at": now_ms,
                    }
                    futures.append(
                        await producer.send(
                            output_topic, orjson.dumps(output), key=str(event["id"]).encode(), timestamp_ms=now_ms
                        )
                    )
            await asyncio.gather(*futures)
            await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--max-records", type=int, default=512)
    args = parser.parse_args()
    asyncio.run(run(args.broker, args.input, args.output, args.group, args.max_records))


if __name__ == "__main__":
    main()
