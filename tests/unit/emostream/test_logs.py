"""The filter that keeps a library's repeated warnings to a few lines."""

from __future__ import annotations

import logging

from emostream.logs import RepeatFilter


def record(msg, *args, level=logging.WARNING, name="aiokafka"):
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_repeated_warning_passes_once_per_interval_and_then_says_how_many_were_held(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("emostream.logs.time.monotonic", lambda: clock[0])
    repeats = RepeatFilter(interval=10.0)
    assert repeats.filter(record("Unable to connect to node %s", 1))
    passed = []
    for _ in range(99):
        clock[0] += 0.01
        passed.append(repeats.filter(record("Unable to connect to node %s", 1)))
    assert not any(passed)
    assert repeats.filter(record("another message"))  # a different template is not held back
    assert repeats.filter(record("Unable to connect to node %s", 1, level=logging.INFO))  # below warning: untouched
    clock[0] += 10.0
    summary = record("Unable to connect to node %s", 1)
    assert repeats.filter(summary)
    assert summary.getMessage() == "Unable to connect to node 1 [99 more like this in the last 11 s]"
