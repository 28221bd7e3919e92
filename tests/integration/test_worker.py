"""The stream worker against the real broker: labels, aggregates, dead letters, restart and scale-out."""

from __future__ import annotations

import asyncio
import time
import urllib.request

import orjson
import pytest
import rocksdict
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faust.stores.rocksdb import Store as RocksStore
from prometheus_client.parser import text_string_to_metric_families

from models import EmotionClassifier
from models.prediction import score_margin
from stream.aggregation import WindowSpec
from stream.kafka.connection import bootstrap_servers, client_options
from stream.kafka.consumer import confirmed_ends
from stream.kafka.partitioning import partitions_for_keys
from stream.schemas import ALL_SOURCES

from .conftest import PARTITIONS
from .streams import BASE_TS, collect, emotion_texts, event, labelled_until_all, send

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def scrape(worker) -> dict[tuple[str, tuple], float]:
    """The worker's ``/metrics``: value per (sample name, sorted labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/metrics", timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.read().decode())
            for sample in family.samples
        }


async def test_every_event_is_labelled_like_the_model_does(stream_env, served_registry, datasets_dir, tmp_path):
    texts = emotion_texts(datasets_dir, 500)
    worker = await stream_env.start_worker(tmp_path)
    await send(stream_env, [event(i, text, source="test") for i, text in enumerate(texts)])
    labelled = await collect(stream_env, "labelled", expected=len(texts), settle=1.0)

    by_id = {record["id"]: record for record in labelled}
    assert len(labelled) == len(by_id) == len(texts), worker.log()
    model = EmotionClassifier.from_pretrained(served_registry.resolve("current"), device="cpu", quantize="off")
    expected = model.predict(texts)
    mismatches = [i for i, p in enumerate(expected) if by_id[f"e{i}"]["label"] != p.label]
    assert not mismatches, [(texts[i], by_id[f"e{i}"]["label"], expected[i].label) for i in mismatches]
    record = by_id["e0"]
    assert set(record) == {"id", "source", "ts", "label", "score", "scores", "model_version", "processed_at"}
    assert record["model_version"] == "v0001" and record["source"] == "test"
    assert record["score"] == pytest.approx(expected[0].score, abs=1e-4)
    assert worker.get("/stats")["labelled"] == len(texts)

    # Uncertainty sampling: exactly the predictions whose top two scores are within the default 0.2 go to review.
    margins = {f"e{i}": score_margin(p.scores) for i, p in enumerate(expected)}
    wanted = {key for key, margin in margins.items() if margin < 0.2}
    review = await collect(stream_env, "review", expected=len(wanted), timeout=30, settle=1.0)
    got = {r["id"] for r in review}
    assert all(abs(margins[key] - 0.2) < 1e-4 for key in got ^ wanted), sorted(got ^ wanted)
    assert all(r["text"] == texts[int(r["id"][1:])] and r["label"] == by_id[r["id"]]["label"] for r in review)


async def test_published_window_totals_equal_the_labelled_records_in_them(stream_env, tmp_path):
    stream_env.extra = {
        "EMOSTREAM_TUMBLING_WINDOW": "10",
        "EMOSTREAM_HOPPING_WINDOW": "30",
        "EMOSTREAM_HOPPING_STEP": "10",
        "EMOSTREAM_WINDOW_GRACE": "1000",
    }
    await stream_env.start_worker(tmp_path)
    moods = ["what a wonderful day", "i am so angry right now", "this is scary", "i feel sad and lonely"]
    values = [event(i, moods[i % 4], source="ab"[i % 2], ts=BASE_TS + i * 500) for i in range(120)]
    closers = [event(1000 + j, "all good now", source=source, ts=BASE_TS + 2_000_000) for j, source in enumerate("ab")]
    await send(stream_env, values)
    labelled = await collect(stream_env, "labelled", expected=120)
    # Sent only once the 120 are through: input partitions are consumed concurrently, so a closer sent with them
    # could overtake them and make them late.
    await send(stream_env, closers)  # 2000 s later: past every earlier window's end plus the 1000 s grace
    assert len(labelled) == 120

    specs = [WindowSpec("tumbling", 10_000, 10_000), WindowSpec("hopping", 30_000, 10_000)]
    expected_windows = {
        (spec.kind, key, start)
        for r in labelled
        for spec in specs
        for start in spec.starts(r["ts"])
        for key in (r["source"], "*")
    }
    windows = await collect(stream_env, "aggregates", expected=len(expected_windows), settle=2.0)
    assert {(w["window"], w["source"], w["window_start"]) for w in windows} == expected_windows
    for window in windows:
        inside = [
            r
            for r in labelled
            if window["window_start"] <= r["ts"] < window["window_end"] and window["source"] in ("*", r["source"])
        ]
        assert window["total"] == len(inside), window
        assert sum(window["counts"].values()) == window["total"]
        labels = {r["label"] for r in inside}
        assert set(window["counts"]) == labels and set(window["mean_score"]) == labels


async def test_bad_input_is_dead_lettered_and_good_events_around_it_are_labelled(stream_env, tmp_path):
    await stream_env.start_worker(tmp_path)
    bad = {
        "invalid_utf8": b'\xff\xfe{"text": 1}',
        "invalid_json": b"{oops",
        "not_an_object": b"[1, 2, 3]",
        "missing_text": orjson.dumps({"source": "x"}),
        "text_not_string": orjson.dumps({"text": 42}),
        "empty_text": orjson.dumps({"text": "   "}),
        "text_too_long": orjson.dumps({"text": "a" * 5001}),
    }
    values = []
    for i, raw in enumerate(bad.values()):
        values += [event(f"good-{i}", "i am happy"), raw]
    values.append(event("good-last", "i am happy"))
    await send(stream_env, values)
    labelled = await collect(stream_env, "labelled", expected=len(bad) + 1)
    dead = await collect(stream_env, "dlq", expected=len(bad), settle=1.0)
    expected_ids = sorted([f"egood-{i}" for i in range(len(bad))] + ["egood-last"])
    assert sorted(r["id"] for r in labelled) == expected_ids, stream_env.workers[0].log()
    assert sorted(r["error"] for r in dead) == sorted(bad)
    for record in dead:
        assert record["reason"] and record["topic"] == stream_env.topic("texts")
        assert isinstance(record["partition"], int) and isinstance(record["offset"], int)
    assert next(r for r in dead if r["error"] == "invalid_utf8")["raw_base64"]

    # What an operator scrapes: the counters equal what was sent and what came out, per reason for dead letters.
    worker = stream_env.workers[0]
    metrics = scrape(worker)
    assert metrics[("emostream_events_total", ())] == len(values)
    assert metrics[("emostream_events_labelled_total", ())] == len(labelled)
    assert {labels[0][1]: n for (name, labels), n in metrics.items() if name == "emostream_dead_letters_total"} == {
        reason: 1 for reason in bad
    }
    emotions = {labels[0][1]: n for (name, labels), n in metrics.items() if name == "emostream_emotions_total"}
    assert sum(emotions.values()) == len(labelled) and set(emotions) == {r["label"] for r in labelled}
    assert metrics[("emostream_model_info", (("version", "v0001"),))] == 1
    assert metrics[("emostream_end_to_end_seconds_count", ())] == len(labelled)

    def input_lag() -> list[float]:
        return [
            n
            for (name, labels), n in scrape(worker).items()
            if name == "emostream_consumer_lag" and dict(labels)["topic"] == stream_env.topic("texts")
        ]

    deadline = time.monotonic() + 60
    while any(input_lag()) or not input_lag():  # every input partition held, and committed to its end
        assert time.monotonic() < deadline, input_lag()
        await asyncio.sleep(0.5)
    assert worker.get("/health")["healthy"] and worker.get("/ready") == {"ready": True, "problems": []}


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
async def test_a_killed_worker_loses_nothing_and_its_state_comes_back(stream_env, datasets_dir, tmp_path, store):
    # memory://: the state is rebuilt from the whole changelog; rocksdb://: the store on disk survives the kill, and
    # only the changelog after the offset it recorded is read.
    stream_env.extra = {"EMOSTREAM_TUMBLING_WINDOW": "3600", "EMOSTREAM_WINDOW_GRACE": "3600", "EMOSTREAM_STORE": store}
    texts = emotion_texts(datasets_dir, 600)
    first = await stream_env.start_worker(tmp_path)
    # The source lives in the partition of `*`, so every changelog batch holds two records: the embedded broker (Tansu
    # 0.6) lists a partition's end as the last batch's first offset plus one, which left the last record out of a
    # recovery (memory) or refused a store that was up to date (RocksDB) until the ends were confirmed by a fetch.
    source = next(name for name in (f"chat{i}" for i in range(100)) if same_partition(name, ALL_SOURCES))
    values = [event(i, text, ts=BASE_TS, source=source) for i, text in enumerate(texts)]
    producer = asyncio.create_task(send(stream_env, values, 150.0))  # awaited below: a failed send fails the test
    await collect(stream_env, "labelled", expected=60)  # mid-stream: some labelled, most not yet sent
    first.kill()
    second = await stream_env.start_worker(tmp_path)
    assert await producer == len(values)
    labelled = await labelled_until_all(stream_env, {f"e{i}" for i in range(len(texts))})
    ids = [r["id"] for r in labelled]
    assert set(ids) == {f"e{i}" for i in range(len(texts))}, second.log()
    duplicates = len(ids) - len(set(ids))
    print(f"labelled {len(ids)} records for {len(texts)} events: {duplicates} duplicates after SIGKILL")
    # The windows were built partly before the kill: they are recovered (from the changelog, or the store and the
    # changelog written since), not restarted.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        views = second.get("/aggregates")
        totals = {
            key: [w["total"] for w in views.get(key, {}).get("open_windows", []) if w["window"] == "tumbling"]
            for key in (ALL_SOURCES, source)
        }
        if all(totals.values()) and min(t[0] for t in totals.values()) >= len(texts):
            break
        await asyncio.sleep(1)
    assert all(totals.values()) and min(t[0] for t in totals.values()) >= len(texts), views
    if store == "rocksdb://":
        second.stop()
        # Each partition's store recorded the offset of the last changelog record it holds: what its next recovery
        # starts after (the worker writes these itself, stream.kafka.changelog).
        assert await changelog_last_offsets(stream_env) == persisted_offsets(stream_env)


def same_partition(key: str, other: str) -> bool:
    """Whether Kafka's default partitioner puts the two keys in the same partition of a test topic."""
    first, second = partitions_for_keys([key.encode(), other.encode()], list(range(PARTITIONS)))
    return first == second


