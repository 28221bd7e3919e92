"""Integration fixtures: the real Tansu broker on a free loopback port, a really fine-tuned tiny model in a registry,
and worker processes (``python -m emostream worker``) with a unique app id, consumer group and topic set per test.

The tests are coroutines run by pytest-asyncio (one event loop per test, configured in pyproject.toml): they await the
Kafka clients directly. Calls that block while another process gets somewhere (a worker's start-up, the CLI, which
runs an event loop of its own) go through ``asyncio.to_thread``, so that what the test started beside them (a
background sender, the browser's connection) goes on meanwhile."""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from emostream.settings import Settings
from stream.broker import EmbeddedBroker, free_port
from stream.kafka.connection import KafkaConnection, client_options
from stream.process import WorkerProcess

PARTITIONS = 4


@pytest.fixture(scope="session")
def broker():
    """One embedded broker for the whole session (tests keep apart by topic and group names)."""
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture(scope="session")
def served_registry(tmp_path_factory, datasets_dir, base_model_path):
    """A registry whose current version is a real (short) fine-tune of the packaged MiniLM."""
    from models.artifacts import export_run
    from models.data import Splits, load_splits
    from models.finetuning import FineTuner, TrainingConfig
    from models.registry import ModelRegistry

    splits = load_splits(datasets_dir / "emotion")
    small = Splits(splits.train.sample(600, seed=1), splits.validation.sample(200, seed=1))
    config = TrainingConfig.from_recipe(
        "quick", base_model_path, epochs=1, batch_size=16, learning_rate=2e-4, progress=False
    )
    result = FineTuner(config, small).train()
    root = tmp_path_factory.mktemp("stream-registry")
    run = export_run(result, root / "run", data_source="emotion sample")
    registry = ModelRegistry(root / "registry")
    registry.register(run, promote=True)
    return registry


@dataclass
class StreamEnv:
    """Names and settings of one test's stream: topics, group, worker environment."""

    broker: EmbeddedBroker  # or a tests.integration.tls.TlsBroker, with its settings in ``extra``
    registry_dir: Path
    state_dir: Path
    app_id: str = field(default_factory=lambda: f"emostream-test-{uuid.uuid4().hex[:8]}")
    extra: dict = field(default_factory=dict)
    workers: list = field(default_factory=list)

    def topic(self, kind: str) -> str:
        return f"{self.app_id}.{kind}"

    def env(self, web_port: int) -> dict:
        variables = {
            "EMOSTREAM_BROKER_URL": self.broker.url,
            "EMOSTREAM_APP_ID": self.app_id,
            "EMOSTREAM_REGISTRY_DIR": str(self.registry_dir),
            "EMOSTREAM_STATE_DIR": str(self.state_dir),
            "EMOSTREAM_WEB_PORT": str(web_port),
            "EMOSTREAM_SESSION_TIMEOUT": "6",
            "EMOSTREAM_PARTITIONS": str(PARTITIONS),
            "EMOSTREAM_QUANTIZE": "off",
            "EMOSTREAM_DEVICE": "cpu",
            "EMOSTREAM_LOG_FORMAT": "json",
            "EMOSTREAM_BATCH_MAX": "32",
            **{
                f"EMOSTREAM_TOPIC_{kind.upper()}": self.topic(kind)
                for kind in ("texts", "labelled", "aggregates", "dlq", "late", "drift", "models", "review", "feedback")
            },
            **self.extra,
        }
        return {**os.environ, **variables}

    def connection(self) -> KafkaConnection:
        """How this stream's clients connect: the broker, and the ``EMOSTREAM_KAFKA_*`` settings in ``extra``."""
        return KafkaConnection.of(Settings.from_env({"EMOSTREAM_BROKER_URL": self.broker.url, **self.extra}))

    async def start_worker(self, log_dir: Path) -> WorkerProcess:
        """Start a worker and wait, in a thread, until it holds its partitions."""
        worker = await asyncio.to_thread(self._start_worker, log_dir / f"worker-{len(self.workers)}.log")
        self.workers.append(worker)
        return worker

    def _start_worker(self, log_path: Path) -> WorkerProcess:
        worker = WorkerProcess.start(self.env(free_port()), log_path)
        # Wait until the worker holds input and internal partitions, as `emostream demo` does: events sent during the
        # start-up rebalance were once seen to stall (see docs/notes.md). And until its model is loaded: the tests'
        # waits for outputs are then about the stream, not about how fast this machine starts the inference processes
        # (minutes on a loaded 2-core machine, longer than those waits).
        try:
            worker.wait_assigned(self.topic("texts"))
            worker.wait_assigned(f"{self.app_id}-aggregation-input")
            worker.wait_model_loaded()
        except BaseException:
            worker.stop()  # not yet in ``workers``, which the fixture stops
            raise
        return worker

    async def create_topics(self) -> None:
        admin = AIOKafkaAdminClient(**client_options(self.connection()))
        await admin.start()
        try:
            await admin.create_topics([NewTopic(self.topic("texts"), PARTITIONS, 1)])
        finally:
            await admin.close()


@pytest.fixture
async def stream_env_factory(broker, tmp_path_factory):
    """Make a StreamEnv (own topics and group) over a given registry (``await make(dir)``); its workers are stopped
    after the test."""
    made = []

    async def make(registry_dir: Path) -> StreamEnv:
        env = StreamEnv(broker, registry_dir, tmp_path_factory.mktemp("worker-state"))
        await env.create_topics()
        made.append(env)
        return env

    yield make
    for env in made:
        for worker in env.workers:
            worker.stop()


@pytest.fixture
async def stream_env(stream_env_factory, served_registry):
    """A StreamEnv over the shared, session-wide registry (tests that promote use their own copy)."""
    return await stream_env_factory(served_registry.root)
