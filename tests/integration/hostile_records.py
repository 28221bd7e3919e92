"""A seeded mix of valid text events and hostile records, each with the outcome the worker owes it.

Used by the hostile-input integration test and by ``bench/hostile_input.py`` (the same generator at volume). Every
record is either *valid* (to be labelled exactly once, under its id) or *hostile* (to be dead-lettered with the
given error; ``None`` where several errors are right, as for random bytes).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaProducer

from stream.kafka.connection import bootstrap_servers

MIB = 1024 * 1024


@dataclass(frozen=True)
class Record:
    """One record to send: its value, and what must come of it."""

    kind: str
    value: bytes | None
    label_id: str | None = None  # valid: the id its labelled record carries
    error: str | None = None  # hostile: the dead letter's error, when only one is right


def _valid(i: int, text: str, rng: random.Random, now_ms: int) -> Record:
    event = {"id": f"v{i}", "text": text, "source": rng.choice(["chat", "mail", "forum"]), "ts": now_ms - i}
    return Record("valid", orjson.dumps(event), label_id=f"v{i}")


def _hostile_kinds(i: int, rng: random.Random, now_ms: int, huge: int) -> list[Record]:
    """Every kind of hostile record, once, for record number ``i``."""
    hid = f"h{i}"

    def event(**fields) -> bytes:
        # The standard library's encoder: it writes integers beyond 64 bits, which orjson refuses to.
        return json.dumps({"id": hid, **fields}, ensure_ascii=False).encode()

    nested = b'{"text": "x", "meta": ' + b'{"a": ' * 2000 + b"1" + b"}" * 2001
    return [
        Record("random_bytes", bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))),
        Record("invalid_utf8", b'{"text": "caf\xe9"}', error="invalid_utf8"),
        Record("big_invalid_utf8", b"\xff" * 400_000, error="invalid_utf8"),  # once a 1.73 MB dead letter
        Record("lone_surrogate_escaped", b'{"text": "\\ud800 hi"}', error="invalid_json"),
        Record("lone_surrogate_raw", b'{"text": "\xed\xa0\x80 hi"}', error="invalid_utf8"),
        Record("not_json", b"{oops", error="invalid_json"),
        Record("too_deep", nested, error="invalid_json"),
        Record("not_an_object", rng.choice([b"[1, 2]", b"null", b"42", b'"text"', b"true"]), error="not_an_object"),
        Record("no_value", None, error="empty_record"),
        Record("missing_text", event(source="chat"), error="missing_text"),
        Record("text_null", event(text=None), error="missing_text"),
        Record("text_not_string", event(text=rng.choice([1, 2.5, [1], {"a": 1}, True])), error="text_not_string"),
        Record("empty_text", event(text=rng.choice(["", "   ", "\n\t"])), error="empty_text"),
        Record(
            "invisible_text", event(text=rng.choice(["\u200b\u200d", "\x00\x00", "\ufeff \u2060"])), error="empty_text"
        ),
        Record("text_too_long", event(text="a" * 5001), error="text_too_long"),
        Record("record_too_large", event(text="x", meta={"pad": "p" * huge}), error="record_too_large"),
        Record(
            "bad_id",
            orjson.dumps({"id": rng.choice([[1], {"a": 1}, True, 1.5, "", "i" * 300]), "text": "x"}),
            error="invalid_id",
        ),
        Record("bad_source", event(text="x", source=rng.choice([3, "", "s" * 200, "*", None])), error="invalid_source"),
        Record(
            "bad_ts_type",
            event(text="x", ts=rng.choice([True, [1], {"a": 1}, "yesterday", "2024-01-02T03:04:05"])),
            error="invalid_ts",
        ),
        Record("ts_beyond_int64", event(text="x", ts=rng.choice([10**19, 2**64 - 1, 10**20])), error="ts_out_of_range"),
        Record("ts_absurd", event(text="x", ts=rng.choice([1e300, 9e18, -5, now_ms + 10**9])), error="ts_out_of_range"),
        Record("ts_year_one", event(text="x", ts="0001-01-01T00:00:00Z"), error="ts_out_of_range"),
        Record("bad_meta", event(text="x", meta=rng.choice([[1], "m", 3])), error="invalid_meta"),
    ]


def _odd_but_valid(i: int, text: str, now_ms: int) -> list[Record]:
    """Records that look hostile but are valid: they must be labelled."""
    vid = f"o{i}"
    return [
        Record("nul_inside", orjson.dumps({"id": f"{vid}n", "text": f"{text}\x00!"}), label_id=f"{vid}n"),
        Record(
            "huge_meta",
            orjson.dumps({"id": f"{vid}m", "text": text, "meta": {"pad": "m" * 500_000}}),
            label_id=f"{vid}m",
        ),
        Record(
            "deep_meta",
            b'{"id": "'
            + f"{vid}d".encode()
            + b'", "text": '
            + json.dumps(text).encode()
            + b', "meta": '
            + b'{"a": ' * 500
            + b"1"
            + b"}" * 500
            + b"}",
            label_id=f"{vid}d",
        ),
        Record(
            "iso_ts",
            orjson.dumps({"id": f"{vid}t", "text": text, "ts": "2020-02-02T02:02:02+02:00"}),
            label_id=f"{vid}t",
        ),
        Record("int_id", orjson.dumps({"id": 10_000_000 + i, "text": text}), label_id=str(10_000_000 + i)),
    ]


def generate(
    texts: list[str], *, valid: int, hostile: int, seed: int, now_ms: int, huge: int = MIB + 1
) -> list[Record]:
    """``valid`` valid events (some sharing an id, as duplicates do) and about ``hostile`` hostile records of every
    kind, shuffled together with ``seed``; ``huge`` is the size of the records too large to decode."""
    rng = random.Random(seed)
    records = [_valid(i, texts[i % len(texts)], rng, now_ms) for i in range(valid)]
    for i in range(0, valid, 50):  # duplicate ids: a second record with the id of an earlier one, labelled again
        records.append(Record("duplicate_id", records[i].value, label_id=records[i].label_id))
    kinds_per_round = len(_hostile_kinds(0, rng, now_ms, 1))
    for i in range(max(1, hostile // kinds_per_round)):
        records += _hostile_kinds(i, rng, now_ms, huge)
        if i % 5 == 0:
            records += _odd_but_valid(i, texts[i % len(texts)], now_ms)
    rng.shuffle(records)
    return records


async def send_records(broker_url: str, topic: str, records: list[Record]) -> None:
    """Send every record as it is (those larger than Kafka's 1 MB default and those without a value included)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(broker_url), max_request_size=64 * MIB)
    await producer.start()
    try:
        for record in records:
            # A record without a value needs a key (the Kafka protocol's rule for a tombstone).
            await producer.send(topic, record.value, key=b"no-value" if record.value is None else None)
        await producer.flush()
    finally:
        await producer.stop()
