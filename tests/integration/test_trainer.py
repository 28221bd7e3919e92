"""The retraining side job on the real broker: feedback (with a label the model does not know) in, one real cycle,
the gate's decision recorded in the registry, invalid feedback dead-lettered."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from models import ModelRegistry
from models.retraining_cycle import decide
from stream.broker import free_port
from stream.tools import collect_records, send_values

from .streams import run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def feedback_records(datasets_dir):
    with open(datasets_dir / "emotion" / "test.jsonl", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle][:150]
    records = [{"id": f"f{i}", "text": r["text"], "label": r["label_text"]} for i, r in enumerate(rows)]
    names = (datasets_dir / "goemotions" / "labels.txt").read_text().split()
    disgust = str(names.index("disgust"))
    with open(datasets_dir / "goemotions" / "train.tsv", encoding="utf-8") as handle:
        texts = [line.split("\t")[0] for line in handle if line.split("\t")[1] == disgust][:60]
    records += [{"id": f"d{i}", "text": text, "label": "disgust"} for i, text in enumerate(texts)]
    random.Random(0).shuffle(records)
    return [orjson.dumps(r) for r in records]


@pytest.fixture
def small_base(tmp_path, datasets_dir):
    folder = tmp_path / "base"
    folder.mkdir()
    for split, n in (("train", 400), ("validation", 300)):
        lines = (datasets_dir / "emotion" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        (folder / f"{split}.jsonl").write_text("\n".join(random.Random(1).sample(lines, n)) + "\n")
    return folder


@pytest.fixture
async def trainer_env(stream_env_factory, served_registry, datasets_dir, small_base, tmp_path):
    """A registry copy, topics, and the feedback (with a new label and two invalid records) already on the topic."""
    shutil.copytree(served_registry.root, tmp_path / "registry")
    registry = ModelRegistry(tmp_path / "registry")
    env = await stream_env_factory(registry.root)
    env.extra = {
        "EMOSTREAM_TOPIC_FEEDBACK": env.topic("feedback"),
        "EMOSTREAM_BASE_DATA": str(small_base),
        "EMOSTREAM_RETRAIN_REPLAY_RATIO": "2",
        "EMOSTREAM_RETRAIN_EPOCHS": "2",
        "EMOSTREAM_DEVICE": "cpu",
    }
    values = [*feedback_records(datasets_dir), b"{broken", orjson.dumps({"text": "no label"})]
    await send_values(env.broker.url, env.topic("feedback"), values)
    return env, registry


def trainer_metrics(port: int) -> dict[tuple[str, tuple], float]:
    """The trainer service's ``/metrics``: value per (sample name, sorted labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def wait_for_metrics(port: int, trainer: subprocess.Popen, done, seconds: float = 120) -> dict:
    """Scrape until ``done(metrics)`` (the counters move right after what the test waited for)."""
    deadline = time.monotonic() + seconds
    while True:
        assert trainer.poll() is None
        try:
            metrics = trainer_metrics(port)
        except OSError:  # not serving yet
            metrics = {}
        if metrics and done(metrics):
            return metrics
        assert time.monotonic() < deadline, metrics
        time.sleep(0.5)


async def test_one_cycle_grows_the_labels_records_the_gate_and_dead_letters_bad_feedback(trainer_env, tmp_path):
    env, registry = trainer_env
    worker = await env.start_worker(tmp_path)
    result = await run_cli(env, "trainer", "--once")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["ran"] and summary["version"] == "v0002" and summary["new_labels"] == ["disgust"]

    info = registry.info("v0002")
    assert "disgust" in info.labels and info.labels[:6] == registry.info("v0001").labels  # known classes keep order
    gate = info.metrics["gate"]
    expected = decide(
        gate["new_data_f1_candidate"],
        gate["new_data_f1_current"],
        gate["base_f1_candidate"],
        gate["base_f1_current"],
        gate["tolerance"],
    )
    assert gate["promoted"] == expected.promoted == summary["promoted"]
    assert registry.current_version() == ("v0002" if expected.promoted else "v0001")
    if not expected.promoted:  # an operator may still promote it; either way workers swap it in
        assert (await run_cli(env, "models", "promote", "v0002")).exit_code == 0
    deadline = time.monotonic() + 180  # the swap loads the model in both inference processes
    while worker.get("/stats")["model_version"] != "v0002" and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    await send_values(env.broker.url, env.topic("texts"), [orjson.dumps({"id": "x", "text": "so gross"})])
    labelled = await collect_records(env.broker.url, env.topic("labelled"), expected=1, timeout=180)
    record = orjson.loads(labelled[0][1])
    assert record["model_version"] == "v0002" and "disgust" in record["scores"]  # the new label in the outputs

    dead = await collect_records(env.broker.url, env.topic("dlq"), expected=2, timeout=60, settle=1.0)
    assert sorted(orjson.loads(value)["error"] for _, value, _ in dead) == ["invalid_json", "invalid_label"]
    again = await run_cli(env, "trainer", "--once")
    assert again.exit_code == 0
    assert json.loads(again.stdout.strip().splitlines()[-1]) == {
        "ran": False,
        "reason": "nothing new since the last cycle",
    }
    assert [v.version for v in registry.versions()] == ["v0001", "v0002"]  # no new version on unchanged feedback
    dead = await collect_records(env.broker.url, env.topic("dlq"), timeout=3)
    assert len(dead) == 2  # dead-lettered once, not at every cycle


