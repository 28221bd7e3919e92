"""KeyStates: a key's decoded state handed out again only while the table still holds the value written from it."""

from __future__ import annotations

import faust
import pytest

from stream.aggregation import KeyState, WindowAggregator, WindowSpec
from stream.kafka.changelog import TableWriter
from stream.key_states import KeyStates

AGGREGATOR = WindowAggregator([WindowSpec("tumbling", 60_000, 60_000)], grace_ms=0)


def app_with_states(tmp_path, store: str = "memory://", max_kept: int = 100):
    """An app whose one agent runs, for each event, the next of the steps a test gives (tables change only then)."""
    app = faust.App("key-states-test", broker="kafka://127.0.0.1:9", datadir=str(tmp_path), store=store)
    table = app.Table("state", default=None, partitions=1)
    writes = TableWriter(table)
    states = KeyStates(table, writes, max_kept=max_kept)
    steps = []

    @app.agent(app.topic("input", key_type=bytes, value_type=bytes))
    async def run(stream):
        async for _ in stream:
            steps.pop(0)()

    return run, table, states, steps


def counted(state: KeyState, label: str, ts: int) -> KeyState:
    AGGREGATOR.add_batch(state, "chat", [(label, 1.0, ts)])
    return state


def count_and_write(states: KeyStates, key: str, label: str = "joy", ts: int = 1_000) -> KeyState:
    """What the aggregate agent does with a key's events: read, count, write; returns the state written."""
    state = counted(states.read(key), label, ts)
    states.write(key, state)
    return state


async def test_a_written_state_is_read_back_as_the_same_object_and_the_table_holds_its_json(tmp_path):
    agent, table, states, steps = app_with_states(tmp_path)
    seen = []
    steps.append(lambda: count_and_write(states, "chat"))
    steps.append(lambda: seen.append(states.read("chat")))
    async with agent.test_context() as context:
        await context.put(b"1")
        written = table["chat"]
        await context.put(b"2")
    [state] = seen
    assert state.to_json() == written
    counted(state, "fear", 2_000)  # changing the state handed out...
    assert table["chat"] == written  # ...leaves the table's value alone until it is written
    assert written["windows"][0]["counts"] == {"joy": 1}


async def test_a_value_put_there_otherwise_is_decoded_not_the_kept_state(tmp_path):
    agent, table, states, steps = app_with_states(tmp_path)
    seen = []
    steps.append(lambda: count_and_write(states, "chat"))
    replaced = counted(KeyState(), "anger", 5_000).to_json()  # what recovery or a rebalance might leave
    steps.append(lambda: table.data.__setitem__("chat", replaced))
    steps.append(lambda: seen.append(states.read("chat")))
    async with agent.test_context() as context:
        for value in (b"1", b"2", b"3"):
            await context.put(value)
    assert seen[0].to_json() == replaced and seen[0].watermark == 5_000


async def test_a_key_the_table_lost_reads_as_new_and_a_state_is_handed_out_once(tmp_path):
    agent, table, states, steps = app_with_states(tmp_path)
    seen = []
    steps.append(lambda: count_and_write(states, "chat"))
    steps.append(lambda: count_and_write(states, "web"))
    steps.append(lambda: table.data.__delitem__("chat"))  # a revoked partition's keys, say
    steps.append(lambda: seen.extend([states.read("chat"), states.read("web"), states.read("web")]))
    async with agent.test_context() as context:
        for value in (b"1", b"2", b"3", b"4"):
            await context.put(value)
    lost, web, again = seen
    assert lost == KeyState()
    # The second read of `web` without a write in between gets a state of its own, decoded from the table.
    assert web is not again and web.to_json() == again.to_json() == table["web"]


async def test_at_most_max_kept_states_are_kept_the_oldest_write_going_first(tmp_path):
    agent, table, states, steps = app_with_states(tmp_path, max_kept=2)
    written, seen = {}, {}
    for key in "abc":
        steps.append(lambda key=key: written.update({key: count_and_write(states, key)}))
    steps.append(lambda: seen.update({key: states.read(key) for key in "abc"}))
    async with agent.test_context() as context:
        for value in (b"1", b"2", b"3", b"4"):
            await context.put(value)
    assert [seen[key] is written[key] for key in "abc"] == [False, True, True]
    assert all(seen[key].to_json() == table[key] for key in "abc")


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
async def test_only_a_store_that_hands_back_what_was_set_keeps_states(tmp_path, store):
    agent, _, states, steps = app_with_states(tmp_path, store=store)
    written, seen = [], []
    steps.append(lambda: written.append(count_and_write(states, "chat")))
    steps.append(lambda: seen.append(states.read("chat")))
    async with agent.test_context() as context:
        await context.put(b"1")
        await context.put(b"2")
    [state] = written
    assert (seen[0] is state) is (store == "memory://")
    assert seen[0].to_json() == state.to_json()
