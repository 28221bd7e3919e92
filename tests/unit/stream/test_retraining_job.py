"""When the trainer starts a cycle, and its state file (offsets per feedback topic and partition)."""

from __future__ import annotations

import json

from emostream.settings import Settings
from stream.retraining_job import RetrainingJob


def job(tmp_path, **env):
    variables = {"EMOSTREAM_REGISTRY_DIR": str(tmp_path), **{f"EMOSTREAM_{k.upper()}": str(v) for k, v in env.items()}}
    return RetrainingJob(Settings.from_env(variables))


def test_a_cycle_is_due_on_enough_new_examples_or_after_the_period(tmp_path):
    trainer = job(tmp_path, trainer_min_new=100, trainer_every=3600)
    state = {"last_cycle": 1000.0, "topics": {}}
    assert not trainer.due(state, 0, now=10_000)  # nothing new
    assert not trainer.due(state, 50, now=2000)  # a few new, period not over
    assert trainer.due(state, 100, now=2000)  # enough new
    assert trainer.due(state, 1, now=1000 + 3600)  # some new and the period is over


def test_state_round_trip_and_the_first_format_starts_over(tmp_path):
    trainer = job(tmp_path)
    assert trainer.load_state() == {"last_cycle": 0.0, "topics": {}}
    state = {"last_cycle": 1.5, "topics": {"emotion.feedback": {"trained": {"0": 7}, "dead_lettered": {"0": 9}}}}
    trainer.save_state(state)
    assert job(tmp_path).load_state() == state
    (tmp_path / "trainer-state.json").write_text(json.dumps({"trained_on": 3, "last_cycle": 1.5, "dead_lettered": {}}))
    assert job(tmp_path).load_state() == {"last_cycle": 1.5, "topics": {}}


def test_marks_are_kept_per_topic_and_reset_when_the_topic_was_recreated(tmp_path):
    state = {"last_cycle": 0.0, "topics": {"old.feedback": {"trained": {"0": 250}, "dead_lettered": {"0": 11}}}}
    trainer = job(tmp_path, topic_feedback="new.feedback")
    assert trainer.topic_state(state, {0: 5}) == {"trained": {}, "dead_lettered": {}}  # a new topic starts from 0
    assert state["topics"]["old.feedback"]["trained"] == {"0": 250}
    old = job(tmp_path, topic_feedback="old.feedback")
    assert old.topic_state(state, {0: 300})["trained"] == {"0": 250}
    assert old.topic_state(state, {0: 40}) == {"trained": {}, "dead_lettered": {}}  # ends below the marks: recreated
