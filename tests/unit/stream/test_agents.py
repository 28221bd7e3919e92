"""The worker's two paths with the production wiring: the classify actors on raw input records (as Faust's consumer
hands them over) with their outputs recorded per topic, and the aggregation agent through Faust's own
``agent.test_context()`` with the state table changed while each event is current (the real broker and model:
tests/integration)."""

from __future__ import annotations

import asyncio

import faust
import orjson
import pytest
from aiokafka.structs import ConsumerRecord

from emostream.settings import Settings
from models.prediction import Prediction, PredictionColumns
from stream.agents import BatchLabeller, OutputTopics, classify_batches, register_agents
from stream.app import worker_parts
from stream.kafka.batches import BatchInput
from stream.kafka.partitioning import partitions_for_keys
from stream.kafka.worker import WorkerApp
from stream.ticks import tick_value
from stream.topics import Topics


class KeywordModel:
    """A stand-in for the inference processes with the contract of ``ModelServer``: ``happy`` means joy, anything
    else fear; ``fail`` makes the whole batch fail, as a crashed model does."""

    version = "v0007"
    is_loaded = True

    @property
    def loaded(self):
        return self

    async def ensure_loaded(self):
        return self

    async def predict(self, texts: list[str]) -> tuple[PredictionColumns, str]:
        if any("fail" in text for text in texts):
            raise RuntimeError("the model failed")
        predictions = [
            Prediction("joy", 0.9, {"joy": 0.9, "fear": 0.1})
            if "happy" in text
            else Prediction("fear", 0.55, {"fear": 0.55, "joy": 0.45})
            for text in texts
        ]
        return PredictionColumns.of(predictions), self.version


class RecordingSender:
    """Keeps what it is given per topic (``stream.delivery.Sender``; every topic has 4 partitions), and the partition
    a record asked for; ``hold`` keeps deliveries waiting until set."""

    def __init__(self) -> None:
        self.sent: dict[str, list[tuple[bytes | None, bytes]]] = {}
        self.partition: dict[str, list[int | None]] = {}
        self.hold = asyncio.Event()
        self.hold.set()
        self.waiting = 0

    async def send_all(self, records):
        self.waiting += 1
        await self.hold.wait()
        self.waiting -= 1
        for record in records:
            self.sent.setdefault(record.topic, []).append((record.key, record.value))
            self.partition.setdefault(record.topic, []).append(record.partition)
        return []

    async def partitions(self, topic: str) -> list[int]:
        return [0, 1, 2, 3]

    def delivered_offset(self, topic: str, partition: int) -> int | None:
        return None

    def values(self, topic: str) -> list[dict]:
        return [orjson.loads(value) for _, value in self.sent.get(topic, [])]


def record(value: bytes, offset: int, partition: int = 0) -> ConsumerRecord:
    """An input record as aiokafka returns it (timestamp in ms)."""
    return ConsumerRecord("emotion.texts", partition, offset, 1_000, 0, None, value, None, 0, len(value), ())


@pytest.fixture
def worker(tmp_path):
    settings = Settings(
        broker_url="kafka://127.0.0.1:9",
        state_dir=tmp_path,
        batch_wait=0.01,
        review_margin=0.2,
        tumbling_window=60.0,
        hopping_window=120.0,
        hopping_step=60.0,
        window_grace=0.0,
        allowed_lateness=60.0,
        drift_baseline=2,
        drift_min_events=2,
    )
    app = WorkerApp("agents-test", fetch_max_wait=0.1, broker=settings.broker_url, datadir=str(tmp_path))

    def named(name: str) -> faust.TopicT:  # the agents name their outputs; the sender records what they get
        return app.topic(name, key_type=bytes, value_type=bytes)

    topics = Topics(
        texts=named("texts"),
        labelled=named("labelled"),
        aggregates=named("aggregates"),
        dlq=named("dlq"),
        late=named("late"),
        drift=named("drift"),
        review=named("review"),
        aggregation_input=named("aggregation-input"),
    )
    parts = worker_parts(app, settings, topics, KeywordModel(), RecordingSender())
    register_agents(app, parts, BatchInput(100))
    return app, parts


@pytest.fixture
def labeller(worker):
    _, parts = worker
    return BatchLabeller(parts.settings, OutputTopics.of(parts.topics), parts.server, parts.sender, parts.stats)


async def drain(channel: faust.ChannelT) -> list[faust.EventT]:
    events = []
    while not channel.empty():
        events.append(await channel.get(timeout=1))
    return events


def event(**fields) -> bytes:
    return orjson.dumps(fields)


