"""TableWriter: table writes whose changelog records wait for the batch producer (the agent test covers delivery)."""

from __future__ import annotations

from datetime import UTC, datetime

import faust
import orjson
import pytest

from stream.aggregation import KeyState, WindowAggregator, WindowSpec
from stream.kafka.changelog import TableWriter


@pytest.fixture
def app(tmp_path):
    return faust.App("changelog-test", broker="kafka://127.0.0.1:9", datadir=str(tmp_path))


def test_a_write_outside_an_event_is_refused_as_faust_refuses_it(app):
    writer = TableWriter(app.Table("state", default=None, partitions=4))
    with pytest.raises(RuntimeError, match="while an event is current"):
        writer.set("chat", {"watermark": 1})
    assert writer.take() == []


def test_a_table_whose_changelog_partition_the_producer_chooses_is_refused(app):
    with pytest.raises(ValueError, match="follows the event's partition"):
        TableWriter(app.Table("state", default=None, partitions=4, use_partitioner=True))


async def test_a_write_lands_in_the_store_at_once_and_its_record_in_the_events_partition(app):
    table = app.Table("state", default=None, partitions=4)
    writer = TableWriter(table)
    agent_saw = []

    @app.agent(app.topic("input", key_type=bytes, value_type=bytes))
    async def write(stream):
        async for value in stream:
            writer.set("chat", orjson.loads(value))
            agent_saw.append(table["chat"])  # read back while the event is current: the new value

    async with write.test_context() as agent:
        await agent.put(b'{"watermark": 5}', partition=3)
    assert agent_saw == [{"watermark": 5}]
    [record] = writer.take()
    assert record.topic == table.changelog_topic.get_topic_name() and record.partition == 3
    assert (orjson.loads(record.key), orjson.loads(record.value)) == ("chat", {"watermark": 5})
    assert writer.take() == []


async def test_records_carry_exactly_the_bytes_faust_would_serialize_for_the_table(app):
    json_table = app.Table("state", default=None, partitions=4)
    raw_table = app.Table("raw", default=None, partitions=4, key_type=bytes, value_type=bytes)  # raw serializers
    json_writer, raw_writer = TableWriter(json_table), TableWriter(raw_table)
    aggregator = WindowAggregator([WindowSpec("tumbling", 60_000, 60_000)], grace_ms=0, lateness_ms=60_000)
    state = KeyState()
    aggregator.add_batch(state, "chat", [("joy", 0.731, 1_000, "a", "chat"), ("fear", 1 / 3, 61_000, "b", "chat")])
    value = state.to_json()
    # Not JSON's own types: integer keys, an aware datetime (Faust's codec writes "Z" where plain orjson writes +00:00)
    odd = [{"counts": {1: 2}}, {"at": datetime(2026, 12, 3, tzinfo=UTC)}]

    @app.agent(app.topic("input", key_type=bytes, value_type=bytes))
    async def write(stream):
        async for _ in stream:
            json_writer.set("café ☕", value)
            for odd_value in odd:
                json_writer.set("odd", odd_value)
            raw_writer.set(b"chat", b"\x00raw")

    async with write.test_context() as agent:
        await agent.put(b"1")
    record, *odd_records = json_writer.take()
    topic = json_table.changelog_topic
    assert record.key == topic.prepare_key("café ☕", json_table.key_serializer)[0]
    assert record.value == topic.prepare_value(value, json_table.value_serializer)[0]
    assert orjson.loads(record.value) == value
    assert [r.value for r in odd_records] == [topic.prepare_value(v, json_table.value_serializer)[0] for v in odd]
    assert [orjson.loads(r.value) for r in odd_records] == [{"counts": {"1": 2}}, {"at": "2026-12-03T00:00:00Z"}]
    [raw] = raw_writer.take()
    assert (raw.key, raw.value) == (b"chat", b"\x00raw")  # any other serialization: Faust's own path
