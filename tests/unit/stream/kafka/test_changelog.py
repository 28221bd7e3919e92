"""TableWriter: table writes whose changelog records wait for the batch producer (the agent test covers delivery)."""

from __future__ import annotations

import faust
import orjson
import pytest

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