async def test_classify_labels_dead_letters_reviews_and_rekeys_one_batch(labeller):
    sender = labeller.sender
    await labeller.handle(
        [
            record(event(id="a", text="so happy", source="chat", ts=1_000), 0),
            record(b"{not json", 1),
            record(event(id="b", text="hmm", source="web", ts=2_000), 2),
        ]
    )
    assert [key for key, _ in sender.sent["labelled"]] == [b"a", b"b"]  # keyed by event id
    assert [(r["id"], r["label"], r["model_version"]) for r in sender.values("labelled")] == [
        ("a", "joy", "v0007"),
        ("b", "fear", "v0007"),
    ]
    [dead] = sender.values("dlq")
    assert dead["error"] == "invalid_json" and dead["raw"] == "{not json" and dead["offset"] == 1
    # One unkeyed record per partition of the aggregation input, holding the keys Kafka's partitioner puts there.
    packed = sender.sent["aggregation-input"]
    assert all(key is None for key, _ in packed)
    rekeyed = {name: entries for _, value in packed for name, entries in orjson.loads(value)}
    assert rekeyed == {
        "chat": [["joy", 0.9, 1_000, "a", "chat"]],
        "web": [["fear", 0.55, 2_000, "b", "web"]],
        "*": [["joy", 0.9, 1_000, "a", "chat"], ["fear", 0.55, 2_000, "b", "web"]],
    }
    where = sender.partition["aggregation-input"]
    assert len(set(where)) == len(where)  # at most one record per partition
    for partition, (_, value) in zip(where, packed, strict=True):
        names = [name for name, _ in orjson.loads(value)]
        assert partitions_for_keys([name.encode() for name in names], [0, 1, 2, 3]) == [partition] * len(names)
    [review] = sender.values("review")
    assert review["id"] == "b" and review["margin"] == pytest.approx(0.1)
    stats = labeller.stats
    assert (stats.events_in, stats.labelled, stats.dead_lettered, stats.sent_for_review) == (3, 2, 1, 1)


async def test_a_batch_the_model_fails_on_is_dead_lettered_not_lost(labeller):
    await labeller.handle([record(event(id="a", text="this will fail"), 0), record(event(id="b", text="happy"), 1)])
    sender = labeller.sender
    assert "labelled" not in sender.sent
    assert sorted(d["error"] for d in sender.values("dlq")) == ["inference_failed", "inference_failed"]
    assert labeller.stats.dead_lettered == 2


async def test_an_actor_reports_a_batch_done_only_once_its_outputs_are_delivered(worker, labeller):
    app, parts = worker
    inputs: BatchInput = BatchInput(100)
    sender = labeller.sender
    sender.hold.clear()
    actor = asyncio.create_task(classify_batches(app, inputs, labeller, parts.guard))
    try:
        inputs.put("texts-0", [record(event(id=str(i), text="happy"), i) for i in range(3)])
        while not sender.waiting:  # the batch was labelled and its outputs are on their way
            await asyncio.sleep(0.01)
        assert inputs.in_flight == 1 and inputs.offsets.committable("texts-0") is None
        sender.hold.set()
        while inputs.in_flight:
            await asyncio.sleep(0.01)
        assert inputs.offsets.committable("texts-0") == 3  # the offset after the last record of the batch
        assert len(sender.sent["labelled"]) == 3
    finally:
        actor.cancel()


def entries(*events) -> bytes:
    """An aggregation input record: ``(label, score, ts, id)`` per event of source ``chat``."""
    return orjson.dumps([[label, score, ts, id_, "chat"] for label, score, ts, id_ in events])


async def test_aggregate_publishes_windows_then_revisions_then_late_events(worker):
    app, parts = worker
    sender = parts.sender
    async with app.agents["aggregate"].test_context() as agent:
        await agent.put(entries(("joy", 0.5, 1_000, "a"), ("fear", 0.25, 2_000, "b")), key=b"chat")
        await agent.put(entries(("joy", 1.0, 61_000, "c")), key=b"chat")  # closes the tumbling window [0, 60 s)
        await agent.put(entries(("anger", 1.0, 3_000, "d")), key=b"chat")  # late, within the 60 s allowed: revision
        await agent.put(entries(("joy", 1.0, 200_000, "e")), key=b"chat")  # past every window of 3 s plus 60 s
        await agent.put(entries(("anger", 1.0, 3_000, "f")), key=b"chat")  # too late: emotion.late
    first = [w for w in sender.values("aggregates") if w["window"] == "tumbling" and w["window_start"] == 0]
    assert first == [
        {
            "window": "tumbling",
            "window_start": 0,
            "window_end": 60_000,
            "source": "chat",
            "counts": {"joy": 1, "fear": 1},
            "total": 2,
            "mean_score": {"joy": 0.5, "fear": 0.25},
            "final": True,
            "revision": 0,
        },
        {
            "window": "tumbling",
            "window_start": 0,
            "window_end": 60_000,
            "source": "chat",
            "counts": {"joy": 1, "fear": 1, "anger": 1},
            "total": 3,
            "mean_score": {"joy": 0.5, "fear": 0.25, "anger": 1.0},
            "final": True,
            "revision": 1,
        },
    ]
    [late] = sender.values("late")
    assert (late["id"], late["source"], late["aggregate"], late["ts"], late["label"]) == (
        "f",
        "chat",
        "chat",
        3_000,
        "anger",
    )
    assert {"window": "tumbling", "window_start": 0, "window_end": 60_000} in late["missed"]
    assert sender.sent["late"][0][0] == b"f"
    state = parts.state["chat"]
    assert state["watermark"] == 200_000 and state["late"] == 1 and parts.stats.late_events == 1
    assert parts.stats.windows_published == len(sender.values("aggregates"))