async def changelog_last_offsets(env) -> dict[int, int]:
    """The offset of the last record in each non-empty partition of the aggregation state's changelog (listed ends
    confirmed by a fetch: the embedded broker lists them short after a batch of several records)."""
    consumer = AIOKafkaConsumer(**client_options(env.connection()), fetch_max_wait_ms=10)
    await consumer.start()
    try:
        topic = f"{env.app_id}-aggregation-state-changelog"
        listed = await consumer.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
        ends = await confirmed_ends(consumer, listed, timeout=30)
    finally:
        await consumer.stop()
    return {tp.partition: end - 1 for tp, end in ends.items() if end > 0}


def persisted_offsets(env) -> dict[int, int]:
    """The changelog offset each partition's RocksDB store of the aggregation state says it holds."""
    offsets = {}
    for partition in range(PARTITIONS):
        path = env.state_dir / env.app_id / "v1" / "tables" / f"aggregation-state-{partition}.db"
        if not path.exists():
            continue
        db = rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True))
        try:
            offset = db.get(RocksStore.offset_key)
        finally:
            db.close()
        if offset is not None:
            offsets[partition] = int(offset)
    return offsets


async def test_a_worker_started_on_a_backlog_labels_all_of_it(stream_env, datasets_dir, tmp_path):
    # Events already in the topic when a new consumer group starts: Faust's recovery used to drop the records its
    # fetcher read while it resumed the partitions (docs/notes.md).
    texts = emotion_texts(datasets_dir, 600)
    await send(stream_env, [event(i, text) for i, text in enumerate(texts)])
    worker = await stream_env.start_worker(tmp_path)
    labelled = await labelled_until_all(stream_env, {f"e{i}" for i in range(len(texts))})
    assert {r["id"] for r in labelled} == {f"e{i}" for i in range(len(texts))}, worker.log()


