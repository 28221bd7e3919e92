"""Hostile input through a real worker: every valid event labelled exactly once, every hostile record dead-lettered
with its reason, the worker still up, and its web view only where the settings put it."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections import Counter

import orjson
import pytest

from .hostile_records import generate, send_records
from .streams import collect

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_a_seeded_mix_of_hostile_and_valid_records_loses_nothing(stream_env, datasets_dir, tmp_path):
    worker = await stream_env.start_worker(tmp_path)
    with open(datasets_dir / "emotion" / "test.jsonl", encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for line in handle]
    records = generate(texts, valid=400, hostile=460, seed=13, now_ms=int(time.time() * 1000))
    await send_records(stream_env.broker.url, stream_env.topic("texts"), records)

    wanted = Counter(r.label_id for r in records if r.label_id)
    hostile = [r for r in records if not r.label_id]
    deadline = time.monotonic() + 300
    while True:
        labelled = await collect(stream_env, "labelled", timeout=3.0)
        dead = await collect(stream_env, "dlq", timeout=3.0)
        if (len(labelled) >= sum(wanted.values()) and len(dead) >= len(hostile)) or time.monotonic() > deadline:
            break
    assert Counter(r["id"] for r in labelled) == wanted, worker.log()  # each valid record labelled exactly once
    assert len(dead) == len(hostile), worker.log()
    assert Counter(d["error"] for d in dead if d["error"] in {r.error for r in hostile}) >= Counter(
        r.error for r in hostile if r.error
    )
    for letter in dead:
        assert letter["reason"] and letter["topic"] == stream_env.topic("texts")
        assert len(orjson.dumps(letter)) < 512 * 1024  # bounded, whatever the record was
        assert letter["raw_size"] < 1024 * 1024 or letter["raw_truncated"]
    stats = worker.get("/stats")
    assert worker.process.poll() is None and stats["undeliverable"] == 0
    assert stats["labelled"] == sum(wanted.values()) and stats["dead_lettered"] == len(hostile)

    # The web view answers where EMOSTREAM_WEB_HOST says (127.0.0.1), not on every interface, and serves our views
    # only: not Faust's table pages, which list every key of the worker's state.
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.2", worker.port), timeout=5):
        pass
    for path in ("/table/", "/router/", "/graph/"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{worker.port}{path}", timeout=5)
        assert refused.value.code == 404
