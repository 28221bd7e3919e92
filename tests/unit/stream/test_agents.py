"""Both agents through Faust's own ``agent.test_context()``: events in, records out on in-memory channels, the state
table changed while each event is current, as in a worker (the real broker and model: tests/integration)."""

from __future__ import annotations

import faust
import orjson
import pytest

from emostream.settings import Settings
from models.prediction import Prediction
from stream.agents import register_agents
from stream.app import worker_parts
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

    topics = Topics(channel(), channel(), channel(), channel(), channel(), channel())
    parts = worker_parts(app, settings, topics, KeywordModel())
    register_agents(app, parts)
    # Subscribed before anything is sent: an in-memory channel keeps records only for its subscribers.
    outputs = {name: getattr(topics, name).clone(is_iterator=True) for name in topics.__dataclass_fields__}
    return app, parts, outputs


async def drain(channel: faust.ChannelT) -> list[faust.EventT]:
    events = []
    while not channel.empty():
        events.append(await channel.get(timeout=1))
    return events


def event(**fields) -> bytes:
    return orjson.dumps(fields)


async def test_classify_labels_dead_letters_reviews_and_rekeys_one_batch(worker):
    app, parts, out = worker
    async with app.agents["classify"].test_context(concurrency=1) as agent:
        await agent.put(event(id="a", text="so happy", source="chat", ts=1_000))
        await agent.put(b"{not json")
        await agent.put(event(id="b", text="hmm", source="web", ts=2_000))
    labelled = await drain(out["labelled"])
    assert [e.key for e in labelled] == [b"a", b"b"]  # keyed by event id
    records = [orjson.loads(e.value) for e in labelled]
    assert [(r["id"], r["label"], r["model_version"]) for r in records] == [
        ("a", "joy", "v0007"),
        ("b", "fear", "v0007"),
    ]
    [dead] = [orjson.loads(e.value) for e in await drain(out["dlq"])]
    assert dead["error"] == "invalid_json" and dead["raw"] == "{not json"
    rekeyed = {e.key: orjson.loads(e.value) for e in await drain(out["aggregation_input"])}
    assert rekeyed == {
        b"chat": [["joy", 0.9, 1_000]],
        b"web": [["fear", 0.55, 2_000]],
        b"*": [["joy", 0.9, 1_000], ["fear", 0.55, 2_000]],
    }
    [review] = [orjson.loads(e.value) for e in await drain(out["review"])]
    assert review["id"] == "b" and review["margin"] == pytest.approx(0.1)
    stats = parts.stats
    assert (stats.events_in, stats.labelled, stats.dead_lettered, stats.sent_for_review) == (3, 2, 1, 1)


async def test_a_batch_the_model_fails_on_is_dead_lettered_not_lost(worker):
    app, parts, out = worker
    async with app.agents["classify"].test_context(concurrency=1) as agent:
        await agent.put(event(id="a", text="this will fail"))
        await agent.put(event(id="b", text="happy"))
    assert await drain(out["labelled"]) == []
    dead = [orjson.loads(e.value) for e in await drain(out["dlq"])]
    assert sorted(d["error"] for d in dead) == ["inference_failed", "inference_failed"]
    assert parts.stats.dead_lettered == 2


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
