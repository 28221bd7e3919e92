"""When the trainer starts a cycle, and its state file (offsets per feedback topic and partition)."""

from __future__ import annotations

import json

from emostream.settings import Settings
from stream.retraining_job import RetrainingJob
from stream.trainer_state import TopicMarks, TrainerState


def job(tmp_path, **env):
    variables = {"EMOSTREAM_REGISTRY_DIR": str(tmp_path), **{f"EMOSTREAM_{k.upper()}": str(v) for k, v in env.items()}}
    return RetrainingJob(Settings.from_env(variables))


def test_a_cycle_is_due_on_enough_new_examples_or_after_the_period(tmp_path):
    trainer = job(tmp_path, trainer_min_new=100, trainer_every=3600)
    state = TrainerState(last_cycle=1000.0)
    assert not trainer.due(state, 0, now=10_000)  # nothing new
    assert not trainer.due(state, 50, now=2000)  # a few new, period not over
    assert trainer.due(state, 100, now=2000)  # enough new
    assert trainer.due(state, 1, now=1000 + 3600)  # some new and the period is over


def test_state_round_trip_and_the_first_format_starts_over(tmp_path):
    trainer = job(tmp_path)
    assert trainer.load_state() == TrainerState()
    state = TrainerState(1.5, {"emotion.feedback": TopicMarks({0: 7, 3: 2}, {0: 9})})
    trainer.save_state(state)
    assert job(tmp_path).load_state() == state
    written = json.loads((tmp_path / "trainer-state.json").read_text())
    assert written == {
        "last_cycle": 1.5,
        "topics": {"emotion.feedback": {"trained": {"0": 7, "3": 2}, "dead_lettered": {"0": 9}}},
    }
    (tmp_path / "trainer-state.json").write_text(json.dumps({"trained_on": 3, "last_cycle": 1.5, "dead_lettered": {}}))
    assert job(tmp_path).load_state() == TrainerState(1.5)


def test_marks_are_kept_per_topic_and_reset_when_the_topic_was_recreated(tmp_path):
    state = TrainerState(0.0, {"old.feedback": TopicMarks({0: 250}, {0: 11})})
    trainer = job(tmp_path, topic_feedback="new.feedback")
    assert trainer.topic_marks(state, {0: 5}) == TopicMarks()  # a new topic starts from 0
    assert state.topics["old.feedback"].trained == {0: 250}
    old = job(tmp_path, topic_feedback="old.feedback")
    assert old.topic_marks(state, {0: 300}).trained == {0: 250}
    assert old.topic_marks(state, {0: 40}) == TopicMarks()  # ends below the marks: recreated
    assert state.topics["old.feedback"] == TopicMarks()


def test_marks_say_what_is_new_and_what_still_needs_a_dead_letter():
    marks = TopicMarks({0: 10}, {0: 4})
    assert not marks.is_new(0, 9) and marks.is_new(0, 10) and marks.is_new(1, 0)
    assert not marks.needs_dead_letter(0, 3) and marks.needs_dead_letter(0, 4)
    marks.dead_lettered_to(0, 8)
    marks.dead_lettered_to(0, 6)  # an earlier one later: the mark never goes back
    assert marks.dead_lettered == {0: 9}
    marks.trained_to({0: 20, 1: 3})
    assert marks.trained == {0: 20, 1: 3}