async def test_a_packed_record_counts_every_key_it_holds_as_keyed_records_did(worker):
    app, parts = worker
    sender = parts.sender
    chat = [["joy", 0.5, 1_000, "a", "chat"], ["fear", 0.25, 2_000, "b", "chat"]]
    web = [["anger", 1.0, 1_500, "c", "web"]]
    everything = chat + web
    async with app.agents["aggregate"].test_context() as agent:
        await agent.put(orjson.dumps([["chat", chat], ["web", web], ["*", everything]]), partition=2)
        await agent.put(entries(("joy", 1.0, 3_000, "d")), key=b"chat", partition=2)  # the keyed format, still read
    assert {key: parts.state[key]["watermark"] for key in ("chat", "web", "*")} == {
        "chat": 3_000,
        "web": 1_500,
        "*": 2_000,
    }
    assert parts.state["chat"]["partition"] == 2 and parts.state["web"]["partition"] == 2
    [chat_window] = [w for w in parts.state["chat"]["windows"] if w["kind"] == "tumbling"]
    assert chat_window["counts"] == {"joy": 2, "fear": 1}
    assert parts.stats.aggregated == 3  # the events of `*`: each event once
    # Each write's changelog record went out with the record's outputs, to the record's partition, in the table's
    # serialization: what recovery reads back into the table.
    changelog = parts.state.changelog_topic.get_topic_name()
    written = [(orjson.loads(key), orjson.loads(value)) for key, value in sender.sent[changelog]]
    assert [key for key, _ in written] == ["chat", "web", "*", "chat"]
    assert written[-1][1] == parts.state["chat"]
    assert set(sender.partition[changelog]) == {2}


async def test_a_tick_closes_an_idle_sources_windows_on_the_wall_clock(worker):
    app, parts = worker
    sender = parts.sender
    wall = 1_800_000_000.0  # seconds: the records' Kafka timestamps are the clock
    async with app.agents["aggregate"].test_context() as agent:
        await agent.put(entries(("joy", 0.5, 1_000, "a")), key=b"chat", partition=1, timestamp=wall)
        await agent.put(tick_value(0), partition=0, timestamp=wall + 100)  # another partition's keys only
        assert "aggregates" not in sender.sent
        await agent.put(tick_value(0), partition=1, timestamp=wall + 30)  # event time 31 s: nothing due
        assert "aggregates" not in sender.sent
        await agent.put(tick_value(0), partition=1, timestamp=wall + 60)  # idle (0 s = the grace) past 60 s
    closed = sender.values("aggregates")
    assert {(w["window"], w["window_start"], w["revision"]) for w in closed} == {
        ("tumbling", 0, 0),
        ("hopping", -60_000, 0),
    }
    assert parts.state["chat"]["watermark"] == 61_000


async def test_a_drifting_mix_is_reported_against_the_mean_of_earlier_windows(worker):
    app, parts = worker
    sender = parts.sender
    async with app.agents["aggregate"].test_context() as agent:
        for minute in range(2):  # the baseline: two windows of joy and a little sadness
            base = minute * 60_000
            await agent.put(
                entries(*[("joy", 0.9, base + i, f"j{minute}{i}") for i in range(9)], ("sadness", 0.9, base + 9, "s")),
                key=b"chat",
            )
        await agent.put(entries(*[("anger", 0.9, 120_000 + i, f"a{i}") for i in range(10)]), key=b"chat")
        await agent.put(entries(("joy", 0.9, 600_000, "late-closer")), key=b"chat")
    [drift] = sender.values("drift")
    assert (drift["source"], drift["window_start"], drift["window_end"]) == ("chat", 120_000, 180_000)
    assert drift["baseline"] == {"joy": 0.9, "sadness": 0.1} and drift["current"] == {"anger": 1.0}
    assert drift["distance"] == pytest.approx(1.0)
    assert drift["top_changes"][0] == {"label": "anger", "baseline": 0.0, "current": 1.0, "change": 1.0}
    assert parts.stats.drift_reports == 1