async def test_two_workers_in_one_group_share_the_partitions(stream_env, datasets_dir, tmp_path):
    workers = [await stream_env.start_worker(tmp_path), await stream_env.start_worker(tmp_path)]
    texts_topic = stream_env.topic("texts")
    deadline = time.monotonic() + 180  # a rebalance with a 6 s session timeout; generous for a loaded machine
    while time.monotonic() < deadline:
        held = [[tp for tp in w.get("/stats")["assigned"] if tp.startswith(texts_topic + ":")] for w in workers]
        if all(held) and sum(map(len, held)) == 4:
            break
        await asyncio.sleep(1)
    every = sorted(f"{texts_topic}:{p}" for p in range(4))
    assert all(held) and sorted(tp for tps in held for tp in tps) == every, held
    texts = emotion_texts(datasets_dir, 400)
    await send(stream_env, [event(i, text) for i, text in enumerate(texts)])
    # Until every id is there: a count of records would stop early at a duplicate (delivery is at least once).
    labelled = await labelled_until_all(stream_env, {f"e{i}" for i in range(len(texts))})
    assert {r["id"] for r in labelled} == {f"e{i}" for i in range(len(texts))}
    counts = [w.get("/stats")["labelled"] for w in workers]
    assert all(counts) and sum(counts) >= len(texts), counts


