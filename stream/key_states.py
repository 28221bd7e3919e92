"""The aggregate agent's :class:`~stream.aggregation.KeyState` per aggregation key, decoded from the state table once.

The table keeps each key's state in its JSON-ready form (``KeyState.to_json``: what the changelog carries and recovery
reads back). Decoding that form into a ``KeyState`` for every record of a key was a third of the agent's work per key
with many sources, where a key gets about one event per micro-batch (docs/benchmarks.md, issue 9). :class:`KeyStates`
keeps the ``KeyState`` a key was last written from, and hands it out again while the table still holds that very value
(the same object: the memory store keeps what was set). Anything else that put a value there (recovery, a rebalance,
a write from elsewhere) is a different object, and the state is decoded from it as before; a key the table no longer
holds reads as new. A persistent store (RocksDB) decodes a new object on every read, so nothing is kept for it.

Kept states are handed out once: a read takes the state out, the write after the change puts it back. If the change
fails half-way, the half-changed state is dropped with the exception and the next read decodes the table's value,
which ``to_json`` never shares a mutable part with.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.stores.memory import Store as MemoryStore

from stream.aggregation import KeyState
from stream.kafka.changelog import TableWriter

# Kept states at most (the least recently written go first): a few KB each, so that a worker holding a very large key
# space does not keep a second copy of all of it. Keys beyond it are decoded on each read, as before.
MAX_KEPT = 10_000


class KeyStates:
    """Reads ``table``'s states as ``KeyState`` objects and writes them back through ``writes``."""

    def __init__(self, table: faust.TableT, writes: TableWriter, max_kept: int = MAX_KEPT) -> None:
        self._table = table
        self._writes = writes
        self._max_kept = max_kept
        self._kept: dict[Any, tuple[Any, KeyState]] = {}  # key -> (the value written, the state it was written from)
        self._keeps_objects: bool | None = None  # whether the store hands back the objects set (decided on first use)

    def read(self, key: Any) -> KeyState:
        """``key``'s state, to change and then :meth:`write`."""
        return self.decoded(key, self._table.get(key))

    def decoded(self, key: Any, value: Any) -> KeyState:
        """``key``'s state from ``value``, the table's value for it (for a caller that has looked it up already)."""
        kept = self._kept.pop(key, None)
        if kept is not None and kept[0] is value:
            return kept[1]
        return KeyState.from_json(value)

    def write(self, key: Any, state: KeyState) -> None:
        """Store ``state`` as ``key``'s value (its changelog record goes out with the agent's outputs) and keep it
        for the next :meth:`read`."""
        value = state.to_json()
        self._writes.set(key, value)
        if self._keeps_objects is None:
            self._keeps_objects = isinstance(self._table.data, MemoryStore)
        if self._keeps_objects:
            self._kept[key] = (value, state)
            if len(self._kept) > self._max_kept:
                del self._kept[next(iter(self._kept))]  # the oldest write: dicts keep insertion order