async def test_a_trainer_killed_mid_cycle_leaves_the_registry_and_serving_intact(trainer_env, tmp_path):
    env, registry = trainer_env
    before = (registry.current_version(), [v.version for v in registry.versions()])
    log_path = tmp_path / "trainer.log"
    with log_path.open("wb") as log_file:
        trainer = subprocess.Popen(
            [sys.executable, "-m", "emostream", "trainer", "--once"],
            env=env.env(6066),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 300
    # "retraining" is logged just before the fine-tune starts: killing at once lands inside the cycle whatever the
    # machine's speed (the fine-tune alone takes seconds), where a fixed delay could outlast it on a fast machine.
    while b'"retraining"' not in log_path.read_bytes() and time.monotonic() < deadline:
        assert trainer.poll() is None, log_path.read_text()
        await asyncio.sleep(0.02)
    trainer.send_signal(signal.SIGKILL)
    trainer.wait()
    assert (registry.current_version(), [v.version for v in registry.versions()]) == before
    registry.verify(registry.current_version())  # what is served is whole
    result = await run_cli(env, "trainer", "--once")  # the next run cleans up and completes a cycle
    assert result.exit_code == 0 and json.loads(result.stdout.strip().splitlines()[-1])["version"] == "v0002"
    assert not list(registry.root.glob(".retrain-*"))


def test_a_model_trained_on_shuffled_labels_is_rejected_and_not_served(
    served_registry, datasets_dir, small_base, tmp_path
):
    from models.data import load_file, load_splits
    from models.retraining_cycle import CycleConfig, run_cycle

    shutil.copytree(served_registry.root, tmp_path / "registry")
    registry = ModelRegistry(tmp_path / "registry")
    feedback = load_file(datasets_dir / "emotion" / "validation.jsonl").sample(600, seed=3)
    shuffled = [feedback.targets[i] for i in random.Random(3).sample(range(len(feedback)), len(feedback))]
    feedback = type(feedback)(feedback.texts, shuffled, feedback.labels, source="shuffled feedback")
    config = CycleConfig(replay_ratio=0, epochs=4, learning_rate=3e-4, device="cpu")
    result = run_cycle(registry, feedback, load_splits(small_base), config)
    assert not result.decision.promoted, result.decision
    assert registry.current_version() == "v0001"
    assert registry.info(result.version.version).metrics["gate"]["promoted"] is False  # kept for inspection


def test_the_trainer_runs_unattended_and_cycles_when_enough_feedback_arrived(trainer_env, tmp_path):
    env, registry = trainer_env
    port = free_port()
    environment = {
        **env.env(6066),
        "EMOSTREAM_TRAINER_POLL": "1",
        "EMOSTREAM_TRAINER_MIN_NEW": "100",
        "EMOSTREAM_TRAINER_PORT": str(port),
    }
    log_path = tmp_path / "trainer.log"
    with log_path.open("wb") as log_file:
        trainer = subprocess.Popen(
            [sys.executable, "-m", "emostream", "trainer"], env=environment, stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 900  # one cycle: about a minute on 2 idle cores, several on loaded ones
        while [v.version for v in registry.versions()] == ["v0001"] and time.monotonic() < deadline:
            assert trainer.poll() is None, log_path.read_text()
            time.sleep(1)
        assert [v.version for v in registry.versions()] == ["v0001", "v0002"], log_path.read_text()[-3000:]
        metrics = wait_for_metrics(port, trainer, lambda m: m[("emostream_trainer_cycles_total", ())] == 1)
        decisions = {
            labels[0][1]: value
            for (name, labels), value in metrics.items()
            if name == "emostream_trainer_gate_decisions_total"
        }
        assert sum(decisions.values()) == 1 and set(decisions) <= {"promoted", "rejected"}
        assert metrics[("emostream_trainer_dead_letters_total", ())] == 2  # the two invalid feedback records
        assert metrics[("emostream_trainer_feedback_examples", ())] == 210
        assert metrics[("emostream_trainer_feedback_backlog", ())] == 0
        assert metrics[("emostream_trainer_last_cycle_seconds", ())] > 0
        current = registry.current_version()
        assert metrics[("emostream_trainer_model_info", (("version", current),))] == 1
        assert trainer.poll() is None  # still running, waiting for more feedback
    finally:
        trainer.terminate()
        trainer.wait(timeout=30)


async def test_the_trainer_service_waits_for_enough_feedback_instead_of_exiting(
    stream_env_factory, served_registry, tmp_path
):
    shutil.copytree(served_registry.root, tmp_path / "registry")
    env = await stream_env_factory(tmp_path / "registry")
    port = free_port()
    # Otherwise the defaults: a fresh state is due at once.
    environment = {**env.env(6066), "EMOSTREAM_TRAINER_POLL": "0.5", "EMOSTREAM_TRAINER_PORT": str(port)}
    log_path = tmp_path / "trainer.log"
    with log_path.open("wb") as log_file:
        trainer = subprocess.Popen(
            [sys.executable, "-m", "emostream", "trainer"], env=environment, stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        first = orjson.dumps({"id": "f1", "text": "what a lovely surprise", "label": "joy"})
        await send_values(env.broker.url, env.topic("feedback"), [first])
        deadline = time.monotonic() + 120
        while b"waiting for at least" not in log_path.read_bytes():
            assert trainer.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            await asyncio.sleep(0.5)
        assert trainer.poll() is None  # still running, waiting for more
        assert [v.version for v in ModelRegistry(tmp_path / "registry").versions()] == ["v0001"]
        waiting = ("emostream_trainer_skipped_checks_total", (("reason", "too_little_feedback"),))
        metrics = wait_for_metrics(port, trainer, lambda m: m.get(waiting, 0) >= 1)
        assert metrics[("emostream_trainer_cycles_total", ())] == 0
        assert metrics[("emostream_trainer_feedback_backlog", ())] == 1
    finally:
        trainer.terminate()
        trainer.wait(timeout=30)
