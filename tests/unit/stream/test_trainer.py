"""When the trainer starts a cycle, and its state file."""

from __future__ import annotations

from emostream.settings import Settings
from stream.trainer import TrainerJob


def job(tmp_path, **env):
    variables = {"EMOSTREAM_REGISTRY_DIR": str(tmp_path), **{f"EMOSTREAM_{k.upper()}": str(v) for k, v in env.items()}}
    return TrainerJob(Settings.from_env(variables))


def test_a_cycle_is_due_on_enough_new_examples_or_after_the_period(tmp_path):
    trainer = job(tmp_path, trainer_min_new=100, trainer_every=3600)
    state = {"trained_on": 500, "last_cycle": 1000.0, "dead_lettered": {}}
    assert not trainer.due(state, 500, now=10_000)  # nothing new
    assert not trainer.due(state, 550, now=2000)  # a few new, period not over
    assert trainer.due(state, 600, now=2000)  # enough new
    assert trainer.due(state, 501, now=1000 + 3600)  # some new and the period is over


def test_state_round_trip(tmp_path):
    trainer = job(tmp_path)
    assert trainer.load_state() == {"trained_on": 0, "last_cycle": 0.0, "dead_lettered": {}}
    trainer.save_state({"trained_on": 3, "last_cycle": 1.5, "dead_lettered": {"0": 7}})
    assert job(tmp_path).load_state()["dead_lettered"] == {"0": 7}