async def test_a_worker_whose_output_topic_is_lost_says_so_and_creates_it_again(stream_env, tmp_path):
    # What a broker on memory storage does after a restart, or an operator's delete: records sent to a topic that is
    # gone are accepted and stored nowhere, so the worker has to notice. The dead-letter topic is the one deleted: the
    # worker has not written to it yet, so no client of the worker names it in a metadata request, which a broker that
    # auto-creates topics (Tansu; Kafka's default) answers by creating it again at once, too fast for the check to see
    # the gap (docs/notes.md).
    worker = await stream_env.start_worker(tmp_path)
    await send(stream_env, [event("before", "i am happy")])
    assert (await collect(stream_env, "labelled", expected=1))[0]["id"] == "ebefore"

    def reported_lost() -> list[str]:
        lines = [line for line in worker.log(1_000_000).splitlines() if "topics missing on the broker" in line]
        return [topic for line in lines for topic in orjson.loads(line)["topics"]]

    assert reported_lost() == []  # topics nothing had written to yet are created, not reported as lost
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(stream_env.broker.url))
    await admin.start()
    try:
        await admin.delete_topics([stream_env.topic("dlq")])
    finally:
        await admin.close()
    deadline = time.monotonic() + 120
    while stream_env.topic("dlq") not in reported_lost():
        assert time.monotonic() < deadline, worker.log()
        await asyncio.sleep(0.5)
    await send(stream_env, [b"{oops"])
    dead = await collect(stream_env, "dlq", expected=1, timeout=60)
    assert [r["error"] for r in dead] == ["invalid_json"]
    assert worker.process.poll() is None
