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
from models.prediction import Prediction
from stream.agents import BatchLabeller, OutputTopics, classify_batches, register_agents
from stream.app import worker_parts
from stream.kafka.batches import BatchInput
from stream.kafka.worker import WorkerApp
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

    async def predict(self, texts: list[str]) -> tuple[list[Prediction], str]:
        if any("fail" in text for text in texts):
            raise RuntimeError("the model failed")
        return [
            Prediction("joy", 0.9, {"joy": 0.9, "fear": 0.1})
            if "happy" in text
            else Prediction("fear", 0.55, {"fear": 0.55, "joy": 0.45})
            for text in texts
        ], self.version


class RecordingSender:
    """Keeps what it is given per topic (``stream.delivery.Sender``); ``hold`` keeps deliveries waiting until set."""

    def __init__(self) -> None:
        self.sent: dict[str, list[tuple[bytes | None, bytes]]] = {}
        self.hold = asyncio.Event()
        self.hold.set()
        self.waiting = 0

    async def send_all(self, records):
        self.waiting += 1
        await self.hold.wait()
        self.waiting -= 1
        for record in records:
            self.sent.setdefault(record.topic, []).append((record.key, record.value))
        return []

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
    )
    app = WorkerApp("agents-test", fetch_max_wait=0.1, broker=settings.broker_url, datadir=str(tmp_path))

    def channel() -> faust.ChannelT:
        return app.channel(key_type=bytes, value_type=bytes)

    def named(name: str) -> faust.TopicT:  # the classify path names its outputs; its sender records what they get
        return app.topic(name, key_type=bytes, value_type=bytes)

    topics = Topics(
        texts=named("texts"),
        labelled=named("labelled"),
        aggregates=channel(),
        dlq=named("dlq"),
        review=named("review"),
        aggregation_input=named("aggregation-input"),
    )
    parts = worker_parts(app, settings, topics, KeywordModel(), RecordingSender())
    register_agents(app, parts, BatchInput(100))
    # Subscribed before anything is sent: an in-memory channel keeps records only for its subscribers.
    return app, parts, {"aggregates": topics.aggregates.clone(is_iterator=True)}


@pytest.fixture
def labeller(worker):
    _, parts, _ = worker
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
    rekeyed = {key: orjson.loads(value) for key, value in sender.sent["aggregation-input"]}
    assert rekeyed == {
        b"chat": [["joy", 0.9, 1_000]],
        b"web": [["fear", 0.55, 2_000]],
        b"*": [["joy", 0.9, 1_000], ["fear", 0.55, 2_000]],
    }
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
    app, parts, _ = worker
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


async def test_aggregate_publishes_closed_windows_and_counts_late_events(worker):
    app, parts, out = worker
    async with app.agents["aggregate"].test_context() as agent:
        await agent.put(orjson.dumps([["joy", 0.5, 1_000], ["fear", 0.25, 2_000]]), key=b"chat")
        await agent.put(orjson.dumps([["joy", 1.0, 61_000]]), key=b"chat")  # closes the tumbling window [0, 60 s)
        await agent.put(orjson.dumps([["joy", 1.0, 200_000]]), key=b"chat")  # closes every window holding 3 s
        await agent.put(orjson.dumps([["anger", 1.0, 3_000]]), key=b"chat")  # too late for all of them
    windows = [orjson.loads(e.value) for e in await drain(out["aggregates"])]
    tumbling = [w for w in windows if w["window"] == "tumbling"]
    assert tumbling[0] == {
        "window": "tumbling",
        "window_start": 0,
        "window_end": 60_000,
        "source": "chat",
        "counts": {"joy": 1, "fear": 1},
        "total": 2,
        "mean_score": {"joy": 0.5, "fear": 0.25},
    }
    state = parts.state["chat"]
    assert state["watermark"] == 200_000 and state["late"] == 1 and parts.stats.late_events == 1
    assert parts.stats.windows_published == len(windows)
    assert sum(w["total"] for w in tumbling) == 3  # the late event is counted nowhere
